"""The LogRhythm simulator over real HTTPS on loopback: Bearer auth, the alarm API (details,
associatedCases, comments), cases (create, by GUID or number, externalId and text search,
header paging), evidence (alarms, notes, files streamed to disk and back, pending then
processed, the refusals of an upload), every fault, and `simulate logrhythm` run as a user
runs it.

REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE may be set here and would override Session.verify: every
request passes verify= itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import socket
import ssl
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from click.testing import CliRunner
from conftest import NOW, simulator_serving
from requests_toolbelt import MultipartEncoder

from srp.simulators.cli import simulate
from srp.simulators.faults import Fault
from srp.simulators.https import MASK
from srp.simulators.logrhythm import (
    FAULTS,
    AlarmSpec,
    CaseSpec,
    LogRhythmSimulator,
    default_alarms,
)

KNOWN_CASE = "0A1B2C3D-4E5F-6789-ABCD-EF0123456789"
HIDDEN_CASE = "FFFFFFFF-0000-1111-2222-333333333333"   # associated, but not a case it serves
GUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z")
ALARMS = [AlarmSpec(4242, "AIE: Suspicious Download", NOW),
          AlarmSpec(77, "AIE: Beaconing", NOW - dt.timedelta(minutes=1),
                    associated_cases=(KNOWN_CASE.lower(), HIDDEN_CASE)),
          AlarmSpec(78)]
CASES = [CaseSpec("Existing case", number=5, externalId="ticket-1", id=KNOWN_CASE,
                  date_created=NOW)]
RECORD_KEYS = {"number", "dateCreated", "dateUpdated", "createdBy", "type", "status",
               "statusMessage", "text", "pinned", "file", "alarm"}
CASE_KEYS = {"id", "number", "externalId", "dateCreated", "dateUpdated", "name", "status",
             "priority", "summary", "owner"}


@pytest.fixture(scope="module")
def siem():
    with LogRhythmSimulator(ALARMS, token="the-token", cases=CASES,
                            complete_after=0.3) as simulator:
        yield simulator


def call(simulator, method: str, route: str, token: str | bool | None = None, **kwargs):
    """A request to the simulator, with its token unless `token` is another (False: none)."""
    headers = kwargs.pop("headers", {})
    if token is not False:
        headers.setdefault("Authorization", f"Bearer {token or simulator.token}")
    return requests.request(method, simulator.url + route, headers=headers, timeout=30,
                            verify=str(simulator.ca_bundle), **kwargs)


def new_case(simulator, name: str = "srp-pcap captures", **fields) -> dict:
    answer = call(simulator, "POST", "/lr-case-api/cases",
                  json={"name": name, "priority": 3, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


def upload(simulator, case_id, content: bytes = b"\xd4\xc3\xb2\xa1capture", *,
           name: str = "alarm.pcap", note: str | None = None, **kwargs):
    files = {"file": (name, content, "application/vnd.tcpdump.pcap")}
    if note is not None:
        files["note"] = (None, note)
    return call(simulator, "POST", f"/lr-case-api/cases/{case_id}/evidence/file", files=files,
                **kwargs)


def problem(answer, status: int) -> str:
    assert answer.status_code == status, answer.text
    document = answer.json()
    assert set(document) == {"code", "message"} and document["code"] == status
    return document["message"]


def upload_head(simulator, case_id: str, length: int) -> str:
    """The head of a file upload announcing `length` body bytes, as it goes on the wire."""
    return (f"POST /lr-case-api/cases/{case_id}/evidence/file HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {simulator.token}\r\nContent-Length: {length}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n")


@contextlib.contextmanager
def raw_connection(simulator):
    """A TLS connection to the simulator, to send what requests would not."""
    context = ssl.create_default_context(cafile=str(simulator.ca_bundle))
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            yield tls


def wait_status(simulator, case_id, number: int, status: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        record = call(simulator, "GET", f"/lr-case-api/cases/{case_id}/evidence/{number}")
        if record.json()["status"] == status or time.monotonic() > deadline:
            return record.json()
        time.sleep(0.05)


# --- auth ---

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic the-token"},
                                     {"Authorization": "Bearer"}])
def test_every_route_needs_the_bearer_token(siem, headers):
    for method, route in (("GET", "/lr-alarm-api/alarms/4242"), ("GET", "/lr-case-api/cases"),
                          ("POST", f"/lr-case-api/cases/{KNOWN_CASE}/evidence/note")):
        answer = call(siem, method, route, token=False, headers=dict(headers), json={})
        problem(answer, 401)
        assert "the-token" not in answer.text
    lower = call(siem, "GET", "/lr-alarm-api/alarms/4242", token=False,
                 headers={"Authorization": "bearer the-token"})
    assert lower.status_code == 200


def test_the_request_log_masks_the_token(siem):
    call(siem, "GET", "/lr-alarm-api/alarms/4242")
    assert siem.requests[-1].headers["Authorization"] == MASK
    assert all("the-token" not in json.dumps(entry.headers) for entry in siem.requests)


# --- alarms ---

def test_an_alarm_with_the_cases_it_is_evidence_in(siem):
    answer = call(siem, "GET", "/lr-alarm-api/alarms/77")
    assert answer.status_code == 200
    assert answer.json() == {"alarmDetails": {
        "alarmId": 77, "alarmRuleName": "AIE: Beaconing", "alarmStatus": "New",
        "dateInserted": "2024-05-01T11:59:00.000Z", "entityName": "Primary Site",
        "associatedCases": [KNOWN_CASE, HIDDEN_CASE]}, "message": "", "statusCode": 200}
    assert call(siem, "GET", "/lr-alarm-api/alarms/4242").json()["alarmDetails"][
        "associatedCases"] == []
    assert "not found" in problem(call(siem, "GET", "/lr-alarm-api/alarms/9999"), 404)
    problem(call(siem, "GET", "/lr-alarm-api/alarms/abc"), 404)


def test_comments_are_kept_per_alarm(siem):
    answer = call(siem, "POST", "/lr-alarm-api/alarms/4242/comment",
                  json={"alarmComment": "srp-pcap: 3 captures attached to case 6"})
    assert answer.status_code == 200
    assert answer.json() == {"statusCode": 200, "message": "Comment added successfully"}
    assert siem.comments(4242) == ["srp-pcap: 3 captures attached to case 6"]
    assert siem.comments(77) == []
    for body in ({}, {"alarmComment": ""}, {"alarmComment": "  "}, {"alarmComment": 3}, []):
        problem(call(siem, "POST", "/lr-alarm-api/alarms/4242/comment", json=body), 400)
    problem(call(siem, "POST", "/lr-alarm-api/alarms/4242/comment", data=b"not json"), 400)
    problem(call(siem, "POST", "/lr-alarm-api/alarms/9999/comment",
                 json={"alarmComment": "x"}), 404)
    assert siem.comments(4242) == ["srp-pcap: 3 captures attached to case 6"]


# --- cases ---

def test_a_new_case_and_finding_it_by_guid_or_number(siem):
    case = new_case(siem, "Alarm 4242: captures", summary="from srp-pcap",
                    externalId="srp-4242")
    assert set(case) == CASE_KEYS and GUID.fullmatch(case["id"])
    assert case["number"] == 6                             # after the existing case 5
    assert (case["name"], case["priority"], case["summary"], case["externalId"]) == (
        "Alarm 4242: captures", 3, "from srp-pcap", "srp-4242")
    assert case["status"] == {"name": "Created", "number": 1}
    assert case["owner"] == {"number": -100, "name": "LogRhythm Administrator",
                             "disabled": False}
    assert DATE.fullmatch(case["dateCreated"]) and DATE.fullmatch(case["dateUpdated"])
    for key in (case["id"], case["id"].lower(), "6"):
        assert call(siem, "GET", f"/lr-case-api/cases/{key}").json() == case
    assert new_case(siem, "second")["number"] == 7
    assert siem.case(6) == case and [c["number"] for c in siem.cases()] == [5, 6, 7]
    problem(call(siem, "GET", "/lr-case-api/cases/99"), 404)
    problem(call(siem, "GET", "/lr-case-api/cases/00000000-0000-0000-0000-000000000000"), 404)
    problem(call(siem, "GET", "/lr-case-api/cases/not-a-case"), 404)


@pytest.mark.parametrize("body", [
    {"priority": 3}, {"name": "", "priority": 3}, {"name": "x" * 251, "priority": 3},
    {"name": "x"}, {"name": "x", "priority": 0}, {"name": "x", "priority": 6},
    {"name": "x", "priority": "3"}, {"name": "x", "priority": True},
    {"name": "x", "priority": 3, "summary": 5}, {"name": "x", "priority": 3, "externalId": 1},
    ["name"],
])
def test_a_bad_case_is_refused(siem, body):
    problem(call(siem, "POST", "/lr-case-api/cases", json=body), 400)
    assert len(siem.cases()) == 1


def test_the_longest_name_and_an_existing_case(siem):
    assert new_case(siem, "x" * 250)["name"] == "x" * 250
    existing = siem.case(KNOWN_CASE.lower())
    assert existing["number"] == 5 and existing["externalId"] == "ticket-1"
    assert existing["dateCreated"] == "2024-05-01T12:00:00.0000000Z"


def test_search_by_external_id_and_text(siem):
    new_case(siem, "Alarm 4242", externalId="srp-4242")
    new_case(siem, "Alarm 42", externalId="srp-42")

    def names(**params):
        answer = call(siem, "GET", "/lr-case-api/cases", params=params)
        assert answer.status_code == 200
        return [case["name"] for case in answer.json()]

    assert names(externalId="srp-42") == ["Alarm 42"]                # exact, not a prefix
    assert names(externalId="srp-4") == []
    assert names(text="alarm 42") == ["Alarm 4242", "Alarm 42"]
    assert names(text="4242", externalId="srp-42") == []
    assert names() == ["Existing case", "Alarm 4242", "Alarm 42"]


def test_paging_by_offset_and_count_headers(siem):
    for index in range(34):
        new_case(siem, f"case {index}")

    def numbers(**headers):
        answer = call(siem, "GET", "/lr-case-api/cases", headers=headers)
        assert answer.status_code == 200, answer.text
        return [case["number"] for case in answer.json()]

    assert numbers() == [5, *range(6, 35)]                           # 30 by default
    assert numbers(offset="30") == [35, 36, 37, 38, 39]
    assert numbers(offset="2", count="3") == [7, 8, 9]
    assert numbers(offset="100") == []
    assert len(numbers(count="500")) == 35
    for bad in ({"count": "501"}, {"count": "0"}, {"offset": "-1"}, {"count": "x"},
                {"offset": "²"}):
        problem(call(siem, "GET", "/lr-case-api/cases", headers=bad), 400)


def test_case_numbers_stay_unique_under_concurrent_creation(siem):
    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(lambda index: new_case(siem, f"c{index}")["number"],
                                range(24)))
    assert sorted(numbers) == list(range(6, 30))


# --- evidence: alarms and notes ---

def test_alarm_evidence_updates_associated_cases(siem):
    case = new_case(siem)
    answer = call(siem, "POST", f"/lr-case-api/cases/{case['number']}/evidence/alarms",
                  json={"alarmNumbers": [4242, 78]})
    assert answer.status_code == 201
    records = answer.json()
    assert [record["number"] for record in records] == [1, 2]
    assert set(records[0]) == RECORD_KEYS
    assert (records[0]["type"], records[0]["status"], records[0]["file"]) == (
        "alarm", "completed", None)
    assert records[0]["alarm"]["alarmId"] == 4242
    assert records[0]["alarm"]["alarmRuleName"] == "AIE: Suspicious Download"
    assert siem.alarm(4242)["associatedCases"] == [case["id"]]
    assert call(siem, "GET", "/lr-alarm-api/alarms/78").json()["alarmDetails"][
        "associatedCases"] == [case["id"]]
    # An alarm already in the case is not added twice.
    again = call(siem, "POST", f"/lr-case-api/cases/{case['id']}/evidence/alarms",
                 json={"alarmNumbers": [4242]})
    assert again.status_code == 201 and again.json() == []
    assert len(siem.evidence(case["id"])) == 2 and siem.alarm(4242)["associatedCases"] == [
        case["id"]]


def test_bad_alarm_evidence_adds_nothing(siem):
    case = new_case(siem)
    route = f"/lr-case-api/cases/{case['id']}/evidence/alarms"
    assert "9999" in problem(call(siem, "POST", route, json={"alarmNumbers": [4242, 9999]}),
                             404)
    for body in ({}, {"alarmNumbers": []}, {"alarmNumbers": ["4242"]},
                 {"alarmNumbers": 4242}, {"alarmNumbers": [True]}):
        problem(call(siem, "POST", route, json=body), 400)
    assert siem.evidence(case["id"]) == [] and siem.alarm(4242)["associatedCases"] == []
    problem(call(siem, "POST", "/lr-case-api/cases/99/evidence/alarms",
                 json={"alarmNumbers": [4242]}), 404)


def test_existing_cases_hold_their_alarms_already(siem):
    records = siem.evidence(KNOWN_CASE)
    assert [(record["type"], record["alarm"]["alarmId"]) for record in records] == [
        ("alarm", 77)]
    listed = call(siem, "GET", f"/lr-case-api/cases/{KNOWN_CASE}/evidence").json()
    assert listed == records


def test_a_note(siem):
    case = new_case(siem)
    route = f"/lr-case-api/cases/{case['id']}/evidence/note"
    answer = call(siem, "POST", route, json={"text": "SHA-256 of the capture: ab12"})
    assert answer.status_code == 201
    record = answer.json()
    assert set(record) == RECORD_KEYS
    assert (record["number"], record["type"], record["status"], record["text"]) == (
        1, "note", "completed", "SHA-256 of the capture: ab12")
    assert record["file"] is None and record["alarm"] is None and record["pinned"] is False
    assert record["createdBy"]["name"] == "LogRhythm Administrator"
    assert call(siem, "POST", route, json={"text": "n" * 20000}).status_code == 201
    for body in ({}, {"text": ""}, {"text": "n" * 20001}, {"text": 5}):
        problem(call(siem, "POST", route, json=body), 400)
    assert len(siem.evidence(case["number"])) == 2


# --- evidence: files ---

def test_a_file_round_trip_pending_then_completed(siem):
    case = new_case(siem)
    content = os.urandom(300_000)
    answer = upload(siem, case["id"], content, name="alarm 4242.pcap", note="NetMon capture")
    assert answer.status_code == 201, answer.text
    record = answer.json()
    assert set(record) == RECORD_KEYS
    assert (record["number"], record["type"], record["status"], record["text"]) == (
        1, "file", "pending", "NetMon capture")
    assert record["file"] == {"name": "alarm 4242.pcap", "size": 300_000}
    assert record["statusMessage"] is None
    route = f"/lr-case-api/cases/{case['number']}/evidence"
    assert call(siem, "GET", route, params={"status": "pending"}).json()[0]["number"] == 1
    done = wait_status(siem, case["id"], 1, "completed")
    assert done["status"] == "completed" and done["dateUpdated"] > done["dateCreated"]
    assert siem.uploaded_path(case["id"], 1).read_bytes() == content
    download = call(siem, "GET", f"{route}/1/download/")
    assert download.status_code == 200 and download.content == content
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"] == 'attachment; filename="alarm 4242.pcap"'
    # The upload's body is not logged (it is never held in memory).
    logged = [entry for entry in siem.requests if entry.path.endswith("/evidence/file")]
    assert logged[-1].status == 201 and logged[-1].body == b""


def test_evidence_lists_filter_by_type_and_status(siem):
    case = new_case(siem)
    route = f"/lr-case-api/cases/{case['id']}/evidence"
    call(siem, "POST", f"{route}/note", json={"text": "a note"})
    upload(siem, case["id"])
    call(siem, "POST", f"{route}/alarms", json={"alarmNumbers": [78]})

    def listed(params=None, **headers):
        answer = call(siem, "GET", route, params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return [(record["number"], record["type"]) for record in answer.json()]

    assert listed() == [(1, "note"), (2, "file"), (3, "alarm")]
    assert listed({"type": "file"}) == [(2, "file")]
    assert listed({"type": "note,alarm"}) == [(1, "note"), (3, "alarm")]
    assert listed({"type": "file", "status": "completed"}) == []
    assert listed({"status": "pending"}) == [(2, "file")]
    assert listed(offset="1", count="1") == [(2, "file")]
    wait_status(siem, case["id"], 2, "completed")
    assert listed({"type": "file", "status": "completed,failed"}) == [(2, "file")]
    problem(call(siem, "GET", route, params={"type": "pcap"}), 400)
    problem(call(siem, "GET", route, params={"status": "done"}), 400)
    assert call(siem, "GET", f"{route}/3").json()["type"] == "alarm"
    problem(call(siem, "GET", f"{route}/4"), 404)
    problem(call(siem, "GET", f"{route}/1/download/"), 404)      # a note has no file


def test_a_20_mb_upload_is_streamed_to_disk(siem, tmp_path):
    case = new_case(siem)
    source = tmp_path / "big.pcap"
    with open(source, "wb") as file:
        for _ in range(20):
            file.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        with open(source, "rb") as file:
            encoder = MultipartEncoder({"file": ("big.pcap", file, "application/octet-stream"),
                                        "note": "twenty megabytes"})
            answer = call(siem, "POST", f"/lr-case-api/cases/{case['id']}/evidence/file",
                          data=encoder, headers={"Content-Type": encoder.content_type})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert answer.status_code == 201, answer.text
    assert answer.json()["file"] == {"name": "big.pcap", "size": 20 << 20}
    assert answer.json()["text"] == "twenty megabytes"
    stored = siem.uploaded_path(case["id"], 1)
    assert stored.parent == siem.work_dir
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(
        source.read_bytes()).digest()
    # Client and server in this process together: far below the body's 20 MB.
    assert peak < 5 << 20, peak


def test_a_connection_carries_on_after_an_upload(siem):
    case = new_case(siem)
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {siem.token}"
        route = f"{siem.url}/lr-case-api/cases/{case['id']}/evidence"
        for _ in range(2):
            answer = session.post(f"{route}/file", files={"file": ("a.pcap", b"x" * 1000)},
                                  timeout=30, verify=str(siem.ca_bundle))
            assert answer.status_code == 201 and "close" not in answer.headers.get(
                "Connection", "")
        listed = session.get(route, timeout=30, verify=str(siem.ca_bundle)).json()
        assert [record["number"] for record in listed] == [1, 2]


def test_a_hostile_file_name_stays_in_the_work_folder(siem):
    case = new_case(siem)
    answer = upload(siem, case["id"], b"data", name="../../etc/cron.d/evil")
    assert answer.status_code == 201 and answer.json()["file"]["name"] == "evil"
    assert siem.uploaded_path(case["id"], 1).parent == siem.work_dir
    unicode = upload(siem, case["id"], b"data", name="capture é.pcap")
    disposition = call(siem, "GET", f"/lr-case-api/cases/{case['id']}/evidence/2/download/"
                       ).headers["Content-Disposition"]
    assert unicode.json()["file"]["name"] == "capture é.pcap"
    assert disposition == ("attachment; filename=\"capture _.pcap\"; "
                           "filename*=UTF-8''capture%20%C3%A9.pcap")


@pytest.mark.parametrize("what", ["no file part", "no file name", "not multipart",
                                  "no closing boundary", "empty file name"])
def test_upload_refusals(siem, what):
    case = new_case(siem)
    route = f"/lr-case-api/cases/{case['id']}/evidence/file"
    boundary = "b0undary"
    content_type = f"multipart/form-data; boundary={boundary}"
    part = ('--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a.pcap"\r\n'
            'Content-Type: application/octet-stream\r\n\r\ndata\r\n')
    body = {
        "no file part": '--b0undary\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
                        'hello\r\n--b0undary--\r\n',
        "no file name": '--b0undary\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
                        'data\r\n--b0undary--\r\n',
        "not multipart": "{}",
        "no closing boundary": part,
        "empty file name": part.replace('"a.pcap"', '""') + "--b0undary--\r\n",
    }[what]
    if what == "not multipart":
        content_type = "application/json"
    answer = call(siem, "POST", route, data=body.encode(),
                  headers={"Content-Type": content_type})
    problem(answer, 400)
    assert siem.evidence(case["id"]) == [] and list(siem.work_dir.iterdir()) == []


def test_a_chunked_upload_needs_a_content_length(siem):
    case = new_case(siem)

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n"
        yield b"data\r\n--b--\r\n"

    answer = call(siem, "POST", f"/lr-case-api/cases/{case['id']}/evidence/file", data=chunks(),
                  headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert siem.requests[-1].headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" in problem(answer, 411)
    assert answer.headers["Connection"] == "close"
    assert siem.evidence(case["id"]) == []


def test_over_max_upload_is_413_before_the_body_is_read(tmp_path):
    with LogRhythmSimulator(ALARMS, max_upload=100_000) as small:
        case = new_case(small)
        started = time.monotonic()
        answer = upload(small, case["id"], os.urandom(2_000_000))
        assert "100000" in problem(answer, 413) and answer.headers["Connection"] == "close"
        assert time.monotonic() - started < 4
        assert small.evidence(case["id"]) == [] and list(small.work_dir.iterdir()) == []
        assert upload(small, case["id"], b"x" * 99_000).status_code == 201   # under it
        # The answer comes before any of the body is sent.
        with raw_connection(small) as tls:
            tls.sendall(upload_head(small, case["id"], 2_000_000).encode())
            assert tls.recv(100).startswith(b"HTTP/1.1 413 ")


def test_a_client_gone_midway_leaves_no_file(siem):
    case = new_case(siem)
    head = (upload_head(siem, case["id"], 100_000)
            + '--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n')

    def stored_soon(wanted: bool) -> bool:
        deadline = time.monotonic() + 5
        while bool(list(siem.work_dir.iterdir())) != wanted and time.monotonic() < deadline:
            time.sleep(0.02)
        return bool(list(siem.work_dir.iterdir()))

    with raw_connection(siem) as tls:
        tls.sendall(head.encode() + b"x" * 70_000)
        assert stored_soon(True)                         # the server is writing the file
    assert not stored_soon(False) and siem.evidence(case["id"]) == []


# --- routes ---

def test_unknown_routes_and_methods(siem):
    problem(call(siem, "GET", "/lr-case-api/nothing"), 404)
    problem(call(siem, "GET", "/lr-alarm-api/alarms/4242/comment"), 405)
    answer = call(siem, "DELETE", "/lr-case-api/cases")
    assert problem(answer, 405) and answer.headers["Allow"] == "GET, POST"
    problem(call(siem, "PUT", f"/lr-case-api/cases/{KNOWN_CASE}/evidence/file"), 405)
    problem(call(siem, "GET", f"/lr-case-api/cases/{KNOWN_CASE}/evidence/1/download"), 404)


def test_reset_brings_back_the_starting_cases_and_alarms():
    with LogRhythmSimulator(ALARMS, cases=CASES) as simulator:
        case = new_case(simulator)
        upload(simulator, case["id"])
        call(simulator, "POST", "/lr-alarm-api/alarms/4242/comment", json={"alarmComment": "c"})
        call(simulator, "POST", f"/lr-case-api/cases/{KNOWN_CASE}/evidence/alarms",
             json={"alarmNumbers": [4242]})
        stored = simulator.uploaded_path(case["id"], 1)
        simulator.set_faults("bad-token")
        simulator.reset()
        assert [c["id"] for c in simulator.cases()] == [KNOWN_CASE]
        assert simulator.comments(4242) == [] and not stored.exists()
        assert simulator.alarm(4242)["associatedCases"] == []
        assert len(simulator.evidence(KNOWN_CASE)) == 1
        assert new_case(simulator)["number"] == 6


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="unique"):
        LogRhythmSimulator([AlarmSpec(1), AlarmSpec(1)])
    with pytest.raises(ValueError, match="GUID"):
        LogRhythmSimulator([AlarmSpec(1, associated_cases=("case-1",))])
    with pytest.raises(ValueError, match="unique"):
        LogRhythmSimulator([], cases=[CaseSpec("a", number=1), CaseSpec("b", number=1)])
    with pytest.raises(ValueError, match="GUID"):
        LogRhythmSimulator([], cases=[CaseSpec("a", id="nope")])
    numbered = LogRhythmSimulator([], cases=[CaseSpec("a"), CaseSpec("b", number=1)])
    assert [(c["name"], c["number"]) for c in numbered.cases()] == [("b", 1), ("a", 2)]


def test_default_alarms_are_the_demos():
    alarms = default_alarms(now=NOW)
    assert [alarm.alarm_id for alarm in alarms] == [4242, 4243, 4244]
    assert all(NOW - dt.timedelta(hours=1) < alarm.date < NOW for alarm in alarms)
    assert LogRhythmSimulator().alarm(4243)["alarmId"] == 4243


# --- faults ---

def test_bad_token_refuses_the_right_token(siem):
    siem.set_faults("bad-token")
    problem(call(siem, "GET", "/lr-alarm-api/alarms/4242"), 401)
    problem(call(siem, "GET", "/lr-case-api/cases"), 401)
    siem.set_faults(Fault("bad-token", first=1))
    problem(call(siem, "GET", "/lr-case-api/cases"), 401)
    assert call(siem, "GET", "/lr-case-api/cases").status_code == 200


def test_no_case_rights_leaves_the_alarm_api_working(siem):
    siem.set_faults("no-case-rights")
    for method, route in (("GET", "/lr-case-api/cases"), ("POST", "/lr-case-api/cases"),
                          ("GET", f"/lr-case-api/cases/{KNOWN_CASE}/evidence")):
        assert problem(call(siem, method, route, json={"name": "x", "priority": 1}),
                       403).startswith("User does not have permission to")
    assert call(siem, "GET", "/lr-alarm-api/alarms/4242").status_code == 200
    assert call(siem, "POST", "/lr-alarm-api/alarms/4242/comment",
                json={"alarmComment": "c"}).status_code == 200


def test_too_large_is_the_proxys_html_page(siem):
    siem.set_faults("too-large")
    answer = upload(siem, KNOWN_CASE, b"small")
    assert answer.status_code == 413
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.text.startswith("<html>\r\n<head><title>413 Request Entity Too Large</title>")
    assert len(siem.evidence(KNOWN_CASE)) == 1
    assert call(siem, "POST", f"/lr-case-api/cases/{KNOWN_CASE}/evidence/note",
                json={"text": "n"}).status_code == 201


def test_server_error_fails_case_posts_only(siem):
    siem.set_faults("server-error")
    problem(call(siem, "POST", "/lr-case-api/cases", json={"name": "x", "priority": 1}), 500)
    problem(upload(siem, KNOWN_CASE), 500)
    problem(call(siem, "POST", f"/lr-case-api/cases/{KNOWN_CASE}/evidence/note",
                 json={"text": "n"}), 500)
    assert call(siem, "GET", f"/lr-case-api/cases/{KNOWN_CASE}").status_code == 200
    assert call(siem, "POST", "/lr-alarm-api/alarms/4242/comment",
                json={"alarmComment": "c"}).status_code == 200
    assert len(siem.cases()) == 1 and len(siem.evidence(KNOWN_CASE)) == 1


def test_html_error_is_a_proxys_502_page_everywhere(siem):
    siem.set_faults("html-error")
    for answer in (call(siem, "GET", "/lr-alarm-api/alarms/4242"),
                   call(siem, "GET", "/lr-case-api/cases", token="wrong"),
                   upload(siem, KNOWN_CASE)):
        assert answer.status_code == 502 and answer.headers["Content-Type"] == "text/html"
        assert "<title>502 Bad Gateway</title>" in answer.text
    # Scoped to one case (by GUID, however the request names it).
    siem.set_faults(Fault("html-error", sessions={KNOWN_CASE}))
    assert call(siem, "GET", "/lr-case-api/cases/5").status_code == 502
    assert call(siem, "GET", "/lr-alarm-api/alarms/4242").status_code == 200


def test_slow_upload_reads_the_body_slowly(siem):
    siem.set_faults("slow-upload")
    started = time.monotonic()
    assert upload(siem, KNOWN_CASE, b"x" * (10 * 64 * 1024)).status_code == 201
    assert time.monotonic() - started >= 10 * 0.05
    siem.clear_faults()
    started = time.monotonic()
    assert upload(siem, KNOWN_CASE, b"x" * (10 * 64 * 1024)).status_code == 201
    assert time.monotonic() - started < 0.5


def test_evidence_failed_fails_the_files_processing(siem):
    case = new_case(siem)
    siem.set_faults(Fault("evidence-failed", sessions={case["id"]}))
    assert upload(siem, case["id"]).json()["status"] == "pending"
    failed = wait_status(siem, case["id"], 1, "failed")
    assert failed["status"] == "failed"
    assert failed["statusMessage"] == "Evidence processing failed"
    upload(siem, KNOWN_CASE)                                   # another case: completes
    assert wait_status(siem, KNOWN_CASE, 2, "completed")["status"] == "completed"


def test_alarm_unknown_hides_every_alarm(siem):
    siem.set_faults("alarm-unknown")
    problem(call(siem, "GET", "/lr-alarm-api/alarms/4242"), 404)
    problem(call(siem, "POST", "/lr-alarm-api/alarms/4242/comment",
                 json={"alarmComment": "c"}), 404)
    assert siem.comments(4242) == []
    assert call(siem, "GET", "/lr-case-api/cases").status_code == 200
    siem.set_faults(Fault("alarm-unknown", sessions={"77"}))
    problem(call(siem, "GET", "/lr-alarm-api/alarms/77"), 404)
    assert call(siem, "GET", "/lr-alarm-api/alarms/4242").status_code == 200


# --- `simulate logrhythm` as a user runs it ---

def test_simulate_logrhythm_serves_until_ctrl_c(tmp_path):
    with simulator_serving("logrhythm", "--token", "cli-token", "--cert-dir", str(tmp_path),
                           "--fault", "evidence-failed:1") as served:
        assert (f"--lr-address {served.url} --lr-token cli-token --lr-ca-bundle "
                f"{served.ca_bundle} --case auto --alarm-id 4242") in served.printed
        assert "Alarm:     4243" in served.printed and "evidence-failed" in served.printed
        answer = requests.get(served.url + "/lr-alarm-api/alarms/4242", timeout=10,
                              verify=served.ca_bundle,
                              headers={"Authorization": "Bearer cli-token"})
        assert answer.json()["alarmDetails"]["alarmId"] == 4242
    assert os.path.dirname(served.ca_bundle) == str(tmp_path)


def test_simulate_logrhythm_help_lists_every_fault():
    help_text = CliRunner().invoke(simulate, ["logrhythm", "--help"]).output
    unwrapped = re.sub(r"-\s+", "-", " ".join(help_text.split()))   # click wraps at hyphens
    assert all(name in unwrapped for name in FAULTS)
    refused = CliRunner().invoke(simulate, ["logrhythm", "--fault", "teapot"])
    assert refused.exit_code == 2 and "teapot" in refused.output
