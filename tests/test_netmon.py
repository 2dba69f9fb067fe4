"""`srp-pcap netmon` end to end: the real command line (python -m srp, a subprocess) against
the NetMon simulator over real HTTPS on loopback.

What issue 3 asks of it: the merged capture holds exactly the captured sessions' packets in
mergecap order; sessions not captured are never downloaded; paging reaches the end; every
fault ends in its documented outcome with no traceback and nothing half-written; a hostile
query is escaped; a hostile alarm id or archive member name stays inside --pcap-dir; a key is
never echoed; --json, exit codes, caps, reuse, concurrent runs and the output format.

REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE are set on these machines: --ca-bundle must still win.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import (
    ALARM_DATE,
    CA_BUNDLE_ENVIRONMENT,
    NOW,
    REPO,
    Run,
    assert_nothing_half_written,
    assert_result_intact,
    assert_secret_nowhere,
    one_error_line,
    options_given,
    read_packets,
    run_against,
    run_srp,
    sha256,
)

from srp.simulators.capfile import LINKTYPE_RAW, PCAP_NS, PCAPNG
from srp.simulators.faults import Fault
from srp.simulators.https import RequestError
from srp.simulators.netmon import (
    SEARCH_ROUTE,
    NetMonHandler,
    NetMonSimulator,
    SessionSpec,
)

KEY = "sim-key-5f0c2a9e71"          # the one key the simulator accepts
QUERY = "alarm.example"

PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "pcap", b"\xa1\xb2\xc3\xd4": "pcap",
              b"\x4d\x3c\xb2\xa1": "nsecpcap", b"\xa1\xb2\x3c\x4d": "nsecpcap",
              b"\x0a\x0d\x0d\x0a": "pcapng"}


def _spec(session_id: str, minutes_before: float, domain: str = QUERY, **fields) -> SessionSpec:
    return SessionSpec(id=session_id, domain=domain,
                       start=NOW - dt.timedelta(minutes=minutes_before),
                       **{"payload_packets": 2, **fields})


# The alarm's sessions: five captured, two listed but never captured.
ALARM_CAPTURED = ["a1", "a2", "a3", "a4", "a5"]
CATALOGUE = [
    _spec("a1", 50), _spec("a2", 40), _spec("a3", 30), _spec("a4", 20), _spec("a5", 10),
    _spec("a-nocap-1", 45, captured=False), _spec("a-nocap-2", 15, captured=False),
    _spec("o1", 35, domain="other.example"), _spec("o2", 25, domain="other.example"),
    _spec("n1", 33, domain="nocap.example", captured=False),
    _spec("quote", 31, domain='q"uo\\te (1).example'),
    _spec("member", 29, domain="member.example", member_name="../../escaped.pcap"),
    _spec("bare", 28, domain="bare.example", archived=False),
    # Output format: one link type, microsecond (one session pcapng, one pcap) -> pcap
    _spec("fu1", 27, domain="fmt-usec.example"),
    _spec("fu2", 26, domain="fmt-usec.example", flavour=PCAPNG),
    # one link type, one session nanosecond -> nsecpcap
    _spec("fn1", 24, domain="fmt-ns.example"),
    _spec("fn2", 23, domain="fmt-ns.example", flavour=PCAP_NS),
    # two link types -> pcapng
    _spec("fm1", 22, domain="fmt-mixed.example"),
    _spec("fm2", 21, domain="fmt-mixed.example", linktype=LINKTYPE_RAW),
]


@pytest.fixture(scope="module")
def sim():
    with NetMonSimulator(CATALOGUE, api_key=KEY) as simulator:
        simulator.prepare()
        yield simulator


class NetMonRun(Run):
    """A run seen from NetMon's two routes: pcap downloads (GET) and searches (POST)."""

    @property
    def pcap_gets(self) -> list[str]:
        return [r.path for r in self.requests if r.method == "GET"]

    @property
    def searches(self) -> list[dict]:
        return [r.json() for r in self.requests if r.method == "POST"]


def netmon(sim, pcap_dir, *extra, query=QUERY, key=KEY, date=ALARM_DATE, alarm_id="1001",
           ca=True, as_json=True, env=None, address=None) -> NetMonRun:
    return run_against(sim, "netmon", "--address", address or sim.url, "--query", query,
                       "--pcap-dir", str(pcap_dir),
                       *options_given(("--api-key", key), ("--alarm-date", date),
                                      ("--alarm-id", alarm_id)),
                       *extra, ca=ca, as_json=as_json, env=env, run_type=NetMonRun)


# --- the happy path: exactly the captured sessions, in mergecap order ---

def test_merged_capture_is_exactly_the_captured_sessions_in_mergecap_order(sim, tmp_path,
                                                                          mergecap):
    out = tmp_path / "out"
    run = netmon(sim, out)
    assert run.code == 0, run.err
    report = run.report
    assert report["status"] == "ok"
    assert report["sessions"] == {"found": 7, "downloaded": 5, "failed": 0}
    assert report["errors"] == []
    assert report["pcap"].endswith(".pcap")
    manifest = assert_result_intact(run, out)

    expected = tmp_path / "mergecap.pcap"
    inputs = [str(sim.capture_path(session_id)) for session_id in ALARM_CAPTURED]
    subprocess.run([mergecap, "-F", "pcap", "-w", str(expected), *inputs], check=True)
    assert Path(report["pcap"]).read_bytes() == expected.read_bytes()

    packets = read_packets(report["pcap"])
    assert report["packets"] == len(packets) == sum(
        sim.session(i).summary.packets for i in ALARM_CAPTURED)
    assert [ts for ts, _ in packets] == sorted(ts for ts, _ in packets)
    assert report["first"].startswith("2024-05-01T11:10:00")
    assert report["last"] < "2024-05-01T12:00:00"

    # The manifest: request, window, every session, sizes and hashes of what was downloaded.
    assert manifest["request"]["vendor"] == "netmon"
    assert manifest["request"]["address"] == sim.url
    assert manifest["request"]["query"] == QUERY
    assert manifest["request"]["window"] == {"from": "2024-05-01T11:00:00Z",
                                             "to": "2024-05-01T12:15:00Z"}
    assert manifest["tool"]["version"]
    entries = {entry["id"]: entry for entry in manifest["sessions"]}
    assert set(entries) == set(ALARM_CAPTURED) | {"a-nocap-1", "a-nocap-2"}
    for session_id in ALARM_CAPTURED:
        body = sim.store.body(sim.session(session_id))
        assert entries[session_id]["status"] == "downloaded"
        assert entries[session_id]["size"] == body.stat().st_size
        assert entries[session_id]["sha256"] == sha256(body)
    assert entries["a-nocap-1"]["status"] == entries["a-nocap-2"]["status"] == "not captured"
    assert KEY not in json.dumps(manifest)


def test_sessions_not_captured_are_never_downloaded(sim, tmp_path):
    run = netmon(sim, tmp_path)
    assert run.code == 0, run.err
    assert sim.uncaptured_requests == []
    assert sorted(run.pcap_gets) == sorted(f"/api/session/{i}/pcap" for i in ALARM_CAPTURED)
    assert any("2 of 7 sessions have no captured packets" in w for w in run.report["warnings"])


def test_only_sessions_not_captured_is_no_data(sim, tmp_path):
    run = netmon(sim, tmp_path, query="nocap.example")
    assert run.code == 3, run.err
    assert run.report["status"] == "no-data" and run.report["pcap"] is None
    assert run.report["sessions"]["found"] == 1
    assert run.pcap_gets == [] and sim.uncaptured_requests == []
    assert_nothing_half_written(tmp_path)


def test_a_bare_capture_body_is_accepted_as_well_as_a_7z(sim, tmp_path):
    run = netmon(sim, tmp_path, query="bare.example")
    assert run.code == 0, run.err
    assert read_packets(run.report["pcap"]) == read_packets(sim.capture_path("bare"))


def test_paging_reaches_the_end(tmp_path):
    # 230 sessions over three pages of 100; only a few are captured, on every page, so the
    # run stays fast while the last page's sessions must be found to be downloaded.
    captured = {0, 99, 100, 150, 229}
    specs = [SessionSpec(id=f"p{i:03d}", domain="paged.example",
                         start=NOW - dt.timedelta(minutes=55) + dt.timedelta(seconds=12 * i),
                         captured=i in captured, payload_packets=1) for i in range(230)]
    out = tmp_path
    with NetMonSimulator(specs, api_key=KEY, max_page_size=100) as simulator:
        run = netmon(simulator, out, query="paged.example")
        assert run.code == 0, run.err
        assert [(s["offset"]) for s in run.searches] == [0, 100, 200]
        assert run.report["sessions"] == {"found": 230, "downloaded": 5, "failed": 0}
        assert sorted(run.pcap_gets) == [f"/api/session/p{i:03d}/pcap" for i in sorted(captured)]
        assert simulator.uncaptured_requests == []
        manifest = assert_result_intact(run, out)
        assert len(manifest["sessions"]) == 230


# --- faults: each ends in its documented outcome, nothing half-written ---

def test_503_burst_then_success(sim, tmp_path):
    sim.set_faults(Fault("503", first=2, retry_after=1),
                   Fault("503", sessions={"a2"}, first=1, retry_after=1))
    run = netmon(sim, tmp_path)
    assert run.code == 0, run.err
    assert run.report["status"] == "ok"
    assert run.report["sessions"] == {"found": 7, "downloaded": 5, "failed": 0}
    statuses = [r.status for r in run.requests]
    assert statuses.count(503) >= 2
    assert sum(1 for path in run.pcap_gets if path == "/api/session/a2/pcap") >= 2
    assert_result_intact(run, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_a_reset_download_is_retried(sim, tmp_path):
    sim.set_faults(Fault("reset", sessions={"a3"}, first=1, after_bytes=100))
    run = netmon(sim, tmp_path)
    assert run.code == 0, run.err
    assert run.report["sessions"] == {"found": 7, "downloaded": 5, "failed": 0}
    assert run.pcap_gets.count("/api/session/a3/pcap") == 2
    assert_result_intact(run, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_a_session_that_keeps_resetting_makes_a_partial_result_naming_it(sim, tmp_path):
    sim.set_faults(Fault("reset", sessions={"a3"}, after_bytes=100))
    run = netmon(sim, tmp_path)
    assert run.code == 4, run.err
    report = run.report
    assert report["status"] == "partial"
    assert report["sessions"] == {"found": 7, "downloaded": 4, "failed": 1}
    assert len(report["errors"]) == 1 and "a3" in report["errors"][0]
    assert "a3" in run.err or "a3" in run.out
    manifest = assert_result_intact(run, tmp_path)
    assert {e["id"]: e["status"] for e in manifest["sessions"]}["a3"] == "failed"
    others = [p for i in ALARM_CAPTURED if i != "a3" for p in read_packets(sim.capture_path(i))]
    assert sorted(read_packets(report["pcap"])) == sorted(others)
    assert_nothing_half_written(tmp_path)


def test_401_is_an_error_in_one_line_without_the_key(sim, tmp_path):
    sim.set_faults("401")
    run = netmon(sim, tmp_path)
    assert run.code == 1
    assert run.report["status"] == "error" and run.report["pcap"] is None
    line = one_error_line(run.err)
    assert "401" in line
    assert run.pcap_gets == []
    assert_secret_nowhere(KEY, run, tmp_path)
    assert_nothing_half_written(tmp_path)


@pytest.mark.parametrize("as_json", [True, False])
def test_a_wrong_key_is_never_echoed(sim, tmp_path, as_json):
    wrong = "WrongKey-7f3a9c0d1e"
    run = netmon(sim, tmp_path, key=wrong, as_json=as_json)
    assert run.code == 1
    assert "401" in one_error_line(run.err)
    assert run.pcap_gets == []
    assert_secret_nowhere(wrong, run, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_an_html_page_instead_of_the_search_json_is_an_error_with_the_pages_words(sim,
                                                                                  tmp_path):
    sim.set_faults(Fault("html", sessions=None))
    run = netmon(sim, tmp_path)
    assert run.code == 1
    assert run.report["status"] == "error"
    line = one_error_line(run.err)
    # The simulator's page: <title>LogRhythm NetMon - Sign In</title>,
    # <h1>Your session has expired</h1>
    assert "Sign In" in line or "session has expired" in line, line
    assert "<html" not in line.lower()
    assert run.pcap_gets == []
    assert_nothing_half_written(tmp_path)


def test_an_html_page_instead_of_a_capture_fails_that_session_quoting_it(sim, tmp_path):
    sim.set_faults(Fault("html", sessions={"a4"}))
    run = netmon(sim, tmp_path)
    assert run.code == 4, run.err
    report = run.report
    assert report["status"] == "partial"
    assert report["sessions"] == {"found": 7, "downloaded": 4, "failed": 1}
    [error] = report["errors"]
    assert "a4" in error and "Sign In" in error and "<" not in error
    assert_result_intact(run, tmp_path)
    assert b"<html" not in Path(report["pcap"]).read_bytes()
    assert_nothing_half_written(tmp_path)


def test_a_truncated_capture_is_merged_up_to_the_damage_with_a_warning(sim, tmp_path):
    sim.set_faults(Fault("truncated", sessions={"a2"}))
    run = netmon(sim, tmp_path)
    assert run.code == 0, run.err
    report = run.report
    assert report["status"] == "ok"
    total = sum(sim.session(i).summary.packets for i in ALARM_CAPTURED)
    assert report["packets"] == total - 1
    damage = [w for w in report["warnings"] if "truncated" in w or "damage" in w]
    assert len(damage) == 1, report["warnings"]
    # The analyst must learn which session is damaged, not a temporary file's name.
    assert "a2" in damage[0] and ".srp-work-" not in damage[0], damage[0]
    assert_result_intact(run, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_a_slow_server_with_a_small_timeout_fails_that_session_clearly(sim, tmp_path):
    sim.set_faults(Fault("slow", sessions={"a5"}, latency_ms=2500))
    run = netmon(sim, tmp_path, "--timeout", "1")
    assert run.code == 4, run.err
    [error] = run.report["errors"]
    assert "a5" in error
    # What happened, said plainly: the appliance was reached and answered too slowly.
    assert "timed out" in error or "did not answer" in error, error
    assert "cannot reach" not in error, error
    assert "HTTPSConnectionPool" not in error, error
    assert run.seconds < 40
    assert_result_intact(run, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_a_refused_connection_is_not_called_a_timeout(tmp_path):
    # urllib3 files a refused connection under connect timeouts: the message must still say
    # the appliance could not be reached, not that it was slow.
    with socket.socket() as probe:   # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_srp("netmon", "--address", f"127.0.0.1:{port}", "--api-key", KEY,
                     "--query", QUERY, "--pcap-dir", tmp_path, "--timeout", "1")
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert "cannot reach" in line and "did not answer" not in line, line


def test_garbage_instead_of_a_7z_fails_that_session(sim, tmp_path):
    sim.set_faults(Fault("not-7z-garbage", sessions={"a1"}))
    run = netmon(sim, tmp_path)
    assert run.code == 4, run.err
    assert run.report["sessions"] == {"found": 7, "downloaded": 4, "failed": 1}
    [error] = run.report["errors"]
    assert "a1" in error and "no capture" in error
    assert_result_intact(run, tmp_path)
    assert_nothing_half_written(tmp_path)


# --- hostile inputs ---

def test_a_hostile_query_is_sent_as_one_quoted_phrase(sim, tmp_path):
    hostile = "* OR x"
    # Unescaped, this value would match every session of the catalogue:
    raw = requests.post(sim.url + SEARCH_ROUTE, json={"query": hostile}, timeout=20,
                        headers={"Authorization": f"Bearer {KEY}"}, verify=str(sim.ca_bundle))
    assert raw.json()["total"] == len(CATALOGUE)
    run = netmon(sim, tmp_path, query=hostile)
    assert run.code == 3, run.err
    assert run.report["status"] == "no-data" and run.report["sessions"]["found"] == 0
    assert [s["query"] for s in run.searches] == ['"* OR x"']
    assert run.pcap_gets == []


def test_a_value_with_quotes_and_backslashes_matches_literally(sim, tmp_path):
    run = netmon(sim, tmp_path, query='q"uo\\te (1).example')
    assert run.code == 0, run.err
    assert run.report["sessions"]["found"] == 1
    assert [s["query"] for s in run.searches] == ['"q\\"uo\\\\te (1).example"']
    assert run.pcap_gets == ["/api/session/quote/pcap"]


@pytest.mark.parametrize("alarm_id", ["..\\..\\x", "../../etc/x", "/etc/passwd", "CON",
                                      "a" * 300, "..", "x\ny"])
def test_a_hostile_alarm_id_keeps_every_output_inside_the_pcap_dir(sim, tmp_path, alarm_id):
    out = tmp_path / "a" / "b" / "out"
    run = netmon(sim, out, alarm_id=alarm_id)
    assert run.code == 0, run.err
    assert_result_intact(run, out)
    everything = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    names = [p.name for p in out.iterdir() if p.name != "srp-pcap.log"]
    assert everything == sorted([Path("a"), Path("a/b"), Path("a/b/out"),
                                 Path("a/b/out/srp-pcap.log")]
                                + [Path("a/b/out") / name for name in names])
    assert len(names) == 2
    for name in names:
        assert name.startswith("netmon_") and len(name) < 150
        assert all(c.isalnum() or c in "._-" for c in name), name


def test_a_hostile_archive_member_name_writes_nothing_outside(sim, tmp_path):
    out = tmp_path / "deep" / "out"
    outside = [tmp_path / "escaped.pcap", tmp_path / "deep" / "escaped.pcap",
               REPO / "escaped.pcap", REPO.parent / "escaped.pcap"]
    assert not any(path.exists() for path in outside)
    run = netmon(sim, out, query="member.example")
    assert run.code in (0, 1, 4), run.err
    assert not any(path.exists() for path in outside)
    assert list(tmp_path.rglob("escaped*")) == []
    assert_nothing_half_written(out)


def test_a_hostile_archive_member_name_fails_that_session_saying_why(sim, tmp_path):
    # Member names are never used as paths (download.py names every file itself), but an
    # archive naming a member `../../escaped.pcap` is not what an appliance sends: that
    # session is refused with a sentence saying so, never called "damaged".
    run = netmon(sim, tmp_path, query="member.example")
    assert run.code == 1, run.err
    (error,) = run.report["errors"]
    assert "session member" in error and "points outside its folder" in error
    assert "damaged" not in error


# --- TLS: --ca-bundle wins over the environment's bundle ---

def test_ca_bundle_wins_over_requests_and_curl_ca_bundle(sim, tmp_path):
    run = netmon(sim, tmp_path / "with", env=CA_BUNDLE_ENVIRONMENT)
    assert run.code == 0, run.err
    assert run.report["status"] == "ok"

    refused = netmon(sim, tmp_path / "without", env=CA_BUNDLE_ENVIRONMENT, ca=False)
    assert refused.code == 1
    line = one_error_line(refused.err)
    assert "TLS" in line and "--ca-bundle" in line
    assert refused.requests == []   # the handshake failed: no request reached the server


def test_insecure_works_and_warns(sim, tmp_path):
    run = netmon(sim, tmp_path, "--insecure", ca=False)
    assert run.code == 0, run.err
    assert "--insecure" in run.err and "verification is OFF" in run.err


# --- --json, exit codes and usage ---

def test_json_object_for_every_status(sim, tmp_path):
    ok = netmon(sim, tmp_path / "ok")
    assert (ok.code, ok.report["status"]) == (0, "ok")
    assert ok.report["packets"] > 0 and ok.report["bytes"] > 0 and ok.report["sha256"]

    nothing = netmon(sim, tmp_path / "none", query="nowhere.example")
    assert (nothing.code, nothing.report["status"]) == (3, "no-data")
    assert nothing.report["pcap"] is None and nothing.report["packets"] == 0
    assert nothing.report["sessions"] == {"found": 0, "downloaded": 0, "failed": 0}
    assert_nothing_half_written(tmp_path / "none")

    sim.set_faults(Fault("not-7z-garbage", sessions={"a2"}))
    partial = netmon(sim, tmp_path / "partial")
    assert (partial.code, partial.report["status"]) == (4, "partial")
    sim.clear_faults()

    error = netmon(sim, tmp_path / "error", key="not-the-key")
    assert (error.code, error.report["status"]) == (1, "error")
    assert error.report["errors"] and error.report["pcap"] is None
    one_error_line(error.err)

    usage = netmon(sim, tmp_path / "usage", address="http://127.0.0.1:1")
    assert (usage.code, usage.report["status"]) == (2, "error")
    assert "https" in one_error_line(usage.err)
    assert usage.requests == []


def test_plain_text_summary_without_json(sim, tmp_path):
    run = netmon(sim, tmp_path, as_json=False)
    assert run.code == 0, run.err
    assert "OK" in run.out and "5 downloaded" in run.out
    assert not run.out.strip().splitlines()[-1].startswith("{")


@pytest.mark.parametrize("option, value", [
    ("--alarm-date", "the day before yesterday"), ("--max-bytes", "lots"),
    ("--address", "https://user:secret-pw@127.0.0.1"), ("--address", "127.0.0.1/api"),
])
def test_bad_values_are_usage_errors(sim, tmp_path, option, value):
    fields = {"--alarm-date": "date", "--address": "address"}
    if option in fields:
        run = netmon(sim, tmp_path, **{fields[option]: value})
    else:
        run = netmon(sim, tmp_path, option, value)
    assert run.code == 2, run.err
    one_error_line(run.err)
    assert "secret-pw" not in run.out + run.err
    assert run.requests == []


@pytest.mark.parametrize("bad", [["--max-sessions", "0"], ["--concurrency", "0"],
                                 ["--timeout", "zero"]])
def test_json_object_even_for_a_bad_command_line(sim, tmp_path, bad):
    # --json promises one JSON object as the last line of stdout, also for exit 2.
    run = run_srp("netmon", "--address", sim.url, "--api-key", KEY, "--query", QUERY,
                  "--pcap-dir", tmp_path, "--json", *bad, timeout=60)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines, f"no JSON object on stdout; stderr: {run.stderr!r}"
    report = json.loads(lines[-1])
    assert report["status"] == "error" and report["errors"]


# --- caps, environment, stray spaces, legacy auth ---

def test_max_sessions_cuts_and_says_so(sim, tmp_path):
    run = netmon(sim, tmp_path, "--max-sessions", "2")
    assert run.code == 0, run.err
    assert run.report["sessions"]["downloaded"] == 2
    assert len(run.pcap_gets) == 2
    assert any("--max-sessions" in w for w in run.report["warnings"])
    assert read_packets(run.report["pcap"]) == sorted(
        p for i in ALARM_CAPTURED[:2] for p in read_packets(sim.capture_path(i)))


def test_max_bytes_cuts_and_says_so(sim, tmp_path):
    sizes = [sim.session(i).summary.wire_bytes for i in ALARM_CAPTURED]
    limit = sizes[0] + sizes[1] + sizes[2] // 2   # two sessions fit, the third does not
    archives = sum(sim.store.body(sim.session(i)).stat().st_size for i in ALARM_CAPTURED[:2])
    assert archives < limit   # the two planned sessions' downloads fit in the limit
    run = netmon(sim, tmp_path, "--max-bytes", str(limit))
    assert any("--max-bytes" in w for w in run.report["warnings"]), run.report
    assert run.pcap_gets and len(run.pcap_gets) < 5
    # A cap is the limit the action asked for, not a failure: the sessions planned within it
    # are all merged and the outcome is ok, as with --max-sessions (never "no-data").
    assert (run.report["status"], run.report["sessions"]["downloaded"]) == ("ok", 2), \
        run.report
    assert run.code == 0
    assert_nothing_half_written(tmp_path)


def test_api_key_from_the_environment(sim, tmp_path):
    run = netmon(sim, tmp_path, key=None, env={"SRP_NETMON_API_KEY": KEY})
    assert run.code == 0, run.err
    assert KEY not in run.out + run.err


def test_values_with_stray_spaces(sim, tmp_path):
    out = tmp_path / "out"
    run = netmon(sim, f" {out} ", "--max-bytes", " 2G ", query=f"  {QUERY} \t",
                 key=f" {KEY}  ", date=f"  {ALARM_DATE} ", alarm_id=" 77 ",
                 address=f"  {sim.url}/ ")
    assert run.code == 0, run.err
    assert [s["query"] for s in run.searches] == [f'"{QUERY}"']
    assert run.report["sessions"]["downloaded"] == 5
    assert Path(run.report["pcap"]).parent == out.resolve()
    assert Path(run.report["pcap"]).name.startswith("netmon_77_")


class _LegacyOnlyHandler(NetMonHandler):
    """A NetMon 3.x look-alike: only the bare `token` header is accepted."""

    def _authenticate(self) -> None:
        if self.headers.get("Authorization") is not None:
            raise RequestError(401, "unsupported authorization scheme")
        super()._authenticate()


class _LegacyOnlyNetMon(NetMonSimulator):
    handler_class = _LegacyOnlyHandler


def test_legacy_token_header_fallback(tmp_path):
    # The simulator itself accepts both headers; this test-side subclass refuses Bearer.
    with _LegacyOnlyNetMon([_spec("l1", 20), _spec("l2", 10)], api_key=KEY) as simulator:
        run = netmon(simulator, tmp_path)
        assert run.code == 0, run.err
        assert run.report["sessions"] == {"found": 2, "downloaded": 2, "failed": 0}
        statuses = [(r.method, "token" in r.headers, r.status) for r in run.requests]
        assert ("GET", True, 200) in statuses and ("POST", True, 200) in statuses


# --- reuse and concurrent runs ---

def test_the_same_alarm_reuses_its_result_and_force_refetches(sim, tmp_path):
    first = netmon(sim, tmp_path)
    assert first.code == 0 and first.report.get("reused") is not True

    again = netmon(sim, tmp_path)
    assert again.code == 0, again.err
    assert again.report["status"] == "ok"
    assert again.pcap_gets == []
    assert again.report["pcap"] == first.report["pcap"]
    assert again.report["sha256"] == first.report["sha256"]
    assert again.report["sessions"] == first.report["sessions"]

    forced = netmon(sim, tmp_path, "--force")
    assert forced.code == 0, forced.err
    assert sorted(forced.pcap_gets) == sorted(first.pcap_gets)
    assert_result_intact(forced, tmp_path)

    # A damaged earlier result is not reused.
    Path(forced.report["pcap"]).write_bytes(b"damaged")
    if forced.report["pcap"] != first.report["pcap"]:
        Path(first.report["pcap"]).write_bytes(b"damaged")
    repaired = netmon(sim, tmp_path)
    assert repaired.code == 0 and len(repaired.pcap_gets) == 5
    assert_result_intact(repaired, tmp_path)
    assert_nothing_half_written(tmp_path)


def test_a_partial_result_is_topped_up_with_what_it_lacks(sim, tmp_path):
    """Not reused: the next run fetches only the session that failed, and its capture holds
    all five; the partial result it supersedes is gone."""
    sim.set_faults(Fault("not-7z-garbage", sessions={"a2"}))
    partial = netmon(sim, tmp_path)
    assert partial.code == 4 and partial.report["final"] is False
    sim.clear_faults()
    again = netmon(sim, tmp_path)
    assert again.code == 0, again.err
    assert again.pcap_gets == ["/api/session/a2/pcap"]
    assert again.report["new"] == 1 and again.report["final"] is True
    assert again.report["sessions"] == {"found": 7, "downloaded": 5, "failed": 0}
    assert "(1 new, with the earlier capture's 4)" in again.report["reason"]
    expected = sorted(p for i in ALARM_CAPTURED for p in read_packets(sim.capture_path(i)))
    assert sorted(read_packets(again.report["pcap"])) == expected
    manifest = assert_result_intact(again, tmp_path)
    assert sorted(e["id"] for e in manifest["sessions"] if e["status"] == "downloaded") == \
        sorted(ALARM_CAPTURED)
    assert not Path(partial.report["pcap"]).exists()
    assert not Path(partial.report["manifest"]).exists()
    assert sorted(tmp_path.glob("*.pcap")) == [Path(again.report["pcap"])]
    assert sorted(tmp_path.glob("*.json")) == [Path(again.report["manifest"])]
    assert_nothing_half_written(tmp_path)


def test_two_runs_for_one_alarm_at_once(sim, tmp_path):
    args = ["netmon", "--address", sim.url, "--api-key", KEY, "--query", QUERY,
            "--alarm-date", ALARM_DATE, "--alarm-id", "2002", "--pcap-dir", str(tmp_path),
            "--ca-bundle", str(sim.ca_bundle), "--json"]
    seen = len(sim.requests)
    processes = [subprocess.Popen([sys.executable, "-m", "srp", *args], cwd=REPO, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
    results = [process.communicate(timeout=120) for process in processes]
    for process, (out, err) in zip(processes, results):
        assert process.returncode == 0, err
        assert "Traceback" not in err
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    for report in reports:
        assert report["status"] == "ok"
        assert sha256(report["pcap"]) == report["sha256"]
        manifest = json.loads(Path(report["manifest"]).read_text())
        assert manifest["result"]["sha256"] == report["sha256"]
        assert report["packets"] == sum(sim.session(i).summary.packets for i in ALARM_CAPTURED)
    gets = [r for r in sim.requests[seen:] if r.method == "GET"]
    if reports[0]["pcap"] == reports[1]["pcap"]:
        assert len(gets) == 5   # one fetched, the other reused it
        assert sorted(report["reused"] for report in reports) == [False, True]
    assert_nothing_half_written(tmp_path)


# --- output format ---

@pytest.mark.parametrize("query, expected, members", [
    ("fmt-usec.example", "pcap", ["fu1", "fu2"]),
    ("fmt-ns.example", "nsecpcap", ["fn1", "fn2"]),
    ("fmt-mixed.example", "pcapng", ["fm1", "fm2"]),
])
def test_output_format_follows_the_sessions(sim, tmp_path, query, expected, members):
    run = netmon(sim, tmp_path, query=query)
    assert run.code == 0, run.err
    pcap = Path(run.report["pcap"])
    assert PCAP_MAGIC[pcap.read_bytes()[:4]] == expected
    assert pcap.suffix == (".pcapng" if expected == "pcapng" else ".pcap")
    assert run.report["packets"] == sum(sim.session(i).summary.packets for i in members)
    got = sorted(ts for ts, _ in read_packets(pcap))
    want = sorted(ts for i in members for ts, _ in read_packets(sim.capture_path(i)))
    assert got == want

