"""What the admin relies on when the action runs unattended: the rotating log (one line per
run, details with -v, secrets masked), the free-space floor, the retention sweep, and progress
drawn only on a terminal. Run through the real command line against the NetMon simulator."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_srp

from srp import oplog
from srp.simulators.netmon import NetMonSimulator, default_sessions

KEY = "ops-secret-key-93b1d0"
CATALOGUE = default_sessions(12)
DOMAIN = "www.example.com"
CAPTURED = sum(spec.captured for spec in CATALOGUE if spec.domain == DOMAIN)


@pytest.fixture(scope="module")
def sim():
    with NetMonSimulator(CATALOGUE, api_key=KEY) as simulator:
        simulator.prepare()
        yield simulator


def netmon_args(sim, pcap_dir: Path, *extra: str) -> list[str]:
    return ["netmon", "--address", sim.url, "--api-key", KEY, "--ca-bundle", sim.ca_bundle,
            "--query", DOMAIN, "--before", "120", "--pcap-dir", pcap_dir, *extra]


def log_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_each_run_leaves_one_line_in_the_log_beside_the_results(sim, tmp_path):
    # An alarm whose window closed (and settled) before this run: its result is final.
    settled = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30 * 60))
    alarm = ("--alarm-id", "4711", "--alarm-date", settled, "--after", "0")
    first = run_srp(*netmon_args(sim, tmp_path, *alarm))
    assert first.returncode == 0, first.stderr
    second = run_srp(*netmon_args(sim, tmp_path, *alarm))   # reuses the first
    assert second.returncode == 0, second.stderr
    lines = log_lines(tmp_path / "srp-pcap.log")
    assert len(lines) == 2
    for line in lines:
        assert "vendor=netmon alarm=4711 outcome=ok exit=0 duration=" in line
        assert " bytes=" in line and " pcap=" in line and str(tmp_path) in line
    assert "reused" in lines[1]


def test_a_failed_run_logs_its_reason_and_exit_code(sim, tmp_path):
    sim.set_faults("401")
    run = run_srp(*netmon_args(sim, tmp_path, "--alarm-id", "9"))
    assert run.returncode == 1
    [line] = log_lines(tmp_path / "srp-pcap.log")
    assert "outcome=error exit=1" in line and "reason=" in line


def test_the_program_ends_without_tearing_the_interpreter_down(sim, tmp_path):
    """Started as a program, srp-pcap skips the interpreter's teardown (an atexit hook never
    runs) yet every line of output, the exit code and the log are all there."""
    script = ("import atexit, sys; from srp.cli import main; "
              "atexit.register(lambda: print('TEARDOWN', flush=True)); "
              "sys.argv[0] = 'srp-pcap'; main()")
    args = netmon_args(sim, tmp_path, "--alarm-id", "77", "--json")
    run = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "TEARDOWN" not in run.stdout
    assert '"status": "ok"' in run.stdout.splitlines()[-1]
    [line] = log_lines(tmp_path / "srp-pcap.log")
    assert "alarm=77 outcome=ok exit=0" in line
    failed = subprocess.run([sys.executable, "-c", script, "netmon", "--no-such-option"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert failed.returncode == 2 and "No such option" in failed.stderr
    assert "TEARDOWN" not in failed.stdout


def test_verbose_logs_requests_and_sessions_but_never_the_secret(sim, tmp_path):
    log = tmp_path / "logs" / "custom.log"
    run = run_srp(*netmon_args(sim, tmp_path / "out", "-v", "--log-file", log))
    assert run.returncode == 0, run.stderr
    args = netmon_args(sim, tmp_path / "out", "-v", "--log-file", log)
    args[args.index(sim.url)] = sim.url.replace("https://", f"https://admin:{KEY}@")
    refused = run_srp(*args)
    assert refused.returncode == 2
    text = log.read_text(encoding="utf-8")
    assert "sessions found" in text and "session " in text and "GET /api/session/" in text
    assert "exit=2" in text.splitlines()[-1]
    for output in (text, run.stdout, run.stderr, refused.stdout, refused.stderr):
        assert KEY not in output
    assert not (tmp_path / "out" / "srp-pcap.log").exists()


def test_a_log_that_cannot_be_written_is_warned_about_and_the_run_goes_on(sim, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = run_srp(*netmon_args(sim, tmp_path / "out", "--log-file", blocker / "x.log"))
    assert run.returncode == 0, run.stderr
    assert "warning: cannot write the log" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_log_rotates_by_size(tmp_path, monkeypatch):
    monkeypatch.setattr(oplog, "MAX_LOG_BYTES", 2000)
    path = tmp_path / "srp-pcap.log"
    assert oplog.open_log(path, verbose=False) is None
    try:
        for number in range(100):
            oplog.log.info("run %d %s", number, "x" * 80)
    finally:
        oplog.close_log()
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert rotated[:2] == ["srp-pcap.log", "srp-pcap.log.1"]
    assert len(rotated) == oplog.KEPT_LOGS + 1
    assert all(p.stat().st_size <= 2100 for p in tmp_path.iterdir())


def test_below_the_free_space_floor_nothing_is_fetched(sim, tmp_path):
    before = len(sim.requests)
    run = run_srp(*netmon_args(sim, tmp_path, "--min-free", "1000T", "--json"))
    assert run.returncode == 1
    assert "below the --min-free floor" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert '"status": "error"' in run.stdout.splitlines()[-1]
    assert len(sim.requests) == before
    assert not list(tmp_path.glob("*.pcap*"))


def test_a_bad_min_free_is_a_usage_error(sim, tmp_path):
    run = run_srp(*netmon_args(sim, tmp_path, "--min-free", "lots"))
    assert run.returncode == 2 and "--min-free" in run.stderr


def test_keep_days_sweeps_only_old_results_of_this_tool(sim, tmp_path):
    old_time = time.time() - 10 * 86400
    old = [tmp_path / "netmon_12_20240101T000000Z_0123456789ab.pcap",
           tmp_path / "netmon_12_20240101T000000Z_0123456789ab.json",
           tmp_path / ".srp-work-abandoned"]
    kept = [tmp_path / "notes.txt",                                   # not ours
            tmp_path / "netmon_13_20240101T000000Z_0123456789ab.pcapng"]  # ours, recent
    for path in old + kept:
        if path.name.startswith(".srp-work-"):
            path.mkdir()
            (path / "session0.download").write_bytes(b"x")
        else:
            path.write_bytes(b"x")
    for path in old + [kept[0]]:
        os.utime(path, (old_time, old_time))
    run = run_srp(*netmon_args(sim, tmp_path, "--keep-days", "7"))
    assert run.returncode == 0, run.stderr
    assert not any(path.exists() for path in old)
    assert all(path.exists() for path in kept)
    assert len(list(tmp_path.glob("netmon_manual_*.pcap"))) == 1


def test_no_progress_when_stderr_is_not_a_terminal(sim, tmp_path):
    run = run_srp(*netmon_args(sim, tmp_path))
    assert run.returncode == 0
    assert run.stderr == ""
    assert "\r" not in run.stdout and "\x1b" not in run.stdout


def test_progress_is_drawn_on_a_terminal(sim, tmp_path):
    sim.latency = 0.3   # long enough for the progress line to be drawn
    leader, follower = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "srp", *map(str, netmon_args(sim, tmp_path))],
            stdout=subprocess.PIPE, stderr=follower, cwd=REPO, timeout=120)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:   # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        sim.latency = 0.0
        os.close(leader)
    assert process.returncode == 0
    assert b"\r" in drawn and f"sessions {CAPTURED}/{CAPTURED}".encode() in drawn
    assert b"\r" not in process.stdout   # the summary itself stays plain


def test_an_early_failure_still_tells_the_web_console_why(sim, tmp_path):
    run = run_srp(*netmon_args(sim, tmp_path, "--min-free", "1000T"))
    assert run.returncode == 1
    [line] = run.stdout.splitlines()   # stdout is all the Web Console shows
    assert line.startswith("srp-pcap netmon: ERROR: only ") and "--min-free" in line


@pytest.mark.parametrize("tls", [["--insecure"], ["--ca-bundle", "/nonexistent/ca.pem"]])
def test_contradictory_or_missing_tls_options_are_usage_errors(sim, tmp_path, tls):
    args = netmon_args(sim, tmp_path)
    args += tls   # the second --ca-bundle wins over the first
    run = run_srp(*args)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "--ca-bundle" in run.stderr


def test_the_environment_proxy_is_used_unless_no_proxy_names_the_appliance(sim, tmp_path):
    dead_proxy = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                  "NO_PROXY": "", "no_proxy": ""}
    through_proxy = run_srp(*netmon_args(sim, tmp_path), env=dead_proxy)
    assert through_proxy.returncode == 1
    assert "cannot reach" in through_proxy.stderr
    bypassed = run_srp(*netmon_args(sim, tmp_path),
                       env={**dead_proxy, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
    assert bypassed.returncode == 0, bypassed.stderr


def test_without_ca_bundle_the_environment_bundle_is_trusted(sim, tmp_path):
    args = netmon_args(sim, tmp_path)
    at = args.index("--ca-bundle")
    del args[at:at + 2]
    trusted = run_srp(*args, env={"REQUESTS_CA_BUNDLE": str(sim.ca_bundle),
                                  "CURL_CA_BUNDLE": ""})
    assert trusted.returncode == 0, trusted.stderr
    # --force: within the same second, the same request would reuse the first result.
    untrusted = run_srp(*args, "--force", env={"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""})
    assert untrusted.returncode == 1 and "TLS verification" in untrusted.stderr
