"""LogRhythm's own REST APIs, as the case step uses them: the alarm (its rule, its cases, a
comment in its history) and the case (found, made, its evidence: the alarm, notes, files).

Every LogRhythm wire detail lives here (docs/vendor-contracts.md#logrhythm): routes, field
names, the bearer token, the paging headers. The token is LogRhythm's API token, issued in the
Client Console; the user it belongs to needs case rights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from srp.errors import SrpError, UsageError
from srp.retrieval.http import HttpClient, check, json_answer, page_numbers

DEFAULT_PORT = 8501                        # the API gateway's port
ALARM_PATH = "/lr-alarm-api/alarms/{alarm}"
COMMENT_PATH = "/lr-alarm-api/alarms/{alarm}/comment"
CASES_PATH = "/lr-case-api/cases"
CASE_PATH = "/lr-case-api/cases/{case}"
EVIDENCE_PATH = "/lr-case-api/cases/{case}/evidence"
EVIDENCE_RECORD_PATH = "/lr-case-api/cases/{case}/evidence/{number}"
ALARM_EVIDENCE_PATH = "/lr-case-api/cases/{case}/evidence/alarms"
NOTE_EVIDENCE_PATH = "/lr-case-api/cases/{case}/evidence/note"
FILE_EVIDENCE_PATH = "/lr-case-api/cases/{case}/evidence/file"
PAGE_SIZE = 100                            # the `count` header; `offset` pages on
CASE_GUID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
CASE_NUMBER = re.compile(r"[1-9][0-9]{0,9}")
ALARM_ID = re.compile(r"[1-9][0-9]{0,9}")
MAX_CASE_NAME = 250
MAX_NOTE = 20000                           # characters of a note the case keeps (assumed)
CAPTURE_TYPES = {"pcapng": "application/x-pcapng", "pcap": "application/vnd.tcpdump.pcap"}
FAILED, PENDING = "failed", "pending"      # evidence status words
AUTH_HINT = "check --lr-token, and that its user has case rights"
EXPECTED = "expected JSON"


@dataclass(frozen=True)
class Alarm:
    id: int
    rule_name: str
    cases: list[str]                       # GUIDs of the cases it is evidence in


@dataclass(frozen=True)
class Case:
    id: str                                # GUID
    number: int
    name: str
    created: str
    external_id: str


@dataclass(frozen=True)
class Evidence:
    number: int
    type: str
    status: str
    text: str
    status_message: str


def check_alarm_id(text: str, option: str = "--alarm-id") -> int:
    """A LogRhythm alarm id (a whole number), checked before it goes into a URL."""
    if not ALARM_ID.fullmatch(text or ""):
        raise UsageError(f"{option}: a LogRhythm alarm id is a whole number, got {text!r}")
    return int(text)


def check_case_reference(text: str) -> str:
    """A case's GUID or number, checked before it goes into a URL."""
    if CASE_GUID.fullmatch(text) or CASE_NUMBER.fullmatch(text):
        return text
    raise UsageError(f"--case: expected auto, new, a case number or a case GUID, got {text!r}")


def check_token(text: str) -> str:
    if not text or not text.isascii() or not text.isprintable() or " " in text:
        raise UsageError("--lr-token: expected LogRhythm's API token (printable, no spaces)")
    return text


class LogRhythmApi:
    """The alarm and case APIs behind one API gateway, through `client`."""

    def __init__(self, client: HttpClient, token: str):
        self.client = client
        client.session.headers["Authorization"] = f"Bearer {token}"

    def alarm(self, alarm_id: int) -> Alarm:
        what = f"alarm {alarm_id}"
        answer = self._json("GET", ALARM_PATH.format(alarm=alarm_id), what)
        details = answer.get("alarmDetails", answer) if isinstance(answer, dict) else None
        if not isinstance(details, dict):
            raise SrpError("the alarm API answered without the alarm's details", what)
        cases = details.get("associatedCases") or []
        return Alarm(alarm_id, str(details.get("alarmRuleName") or "").strip(),
                     [str(case) for case in cases if CASE_GUID.fullmatch(str(case))])

    def comment(self, alarm_id: int, text: str) -> None:
        self._json("POST", COMMENT_PATH.format(alarm=alarm_id), f"alarm {alarm_id}: comment",
                   json={"alarmComment": text})

    def case(self, reference: str) -> Case:
        what = f"case {reference}"
        return _case(self._json("GET", CASE_PATH.format(case=quote(reference)), what), what)

    def cases_with_external_id(self, external_id: str) -> list[Case]:
        what = f"the cases with externalId {external_id}"
        found = [_case(item, what) for item in
                 self._pages(CASES_PATH, what, params={"externalId": external_id})]
        return [case for case in found if case.external_id == external_id]

    def create_case(self, name: str, summary: str, external_id: str, priority: int) -> Case:
        body = {"name": name[:MAX_CASE_NAME], "priority": priority, "summary": summary,
                "externalId": external_id}
        return _case(self._json("POST", CASES_PATH, "new case", json=body), "new case")

    def add_alarm(self, case: Case, alarm_id: int) -> None:
        self._json("POST", ALARM_EVIDENCE_PATH.format(case=case.id),
                   f"case {case.number}: alarm evidence", json={"alarmNumbers": [alarm_id]})

    def add_note(self, case: Case, text: str) -> Evidence:
        what = f"case {case.number}: note"
        return _evidence(self._json("POST", NOTE_EVIDENCE_PATH.format(case=case.id), what,
                                    json={"text": text[:MAX_NOTE]}), what)

    def add_file(self, case: Case, path: Path, name: str, note: str) -> Evidence:
        """Upload `path` as file evidence named `name`, streamed from the disk."""
        from requests_toolbelt import MultipartEncoder

        what = f"case {case.number}: file upload"
        kind = "pcapng" if name.endswith(".pcapng") else "pcap"
        with path.open("rb") as file:
            body = MultipartEncoder({"file": (name, file, CAPTURE_TYPES[kind]),
                                     "note": note[:MAX_NOTE]})
            # Sent once: a read that fails after the body went out may have been stored,
            # and the next run finds it among the evidence by its SHA-256.
            response = self.client.request(
                "POST", FILE_EVIDENCE_PATH.format(case=case.id), data=body,
                headers={"Content-Type": body.content_type}, retry_reads=False,
                retry_status=False)
        return _evidence(json_answer(check(response, what, AUTH_HINT), what, EXPECTED),
                         what)

    def evidence(self, case: Case) -> list[Evidence]:
        what = f"case {case.number}: evidence"
        return [_evidence(item, what)
                for item in self._pages(EVIDENCE_PATH.format(case=case.id), what)]

    def evidence_record(self, case: Case, number: int) -> Evidence:
        what = f"case {case.number}: evidence {number}"
        return _evidence(self._json(
            "GET", EVIDENCE_RECORD_PATH.format(case=case.id, number=number), what), what)

    def _json(self, method: str, path: str, what: str, **kwargs):
        return json_answer(check(self.client.request(method, path, **kwargs), what, AUTH_HINT),
                           what, EXPECTED)

    def _pages(self, path: str, what: str, params: dict | None = None) -> list:
        """Every item of a listing, paged with the offset and count headers."""
        items = []
        for page in page_numbers(what):
            answer = self._json("GET", path, what, params=params,
                                headers={"offset": str(page * PAGE_SIZE),
                                         "count": str(PAGE_SIZE)})
            if not isinstance(answer, list):
                raise SrpError("expected a JSON list", what)
            items += answer[:PAGE_SIZE]       # held to the length asked for
            if len(answer) < PAGE_SIZE:
                return items
        return items


def _case(item, what: str) -> Case:
    try:
        case = Case(str(item["id"]), int(item["number"]), str(item.get("name") or ""),
                    str(item.get("dateCreated") or ""), str(item.get("externalId") or ""))
    except (TypeError, KeyError, ValueError):
        raise SrpError("the case API answered a case without its id and number", what) from None
    if not CASE_GUID.fullmatch(case.id):
        raise SrpError(f"the case API answered an id that is not a GUID: {case.id[:60]!r}", what)
    return case


def _evidence(item, what: str) -> Evidence:
    try:
        return Evidence(int(item["number"]), str(item.get("type") or ""),
                        str(item.get("status") or ""), str(item.get("text") or ""),
                        str(item.get("statusMessage") or ""))
    except (TypeError, KeyError, ValueError):
        raise SrpError("the case API answered evidence without its number", what) from None
