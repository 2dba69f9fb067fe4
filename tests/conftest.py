"""Shared fixtures: the reference mergecap, the shared corpus, running the CLI, the checks
every vendor command's end-to-end tests make of a run, and running a simulator as a user
does."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from srp.simulators.https import VendorSimulator

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
# When the simulators' catalogues happen, and the alarm date that finds them.
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
ALARM_DATE = "2024-05-01T12:00:00Z"


@pytest.fixture(scope="session")
def mergecap() -> str:
    """Wireshark's mergecap, the oracle; tests that need it skip where it is missing."""
    path = shutil.which("mergecap")
    if path is None:
        pytest.skip("mergecap is not installed (Debian: apt-get install tshark)")
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/corpus: captures written by other tools; skip cleanly when absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not beside the checkout")
    return CORPUS


def run_srp(*args: str, env: dict | None = None, preexec_fn=None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m srp ARGS` as a user would, capturing text output."""
    return subprocess.run([sys.executable, "-m", "srp", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec_fn, cwd=REPO)


@pytest.fixture(autouse=True)
def simulators_reset(request):
    """After each test, every simulator it used is reset, so the next test of the module,
    sharing the simulator, starts with no fault left on."""
    yield
    for value in request.node.funcargs.values():   # the test's fixtures, as it had them
        if isinstance(value, VendorSimulator):
            value.reset()


# --- running a vendor command against a simulator, and what every result must satisfy ---

RESULT_KEYS = {"status", "pcap", "sha256", "packets", "bytes", "sessions", "first", "last",
               "warnings", "errors"}


def _system_ca_bundle() -> str:
    debian = "/etc/ssl/certs/ca-certificates.crt"
    return debian if Path(debian).is_file() else requests.certs.where()


# A host's environment naming its own CA bundle, which --ca-bundle must still win over.
CA_BUNDLE_ENVIRONMENT = dict.fromkeys(("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
                                      _system_ca_bundle())


@dataclass
class Run:
    """One vendor command run against a simulator."""

    code: int
    out: str
    err: str
    report: dict | None         # the --json object (last stdout line), if any
    requests: list              # what the simulator saw during this run
    seconds: float


def options_given(*options: tuple[str, object]) -> list[str]:
    """The command-line words of the (option, value) pairs whose value is not None."""
    return [word for option, value in options if value is not None
            for word in (option, str(value))]


def run_against(simulator, *args: str, ca: bool = True, as_json: bool = True,
                env: dict | None = None, run_type: type[Run] = Run) -> Run:
    """Run `python -m srp ARGS` against `simulator`, trusting its certificate (--ca-bundle)
    unless `ca` is false, with --json unless `as_json` is false: the --json object is
    checked to be the last line of stdout with the keys every vendor gives, and no traceback
    is ever printed."""
    flags = ["--ca-bundle", str(simulator.ca_bundle)] if ca else []
    if as_json:
        flags.append("--json")
    seen = len(simulator.requests)
    started = time.monotonic()
    done = run_srp(*args, *flags, env=env, timeout=120)
    seconds = time.monotonic() - started
    report = None
    if as_json:
        lines = done.stdout.strip().splitlines()
        assert lines, f"no stdout; stderr: {done.stderr}"
        report = json.loads(lines[-1])
        assert isinstance(report, dict) and RESULT_KEYS <= set(report), report
        assert set(report["sessions"]) >= {"found", "downloaded", "failed"}
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return run_type(done.returncode, done.stdout, done.stderr, report,
                    list(simulator.requests[seen:]), seconds)


def run_at_once(*args: str, runs: int = 2) -> list[dict]:
    """`python -m srp ARGS --json` in `runs` processes started together; each must end 0
    with no traceback. Their --json objects, in start order."""
    processes = [subprocess.Popen([sys.executable, "-m", "srp", *map(str, args), "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=REPO) for _ in range(runs)]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and "Traceback" not in err, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_nothing_half_written(pcap_dir: Path) -> None:
    """No temporary file, work folder or lock survives a run, whatever its outcome."""
    leftovers = [p.name for p in Path(pcap_dir).rglob("*")
                 if p.name.endswith(".part") or p.name.startswith(".srp-work-")
                 or p.name.endswith(".lock") or p.name.endswith(".download")]
    assert leftovers == []
    for path in Path(pcap_dir).iterdir():
        assert path.is_file(), f"unexpected folder {path}"


def assert_result_intact(run: Run, pcap_dir: Path) -> dict:
    """The capture named by the report exists inside pcap_dir, its SHA-256 is the one the
    report and the manifest beside it give; returns the manifest."""
    report = run.report
    pcap = Path(report["pcap"])
    assert pcap.is_absolute() and pcap.parent == Path(pcap_dir).resolve()
    assert sha256(pcap) == report["sha256"]
    assert pcap.stat().st_size == report["bytes"]
    manifest = json.loads(Path(report["manifest"]).read_text())
    assert Path(report["manifest"]).parent == Path(pcap_dir).resolve()
    assert manifest["result"]["sha256"] == report["sha256"]
    return manifest


def assert_secret_nowhere(secret: str, run: Run, pcap_dir: Path) -> None:
    """Not in the output, not in any file of the run, not anywhere the simulator saw it."""
    assert secret not in run.out and secret not in run.err
    for path in Path(pcap_dir).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    # The simulator masks the auth headers it logs; the secret must be nowhere else it saw
    # (not in a URL, not in a body, not in another header).
    for request in run.requests:
        assert secret not in request.path and secret.encode() not in request.body
        assert secret not in json.dumps(request.headers)


def read_packets(path) -> list[tuple[int, bytes]]:
    from srp.capture import open_capture

    reader = open_capture(Path(path))
    packets = []
    while (batch := reader.read_batch(1 << 16)) is not None:
        packets += [(ts, bytes(data)) for ts, _, _, data, _ in batch]
    return packets


def not_a_capture(folder: Path, what: str) -> Path:
    """An input that is no capture: "text", "empty", "directory", or "missing" (never made)."""
    path = folder / f"{what}.pcap"
    if what == "text":
        path.write_text("this is a text file, not a capture\nsecond line\n")
    elif what == "empty":
        path.write_bytes(b"")
    elif what == "directory":
        path.mkdir()
    return path


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


# --- `srp-pcap simulate ...` as a user runs it ---

@dataclass
class Serving:
    """What a simulator run from the command line printed before serving."""

    printed: str
    url: str
    ca_bundle: str


@contextlib.contextmanager
def simulator_serving(*args: str):
    """Run `simulate ARGS` in a child process until it says it serves; at the end of the
    block, Ctrl-C must stop it cleanly."""
    command = [sys.executable, "-c", "from srp.simulators.cli import simulate; simulate()",
               *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=REPO)
    try:
        lines = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line)
        printed = "".join(lines)
        yield Serving(printed, re.search(r"listening on (https://\S+)", printed).group(1),
                      re.search(r"CA bundle: (\S+)", printed).group(1))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    assert "Traceback" not in err and out.endswith("Stopped.\n")
