"""The capture in the alarm's LogRhythm case: `--case` on a retrieval and `srp-pcap attach`,
end to end (python -m srp, a subprocess) against the NetMon and LogRhythm simulators over
real HTTPS on loopback.

What issue 14 asks: each case mode (auto, new, a number, a GUID), the new case named after
the alarm and holding it, the uploaded bytes identical to the capture, the note naming the
SHA-256, the alarm comment, no second upload on a repeated alarm, the size-limit note, every
fault with its outcome and the capture still on disk, `attach` by hand; the token in no
output, log or manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from pathlib import Path

import pytest
from conftest import (
    ALARM_DATE,
    CA_BUNDLE_ENVIRONMENT,
    NOW,
    assert_nothing_half_written,
    assert_result_intact,
    one_error_line,
    run_against,
    run_at_once,
    run_srp,
    sha256,
)

from srp.simulators.logrhythm import AlarmSpec, CaseSpec, LogRhythmSimulator
from srp.simulators.netmon import NetMonSimulator, SessionSpec

KEY = "netmon-key-for-cases-7d1e"
TOKEN = "lr-token-0b5c7e19a3f2"
QUERY = "case.example"
RULE = "AIE: Suspicious Domain"
# Cases that exist before any run (the simulator is back to them after each test).
OLDER, NEWER, ANALYST, BY_NUMBER, BY_ID, NO_ALARM, BY_HAND, DENIED = (
    f"{n:08X}-0000-4000-8000-{n:012X}" for n in range(1, 9))
CASES = [CaseSpec("older", id=OLDER, date_created=NOW - dt.timedelta(days=2)),
         CaseSpec("newer", id=NEWER, date_created=NOW - dt.timedelta(days=1)),
         CaseSpec("analyst's", id=ANALYST), CaseSpec("by number", id=BY_NUMBER),
         CaseSpec("by id", id=BY_ID), CaseSpec("no alarm", id=NO_ALARM),
         CaseSpec("by hand", id=BY_HAND)]


@pytest.fixture(scope="module")
def netmon():
    sessions = [SessionSpec(id=f"c{n}", domain=QUERY, payload_packets=3,
                            start=NOW - dt.timedelta(minutes=5 * n)) for n in range(1, 4)]
    with NetMonSimulator(sessions, api_key=KEY) as simulator:
        yield simulator


# Alarm ids: each test takes its own. 5002 is in two cases already (and one deleted since:
# a case the token cannot see), 5003 in the analyst's.
ASSOCIATED = {5002: (OLDER, NEWER, DENIED), 5003: (ANALYST,)}
ALARMS = [AlarmSpec(alarm_id, rule_name=RULE, date=NOW,
                    associated_cases=ASSOCIATED.get(alarm_id, ()))
          for alarm_id in range(5001, 5040)]


@pytest.fixture(scope="module")
def lr():
    with LogRhythmSimulator(ALARMS, token=TOKEN, cases=CASES,
                            complete_after=0.1) as simulator:
        yield simulator


def retrieve(netmon, lr, pcap_dir: Path, alarm_id, *case_args: str, token: str = TOKEN,
             lr_ca: bool = True, env: dict | None = None):
    """`srp-pcap netmon` for the alarm, with the case options given."""
    words = ["--lr-address", lr.url, "--lr-token", token] if token else ["--lr-address", lr.url]
    if lr_ca:
        words += ["--lr-ca-bundle", str(lr.ca_bundle)]
    alarm = ["--alarm-id", str(alarm_id)] if alarm_id is not None else []
    return run_against(netmon, "netmon", "--address", netmon.url, "--api-key", KEY,
                       "--query", QUERY, "--alarm-date", ALARM_DATE, "--pcap-dir",
                       str(pcap_dir), *alarm, *words, *case_args, env=env)


def attach(lr, capture: Path, *args: str, as_json: bool = True):
    words = ["attach", str(capture), "--lr-address", lr.url, "--lr-token", TOKEN,
             "--lr-ca-bundle", str(lr.ca_bundle), *args]
    done = run_srp(*words, *(["--json"] if as_json else []))
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1]) if as_json else None
    return done, report


def lr_requests(lr, since: int, method: str | None = None, part: str = "") -> list:
    return [request for request in lr.requests[since:]
            if (method is None or request.method == method) and part in request.path]


def file_evidence(lr, case_id: str) -> list[dict]:
    return [item for item in lr.evidence(case_id) if item["type"] == "file"]


def assert_attached(lr, run, pcap_dir: Path, alarm_id: int) -> dict:
    """The capture is in the case the report names: bytes identical, a note naming its
    SHA-256, packets and manifest; the alarm's comment names the case; the manifest
    records the case step. Returns the report's case."""
    report = run.report
    manifest = assert_result_intact(run, pcap_dir)
    case = report["case"]
    assert case["status"] == "attached" and len(case["evidence"]) == 1, case
    (number,) = case["evidence"]
    record = next(item for item in lr.evidence(case["id"]) if item["number"] == number)
    assert record["type"] == "file" and record["status"] == "completed"
    capture = Path(report["pcap"])
    assert record["file"]["name"] == capture.name
    assert lr.uploaded_path(case["id"], number).read_bytes() == capture.read_bytes()
    assert f"SHA-256: {report['sha256']}" in record["text"]
    assert f"Packets: {report['packets']}," in record["text"]
    assert Path(report["manifest"]).name in record["text"]
    comment = lr.comments(alarm_id)[-1]
    assert f"case {case['number']}" in comment and case["name"] in comment
    assert capture.name in comment and report["sha256"] in comment
    assert manifest["result"]["case"] == case
    assert TOKEN not in run.out + run.err
    assert_nothing_half_written(pcap_dir)
    return case


# --- the case modes ---

def test_auto_without_a_case_makes_one_named_after_the_alarm_holding_it(netmon, lr, tmp_path):
    run = retrieve(netmon, lr, tmp_path, 5001, "--case", "auto")
    assert run.code == 0, run.err
    case = assert_attached(lr, run, tmp_path, 5001)
    made = lr.case(case["id"])
    assert made["name"] == case["name"] == f"{RULE} (alarm 5001)"
    assert made["externalId"] == "srp-pcap:5001"
    alarms = [item for item in lr.evidence(case["id"]) if item["type"] == "alarm"]
    assert [item["alarm"]["alarmId"] for item in alarms] == [5001]
    assert run.report["status"] == "ok"


def test_auto_takes_the_newest_of_the_alarms_own_cases(netmon, lr, tmp_path):
    cases_before = len(lr.cases())
    run = retrieve(netmon, lr, tmp_path, 5002, "--case", "auto")
    assert run.code == 0, run.err
    case = assert_attached(lr, run, tmp_path, 5002)
    assert case["id"] == NEWER and case["number"] == lr.case(NEWER)["number"]
    assert file_evidence(lr, OLDER) == []
    assert len(lr.cases()) == cases_before


def test_new_never_takes_the_alarms_case_and_finds_its_own_again(netmon, lr, tmp_path):
    first = retrieve(netmon, lr, tmp_path / "one", 5003, "--case", "new")
    assert first.code == 0, first.err
    case = assert_attached(lr, first, tmp_path / "one", 5003)
    assert case["id"] != ANALYST and file_evidence(lr, ANALYST) == []
    # Another Event Manager (another --pcap-dir) retrieves the same alarm: the same case.
    seen = len(lr.requests)
    second = retrieve(netmon, lr, tmp_path / "two", 5003, "--case", "new")
    assert second.code == 0, second.err
    assert second.report["case"]["id"] == case["id"]
    assert second.report["case"]["evidence"] == []            # the same capture: not again
    assert "already in the case" in second.report["case"]["reason"]
    assert lr_requests(lr, seen, "POST", "/evidence/file") == []
    assert lr_requests(lr, seen, "POST", "/lr-case-api/cases") == []
    assert len(file_evidence(lr, case["id"])) == 1


@pytest.mark.parametrize("by", ["number", "id"])
def test_a_case_named_by_number_or_guid(netmon, lr, tmp_path, by):
    target = lr.case(BY_NUMBER if by == "number" else BY_ID)
    alarm_id = 5004 if by == "number" else 5005
    run = retrieve(netmon, lr, tmp_path, alarm_id, "--case", str(target[by]).lower())
    assert run.code == 0, run.err
    case = assert_attached(lr, run, tmp_path, alarm_id)
    assert case["id"] == target["id"] and case["name"] == f"by {by}"


def test_a_case_named_without_an_alarm_takes_the_capture_without_a_comment(
        netmon, lr, tmp_path):
    target = lr.case(NO_ALARM)
    seen = len(lr.requests)
    run = retrieve(netmon, lr, tmp_path, None, "--case", str(target["number"]))
    assert run.code == 0, run.err
    assert run.report["case"]["status"] == "attached"
    assert lr_requests(lr, seen, part="/lr-alarm-api/") == []


def test_the_summary_names_the_case(netmon, lr, tmp_path):
    run = run_against(netmon, "netmon", "--address", netmon.url, "--api-key", KEY, "--query",
                      QUERY, "--alarm-date", ALARM_DATE, "--pcap-dir", str(tmp_path),
                      "--alarm-id", "5006", "--lr-address", lr.url, "--lr-token", TOKEN,
                      "--lr-ca-bundle", str(lr.ca_bundle), "--case", "auto", as_json=False)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) <= 40
    case_line = next(line for line in lines if line.startswith("case:"))
    assert re.fullmatch(rf'case:     case \d+, capture attached as evidence \d+: '
                        rf'"{RULE} \(alarm 5006\)"', case_line), case_line


def test_without_case_nothing_reaches_logrhythm(netmon, lr, tmp_path):
    seen = len(lr.requests)
    run = retrieve(netmon, lr, tmp_path, 5007)
    assert run.code == 0, run.err
    assert run.report["case"] is None
    assert lr.requests[seen:] == []


def test_nothing_found_means_nothing_to_attach(netmon, lr, tmp_path):
    seen = len(lr.requests)
    run = run_against(netmon, "netmon", "--address", netmon.url, "--api-key", KEY, "--query",
                      "nothing.example", "--alarm-date", ALARM_DATE, "--pcap-dir",
                      str(tmp_path), "--alarm-id", "5031", "--lr-address", lr.url,
                      "--lr-token", TOKEN, "--lr-ca-bundle", str(lr.ca_bundle), "--case",
                      "auto")
    assert run.code == 3, run.err
    assert run.report["case"] == {"id": None, "number": None, "name": None,
                                  "status": "skipped", "evidence": [],
                                  "reason": "no capture to attach"}
    assert lr.requests[seen:] == []


def test_a_slow_upload_still_arrives_whole(netmon, lr, tmp_path):
    lr.set_faults("slow-upload")
    run = retrieve(netmon, lr, tmp_path, 5032, "--case", "auto")
    assert run.code == 0, run.err
    assert_attached(lr, run, tmp_path, 5032)


# --- never twice ---

def test_a_repeated_alarm_reuses_the_capture_and_does_not_upload_it_again(
        netmon, lr, tmp_path):
    first = retrieve(netmon, lr, tmp_path, 5008, "--case", "auto")
    case = assert_attached(lr, first, tmp_path, 5008)
    seen = len(lr.requests)
    again = retrieve(netmon, lr, tmp_path, 5008, "--case", "auto")
    assert again.code == 0 and again.report["reused"], again.err
    assert again.report["case"]["id"] == case["id"]
    assert again.report["case"]["status"] == "attached"
    assert again.report["case"]["evidence"] == []
    assert lr_requests(lr, seen, "POST") == []
    # --force fetches again; the same packets make the same capture, still not attached twice
    forced = retrieve(netmon, lr, tmp_path, 5008, "--case", "auto", "--force")
    assert forced.report["sha256"] == first.report["sha256"]
    assert forced.report["case"]["evidence"] == []
    assert len(file_evidence(lr, case["id"])) == 1


def test_two_runs_of_one_alarm_at_once_upload_once(netmon, lr, tmp_path):
    reports = run_at_once("netmon", "--address", netmon.url, "--api-key", KEY, "--query",
                          QUERY, "--alarm-date", ALARM_DATE, "--pcap-dir", tmp_path,
                          "--alarm-id", "5009", "--ca-bundle", netmon.ca_bundle,
                          "--lr-address", lr.url, "--lr-token", TOKEN, "--lr-ca-bundle",
                          lr.ca_bundle, "--case", "auto")
    (case_id,) = {report["case"]["id"] for report in reports}
    assert len(file_evidence(lr, case_id)) == 1
    assert sorted(len(report["case"]["evidence"]) for report in reports) == [0, 1]
    assert len([case for case in lr.cases() if case["externalId"] == "srp-pcap:5009"]) == 1


# --- too large for the case ---

def test_a_capture_over_the_case_limit_leaves_a_note_with_its_path(netmon, lr, tmp_path):
    seen = len(lr.requests)
    run = retrieve(netmon, lr, tmp_path, 5010, "--case", "auto", "--case-max-bytes", "1K")
    assert run.code == 0, run.err
    case = run.report["case"]
    assert case["status"] == "noted" and "--case-max-bytes" in case["reason"]
    assert lr_requests(lr, seen, "POST", "/evidence/file") == []
    (note,) = [item for item in lr.evidence(case["id"]) if item["type"] == "note"]
    assert note["number"] in case["evidence"]
    assert run.report["pcap"] in note["text"]
    assert f"SHA-256: {run.report['sha256']}" in note["text"]
    assert f"({run.report['bytes']} bytes)" in note["text"]
    assert any("not uploaded" in warning for warning in run.report["warnings"])
    assert "too large for the case" in lr.comments(5010)[-1]
    again = retrieve(netmon, lr, tmp_path, 5010, "--case", "auto", "--case-max-bytes", "1K")
    assert again.report["case"]["status"] == "noted"
    assert len([item for item in lr.evidence(case["id"]) if item["type"] == "note"]) == 1


def test_a_413_from_the_server_leaves_the_note_too(netmon, lr, tmp_path):
    lr.set_faults("too-large")
    run = retrieve(netmon, lr, tmp_path, 5011, "--case", "auto")
    assert run.code == 0, run.err
    case = run.report["case"]
    assert case["status"] == "noted"
    assert "refused the upload as too large" in case["reason"] and "413" in case["reason"]
    assert file_evidence(lr, case["id"]) == []


# --- failures: the capture stays, the run is partial, the reason names the case step ---

FAULTS = {
    "bad-token": "HTTP 401",
    "no-case-rights": "HTTP 403",
    "server-error": "HTTP 500",
    "html-error": "HTTP 502",
    "evidence-failed": "could not process the uploaded capture",
    "alarm-unknown": "HTTP 404",
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failing_case_step_keeps_the_capture_and_ends_partial(netmon, lr, tmp_path, fault):
    lr.set_faults(fault)
    run = retrieve(netmon, lr, tmp_path, 5012 + sorted(FAULTS).index(fault), "--case",
                   "auto")
    assert run.code == 4, run.err
    report = run.report
    assert report["status"] == "partial"
    assert "the case step failed" in report["reason"] and FAULTS[fault] in report["reason"]
    assert report["case"]["status"] == "failed" and FAULTS[fault] in report["case"]["reason"]
    manifest = assert_result_intact(run, tmp_path)
    assert manifest["result"]["case"]["status"] == "failed"
    assert manifest["result"]["status"] == "ok"    # the capture is reused and tried again
    assert "<html" not in report["reason"].lower()
    assert TOKEN not in run.out + run.err
    assert_nothing_half_written(tmp_path)


def test_after_a_failure_the_next_run_attaches_the_reused_capture(netmon, lr, tmp_path):
    lr.set_faults("server-error")
    failed = retrieve(netmon, lr, tmp_path, 5020, "--case", "auto")
    assert failed.code == 4
    lr.clear_faults()
    again = retrieve(netmon, lr, tmp_path, 5020, "--case", "auto")
    assert again.code == 0 and again.report["reused"], again.err
    assert again.report["case"]["status"] == "attached"
    assert again.report["sha256"] == failed.report["sha256"]


def test_an_unreachable_gateway_is_one_clear_reason(netmon, lr, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    run = run_against(netmon, "netmon", "--address", netmon.url, "--api-key", KEY, "--query",
                      QUERY, "--alarm-date", ALARM_DATE, "--pcap-dir", str(tmp_path),
                      "--alarm-id", "5021", "--lr-address", f"127.0.0.1:{closed_port}",
                      "--lr-token", TOKEN, "--case", "auto")
    assert run.code == 4
    assert f"cannot reach https://127.0.0.1:{closed_port}" in run.report["case"]["reason"]
    assert_result_intact(run, tmp_path)


def test_the_lr_ca_bundle_wins_over_the_environment_and_is_needed(netmon, lr, tmp_path):
    trusted = retrieve(netmon, lr, tmp_path / "a", 5022, "--case", "auto",
                       env=CA_BUNDLE_ENVIRONMENT)
    assert trusted.code == 0, trusted.err
    untrusted = retrieve(netmon, lr, tmp_path / "b", 5023, "--case", "auto", lr_ca=False,
                         env=CA_BUNDLE_ENVIRONMENT)
    assert untrusted.code == 4
    assert "give its CA with --lr-ca-bundle" in untrusted.report["case"]["reason"]


def test_lr_insecure_is_said_loudly(netmon, lr, tmp_path):
    run = retrieve(netmon, lr, tmp_path, 5024, "--case", "auto", "--lr-insecure",
                   lr_ca=False)
    assert run.code == 0, run.err
    assert "TLS certificate verification is OFF (--lr-insecure)" in run.err


def test_the_token_is_nowhere_but_in_the_authorization_header(netmon, lr, tmp_path):
    seen = len(lr.requests)
    run = retrieve(netmon, lr, tmp_path, 5025, "--case", "auto", "-v")
    assert run.code == 0, run.err
    assert TOKEN not in run.out + run.err
    for path in tmp_path.rglob("*"):
        assert TOKEN.encode() not in path.read_bytes(), path
    for request in lr.requests[seen:]:
        assert TOKEN not in request.path and TOKEN.encode() not in request.body
        assert TOKEN not in json.dumps(request.headers)


# --- bad case options: one line, exit 2, nothing fetched ---

BAD = {
    "auto-without-alarm": (None, ["--case", "auto"], "--case auto needs --alarm-id"),
    "no-address": (5026, ["--case", "auto", "--lr-address", ""], "needs --lr-address"),
    "bogus-case": (5026, ["--case", "../cases/1"], "--case: expected auto, new, a case"),
    "alarm-not-a-number": ("12a", ["--case", "auto"], "a LogRhythm alarm id is a whole"),
    "bad-size": (5026, ["--case", "auto", "--case-max-bytes", "lots"], "--case-max-bytes"),
    "missing-ca": (5026, ["--case", "auto", "--lr-ca-bundle", "/nonexistent/ca.pem"],
                   "--lr-ca-bundle /nonexistent/ca.pem: no such file"),
    "ca-and-insecure": (5026, ["--case", "auto", "--lr-insecure"],
                        "--lr-ca-bundle and --lr-insecure contradict each other"),
}


@pytest.mark.parametrize("alarm_id, words, message", BAD.values(), ids=BAD.keys())
def test_bad_case_options_stop_before_anything_is_fetched(netmon, lr, tmp_path, alarm_id,
                                                          words, message):
    seen_lr = len(lr.requests)
    run = retrieve(netmon, lr, tmp_path, alarm_id, *words)
    assert run.code == 2, run.err
    assert message in one_error_line(run.err)
    assert run.requests == [] and lr.requests[seen_lr:] == []


def test_the_token_may_come_from_the_environment(netmon, lr, tmp_path):
    run = retrieve(netmon, lr, tmp_path, 5027, "--case", "auto", token="",
                   env={"SRP_LR_TOKEN": TOKEN})
    assert run.code == 0, run.err
    assert run.report["case"]["status"] == "attached"


# --- attach by hand ---

def test_attach_takes_the_alarm_and_summary_from_the_manifest(netmon, lr, tmp_path):
    run = retrieve(netmon, lr, tmp_path, 5028)
    capture = Path(run.report["pcap"])
    done, report = attach(lr, capture, "--case", "auto")
    assert done.returncode == 0, done.stderr
    case = report["case"]
    assert case["status"] == "attached" and case["name"] == f"{RULE} (alarm 5028)"
    (number,) = case["evidence"]
    assert lr.uploaded_path(case["id"], number).read_bytes() == capture.read_bytes()
    manifest = json.loads(Path(run.report["manifest"]).read_text())
    assert manifest["result"]["case"] == case
    again, report = attach(lr, capture, "--case", "auto")
    assert again.returncode == 0 and report["case"]["evidence"] == []


def test_attach_a_capture_without_a_manifest_to_a_case_by_number(netmon, lr, tmp_path):
    run = retrieve(netmon, lr, tmp_path / "run", 5029)
    capture = tmp_path / "evidence.pcap"
    capture.write_bytes(Path(run.report["pcap"]).read_bytes())
    target = lr.case(BY_HAND)
    done, report = attach(lr, capture, "--case", str(target["number"]), as_json=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("srp-pcap attach: OK: capture attached as evidence")
    assert re.search(rf'^case:     case {target["number"]}, capture attached as evidence '
                     rf'\d+: "by hand"$', done.stdout, re.M), done.stdout
    (record,) = file_evidence(lr, target["id"])
    assert lr.uploaded_path(target["id"], record["number"]).read_bytes() == \
        capture.read_bytes()
    assert f"SHA-256: {sha256(capture)}" in record["text"]


def test_attach_refuses_what_is_not_a_capture_in_one_line(lr, tmp_path):
    text = tmp_path / "notes.pcap"
    text.write_text("not a capture\n")
    done, _ = attach(lr, text, "--case", "1", as_json=False)
    assert done.returncode == 1
    assert "notes.pcap" in one_error_line(done.stderr)
    done, _ = attach(lr, tmp_path / "missing.pcap", "--case", "1", as_json=False)
    assert done.returncode == 2 and "no such file" in one_error_line(done.stderr)


def test_attach_needs_a_case(lr, tmp_path):
    done, _ = attach(lr, tmp_path / "x.pcap", as_json=False)
    assert done.returncode == 2 and "--case is required" in one_error_line(done.stderr)


def test_attach_a_failure_is_exit_1_and_recorded(netmon, lr, tmp_path):
    run = retrieve(netmon, lr, tmp_path, 5030)
    lr.set_faults("no-case-rights")
    done, report = attach(lr, Path(run.report["pcap"]), "--case", "auto")
    assert done.returncode == 1
    assert report["status"] == "error" and "HTTP 403" in report["reason"]
    manifest = json.loads(Path(run.report["manifest"]).read_text())
    assert manifest["result"]["case"]["status"] == "failed"
