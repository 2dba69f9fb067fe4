"""A LogRhythm SIEM look-alike over HTTPS: the case and alarm APIs a SmartResponse plugin uses
to put a retrieved capture into the alarm's case.

It serves the routes of docs/vendor-contracts.md#logrhythm the way the LogRhythm API gateway
does: `Authorization: Bearer <token>`; the alarm API (an alarm with the cases it already is
evidence in, and comments on it); the case API: cases found by externalId or name text and
paged by the `offset`/`count` request headers, created, addressed by GUID or number, and
their evidence: alarms (which the alarm then lists in associatedCases), notes, and files.
A file comes as multipart/form-data, parsed as it arrives (python-multipart) and written
straight to the work folder, never held in memory: Content-Length is required (a chunked
body gets 411) and one over `max_upload` gets 413 before any of it is read. A file is
"pending" until it is processed `complete_after` seconds later, and can be downloaded
back. Errors are JSON `{"code": N, "message": ...}`. Faults (FAULTS) switch on while it
runs; those about one alarm take its id, those about one case its GUID (as strings) in
Fault.sessions.

    with LogRhythmSimulator() as siem:
        requests.get(f"{siem.url}/lr-alarm-api/alarms/4242", verify=siem.ca_bundle,
                     headers={"Authorization": f"Bearer {siem.token}"})
"""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, quote, urlsplit

from python_multipart.multipart import MultipartParser, parse_options_header

from srp.simulators.faults import Fault
from srp.simulators.https import STREAM_CHUNK, RequestError, SimulatorHandler, VendorSimulator

# ----------------------------------------------------------------------------------------
# The LogRhythm wire contract as this server serves it (docs/vendor-contracts.md#logrhythm),
# written independently of the client so that the simulator tests it.
AUTH_HEADER = "Authorization"          # "Bearer <token>" (the API gateway)
TOKEN_SCHEME = "bearer"                # compared case-insensitively
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
GUID = re.compile(_GUID)
_NUMBER = "[0-9]{1,10}"              # ASCII digits only (\d would take any script's)
_ALARM = rf"/lr-alarm-api/alarms/(?P<alarm>{_NUMBER})"
_CASE = rf"/lr-case-api/cases/(?P<case>{_GUID}|{_NUMBER})"
_EVIDENCE = _CASE + rf"/evidence/(?P<number>{_NUMBER})"
NUMBER = re.compile(_NUMBER)
# (method, route, the handler's method): a route known with another method answers 405.
ROUTES = tuple((method, re.compile(route), name) for method, route, name in (
    ("GET", _ALARM, "alarm"),
    ("POST", _ALARM + "/comment", "comment"),
    ("GET", "/lr-case-api/cases", "list_cases"),
    ("POST", "/lr-case-api/cases", "create_case"),
    ("GET", _CASE, "get_case"),
    ("GET", _CASE + "/evidence", "list_evidence"),
    ("POST", _CASE + "/evidence/alarms", "add_alarms"),
    ("POST", _CASE + "/evidence/note", "add_note"),
    ("POST", _CASE + "/evidence/file", "add_file"),
    ("GET", _EVIDENCE, "get_evidence"),
    ("GET", _EVIDENCE + "/download/", "download"),
))
UPLOAD_HANDLER = "add_file"
OFFSET_HEADER, COUNT_HEADER = "offset", "count"   # paging is by request headers
DEFAULT_COUNT, MAX_COUNT = 30, 500
NAME_LENGTH = 250                      # a case name: 1 to this many characters
NOTE_LENGTH = 20000                    # a note's text: 1 to this many characters
PRIORITIES = range(1, 6)
EVIDENCE_TYPES = ("alarm", "userEvents", "log", "note", "file")
EVIDENCE_STATUSES = ("pending", "completed", "failed")
UPLOAD_FIELD, UPLOAD_NOTE_FIELD = "file", "note"
ADMINISTRATOR = {"number": -100, "name": "LogRhythm Administrator", "disabled": False}
CREATED_STATUS = {"name": "Created", "number": 1}
ENTITY_NAME = "Primary Site"
ALARM_STATUS = "New"
COMMENT_ADDED = "Comment added successfully"
FAILED_MESSAGE = "Evidence processing failed"
NO_RIGHTS_MESSAGE = "User does not have permission to view or change cases."
SERVER_ERROR_MESSAGE = "An unexpected error occurred."
DOWNLOAD_CONTENT_TYPE = "application/octet-stream"
HTML_CONTENT_TYPE = "text/html"
# What a reverse proxy (nginx) in front of the API answers by itself.
PROXY_413_PAGE = (b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n"
                  b"<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n"
                  b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
PROXY_502_PAGE = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                  b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>"
                  b"\r\n</body>\r\n</html>\r\n")
# ----------------------------------------------------------------------------------------

FAULTS = (
    "bad-token",        # every route: 401, even with the right token
    "no-case-rights",   # case API: 403, the token's user lacks case rights (alarms still work)
    "too-large",        # file upload: the proxy's HTML 413 page, whatever the size
    "server-error",     # case API POSTs: 500
    "html-error",       # every route: the proxy's HTML 502 page
    "slow-upload",      # file upload: the body read slowly (SLOW_UPLOAD_PAUSE per chunk)
    "evidence-failed",  # file upload: the file's processing fails instead of completing
    "alarm-unknown",    # alarm API: 404 for every alarm
)
SLOW_UPLOAD_PAUSE = 0.05     # seconds per STREAM_CHUNK of body read, with slow-upload
LINGER_SECONDS = 5.0         # how long what is left of a refused upload is read and dropped


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm the SIEM knows, as a test chooses it."""

    alarm_id: int
    rule_name: str = "AIE: Suspicious Network Activity"
    date: dt.datetime | None = None         # when it was inserted; None: when the server is made
    associated_cases: tuple[str, ...] = ()  # GUIDs of the cases it already is evidence in


@dataclass(frozen=True)
class CaseSpec:
    """A case that exists before the server starts. Its alarm evidence comes from the
    AlarmSpecs naming its GUID in associated_cases."""

    name: str
    number: int | None = None        # None: the next free number
    externalId: str | None = None    # named as the API names it
    id: str | None = None            # its GUID; None: a random one
    date_created: dt.datetime | None = None   # None: when the server is made
    priority: int = 3
    summary: str = ""


def default_alarms(*, now: dt.datetime | None = None) -> list[AlarmSpec]:
    """One alarm for each retrieval of `srp-pcap demo` (NetMon, Stamus, Cisco IPS), raised in
    the minutes before `now`, in no case yet."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return [
        AlarmSpec(4242, "AIE: Suspicious Download www.example.com",
                  now - dt.timedelta(minutes=5)),
        AlarmSpec(4243, "AIE: ET MALWARE Possible Malicious Download (update.bin)",
                  now - dt.timedelta(minutes=4)),
        AlarmSpec(4244, "AIE: Cisco IPS Signature Alert", now - dt.timedelta(minutes=3)),
    ]


def case_date(moment: dt.datetime) -> str:
    """The case API's dates: RFC 3339 UTC with seven fraction digits, as .NET writes them
    (2024-05-01T12:00:00.1234560Z)."""
    utc = moment.astimezone(dt.timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}0Z"


def alarm_date(moment: dt.datetime) -> str:
    """The alarm API's dates: RFC 3339 UTC to the millisecond (2024-05-01T12:00:00.123Z)."""
    utc = moment.astimezone(dt.timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


class Alarm:
    """One alarm and what happens to it: the cases it is evidence in, its comments."""

    def __init__(self, spec: AlarmSpec, date: dt.datetime):
        self.spec = spec
        self.date = date
        self.associated_cases = [case_id.upper() for case_id in spec.associated_cases]
        self.comments: list[str] = []

    def details(self) -> dict:
        return {"alarmId": self.spec.alarm_id, "alarmRuleName": self.spec.rule_name,
                "alarmStatus": ALARM_STATUS, "dateInserted": alarm_date(self.date),
                "entityName": ENTITY_NAME, "associatedCases": list(self.associated_cases)}

    def as_evidence(self) -> dict:
        """The `alarm` of an alarm evidence record."""
        return {"alarmId": self.spec.alarm_id, "alarmDate": alarm_date(self.date),
                "alarmRuleName": self.spec.rule_name, "dateInserted": alarm_date(self.date),
                "entityName": ENTITY_NAME}


class Evidence:
    """One evidence record of a case. A file is processed `complete_after` seconds after its
    upload, worked out whenever it is read (there are no timers)."""

    def __init__(self, number: int, kind: str, created: dt.datetime, *, text: str = "",
                 alarm: Alarm | None = None, file_name: str | None = None, size: int = 0,
                 path: Path | None = None, complete_after: float = 0.0, fails: bool = False):
        self.number = number
        self.kind = kind
        self.created = created
        self.text = text
        self.alarm = alarm
        self.file_name = file_name
        self.size = size
        self.path = path
        self.complete_after = complete_after
        self.ready_at = time.monotonic() + complete_after
        self.fails = fails

    def status(self, now: float | None) -> str:
        """Its status at monotonic time `now`; None: as its upload answers it (pending)."""
        if self.kind != "file":
            return "completed"
        if now is None or now < self.ready_at:
            return "pending"
        return "failed" if self.fails else "completed"

    def document(self, now: float | None) -> dict:
        status = self.status(now)
        updated = self.created
        if status != "pending" and self.kind == "file":
            updated += dt.timedelta(seconds=self.complete_after)
        return {
            "number": self.number, "dateCreated": case_date(self.created),
            "dateUpdated": case_date(updated), "createdBy": dict(ADMINISTRATOR),
            "type": self.kind, "status": status,
            "statusMessage": FAILED_MESSAGE if status == "failed" else None,
            "text": self.text, "pinned": False,
            "file": ({"name": self.file_name, "size": self.size} if self.kind == "file"
                     else None),
            "alarm": self.alarm.as_evidence() if self.alarm is not None else None,
        }


class Case:
    """One case and its evidence, numbered from 1 in the order it was added."""

    def __init__(self, case_id: str, number: int, name: str, *, created: dt.datetime,
                 priority: int, summary: str, external_id: str | None):
        self.id = case_id
        self.number = number
        self.name = name
        self.created = self.updated = created
        self.priority = priority
        self.summary = summary
        self.external_id = external_id
        self.evidence: list[Evidence] = []

    def add(self, kind: str, created: dt.datetime, **fields) -> Evidence:
        record = Evidence(len(self.evidence) + 1, kind, created, **fields)
        self.evidence.append(record)
        self.updated = max(self.updated, created)
        return record

    def document(self) -> dict:
        return {"id": self.id, "number": self.number, "externalId": self.external_id,
                "dateCreated": case_date(self.created), "dateUpdated": case_date(self.updated),
                "name": self.name, "status": dict(CREATED_STATUS), "priority": self.priority,
                "summary": self.summary, "owner": dict(ADMINISTRATOR)}


class MultipartUpload:
    """A multipart/form-data body parsed as it arrives: the first `file` part with a file
    name is written straight to `path`, the `note` part kept (it is short), others dropped."""

    def __init__(self, boundary: bytes, path: Path):
        self.path = path
        self.file_name: str | None = None
        self.size = 0
        self.note: str | None = None
        self._note = bytearray()
        self._file = None
        self._target: str | None = None       # where the current part goes: file, note, None
        self._headers: dict[bytes, bytes] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._ended = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end})

    def write(self, data: bytes) -> None:
        """Parse the next piece of the body; ValueError if it is no multipart body."""
        self._parser.write(data)

    def finish(self) -> None:
        """The body is all in: ValueError unless it was whole and held a file."""
        if not self._ended:
            raise ValueError("the multipart body ends before its closing boundary")
        if self.file_name is None:
            raise ValueError(f"a '{UPLOAD_FIELD}' part with a file name is required")
        if self._note:
            try:
                self.note = self._note.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"the '{UPLOAD_NOTE_FIELD}' part is not UTF-8") from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _part_begin(self) -> None:
        self._headers = {}
        self._target = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).strip().lower()] = bytes(self._value).strip()
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == UPLOAD_FIELD and self.file_name is None and b"filename" in options:
            # Only the last path element: some clients send the whole path they read from.
            file_name = re.split(r"[\\/]", options[b"filename"].decode("utf-8", "replace"))[-1]
            if not file_name.strip():
                raise ValueError("the file part's file name is empty")
            self.file_name = file_name
            self._file = open(self.path, "wb")
            self._target = "file"
        elif name == UPLOAD_NOTE_FIELD and not self._note:
            self._target = "note"

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._target == "file":
            self._file.write(data[start:end])
            self.size += end - start
        elif self._target == "note":
            self._note += data[start:end]
            if len(self._note) > 4 * NOTE_LENGTH:   # no UTF-8 text that long is short enough
                raise ValueError(f"the note is over {NOTE_LENGTH} characters")

    def _part_end(self) -> None:
        if self._target == "file":
            self.close()
        self._target = None

    def _end(self) -> None:
        self._ended = True


class LogRhythmHandler(SimulatorHandler):
    body_left: int | None = 0   # of a streamed upload, bytes not read yet (None: unknown)

    def send_problem(self, status, message, headers=None):
        """LogRhythm's {"code": N, "message": ...}."""
        self.send_json(status, {"code": status, "message": message}, headers)

    def send_response(self, code, message=None):
        super().send_response(code, message)
        if self.body_left != 0:
            # The rest of the body is not read: the connection cannot carry another request.
            self.send_header("Connection", "close")

    def streams_body(self) -> bool:
        found = self._match()
        return found is not None and found[0] == UPLOAD_HANDLER

    def handle_one_request(self):
        self.body_left = 0
        super().handle_one_request()
        if self.body_left != 0:
            self._drop_unread_body()

    def _drop_unread_body(self) -> None:
        """Read and drop what is left of a refused upload for a while, as nginx's lingering
        close does: a client still sending then reads the answer instead of a reset."""
        deadline = time.monotonic() + LINGER_SECONDS
        left = self.body_left
        try:
            self.connection.settimeout(LINGER_SECONDS)
            while (left is None or left > 0) and time.monotonic() < deadline:
                chunk = self.rfile.read1(STREAM_CHUNK if left is None
                                         else min(STREAM_CHUNK, left))
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
        except OSError:
            pass   # the client gave up first: nothing more to do
        self.close_connection = True

    def _match(self) -> tuple[str, dict[str, str]] | None:
        """The handler and path fields of the request's route, None when there is none."""
        route = self.route
        for method, pattern, name in ROUTES:
            found = pattern.fullmatch(route)
            if found and method == self.command:
                return name, found.groupdict()
        return None

    def respond(self) -> None:
        siem: LogRhythmSimulator = self.simulator
        route = self.route
        found = self._match()
        if found is not None and found[0] == UPLOAD_HANDLER:
            self.body_left = self._announced_length()
        name, fields = found or (None, {})
        case = siem.find_case(fields["case"]) if "case" in fields else None
        # Faults about one case take its GUID, however the request names it.
        subject = fields.get("alarm") or (case.id if case else fields.get("case"))
        if siem.faults.fire("html-error", subject):
            self.send_bytes(502, PROXY_502_PAGE, HTML_CONTENT_TYPE)
            return
        if name == UPLOAD_HANDLER and siem.faults.fire("too-large", subject):
            self.send_bytes(413, PROXY_413_PAGE, HTML_CONTENT_TYPE)
            return
        self._authenticate(subject)
        if found is None:
            allowed = [method for method, pattern, _ in ROUTES if pattern.fullmatch(route)]
            if allowed:
                raise RequestError(405, f"The requested resource does not support http "
                                        f"method '{self.command}'.",
                                   {"Allow": ", ".join(allowed)})
            raise RequestError(404, "No HTTP resource was found that matches the request.")
        if "alarm" in fields:
            alarm_id = int(fields["alarm"])
            if siem.faults.fire("alarm-unknown", subject) or siem.alarm(alarm_id) is None:
                raise RequestError(404, f"Alarm {alarm_id} not found.")
            getattr(self, f"_{name}")(alarm_id)
            return
        if siem.faults.fire("no-case-rights", subject):
            raise RequestError(403, NO_RIGHTS_MESSAGE)
        if self.command == "POST" and siem.faults.fire("server-error", subject):
            raise RequestError(500, SERVER_ERROR_MESSAGE)
        if "case" not in fields:
            getattr(self, f"_{name}")()
            return
        if case is None:
            raise RequestError(404, f"Case {fields['case']} not found.")
        if "number" in fields:
            getattr(self, f"_{name}")(case, self._evidence_of(case, int(fields["number"])))
        else:
            getattr(self, f"_{name}")(case)

    def _authenticate(self, subject: str | None) -> None:
        scheme, _, token = self.headers.get(AUTH_HEADER, "").strip().partition(" ")
        if scheme.lower() != TOKEN_SCHEME or not token.strip():
            raise RequestError(401, "Authorization has been denied for this request.",
                               {"WWW-Authenticate": "Bearer"})
        if (not hmac.compare_digest(token.strip().encode(), self.simulator.token.encode())
                or self.simulator.faults.fire("bad-token", subject)):
            raise RequestError(401, "The access token is invalid or has expired.",
                               {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def _announced_length(self) -> int | None:
        """The body length the request announces; None when it announces none it keeps to
        (chunked, or a Content-Length that is no number)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        length = self.headers.get("Content-Length", "0").strip()
        return int(length) if re.fullmatch("[0-9]{1,19}", length) else None

    @property
    def params(self) -> dict[str, str]:
        return {name: values[-1] for name, values in
                parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    def _page(self, items: list) -> list:
        """The page the offset and count request headers choose."""
        offset = _header_number(self.headers, OFFSET_HEADER, 0, 0)
        count = _header_number(self.headers, COUNT_HEADER, DEFAULT_COUNT, 1, MAX_COUNT)
        return items[offset:offset + count]

    def _json_object(self) -> dict:
        document = self.request_json()
        if not isinstance(document, dict):
            raise RequestError(400, "The request body must be a JSON object.")
        return document

    def _evidence_of(self, case: Case, number: int) -> Evidence:
        record = self.simulator.evidence_record(case, number)
        if record is None:
            raise RequestError(404, f"Evidence {number} not found in case {case.number}.")
        return record

    # --- the alarm API ---

    def _alarm(self, alarm_id: int) -> None:
        self.send_json(200, {"alarmDetails": self.simulator.alarm(alarm_id), "message": "",
                             "statusCode": 200})

    def _comment(self, alarm_id: int) -> None:
        comment = self._json_object().get("alarmComment")
        if not isinstance(comment, str) or not comment.strip():
            raise RequestError(400, "alarmComment is required.")
        self.simulator.add_comment(alarm_id, comment)
        self.send_json(200, {"statusCode": 200, "message": COMMENT_ADDED})

    # --- cases ---

    def _list_cases(self) -> None:
        params = self.params
        external_id, text = params.get("externalId"), params.get("text", "").casefold()
        found = [document for document in self.simulator.cases()
                 if (external_id is None or document["externalId"] == external_id)
                 and text in document["name"].casefold()]
        self.send_json(200, self._page(found))

    def _create_case(self) -> None:
        document = self._json_object()
        name, priority = document.get("name"), document.get("priority")
        summary, external_id = document.get("summary", ""), document.get("externalId")
        if not isinstance(name, str) or not 1 <= len(name) <= NAME_LENGTH:
            raise RequestError(400, f"name is required: 1 to {NAME_LENGTH} characters.")
        if type(priority) is not int or priority not in PRIORITIES:
            raise RequestError(400, "priority is required: a whole number from 1 to 5.")
        if not isinstance(summary, str) and summary is not None:
            raise RequestError(400, "summary must be text.")
        if not isinstance(external_id, str) and external_id is not None:
            raise RequestError(400, "externalId must be text.")
        case = self.simulator.create_case(name, priority, summary or "", external_id)
        self.send_json(201, case)

    def _get_case(self, case: Case) -> None:
        self.send_json(200, self.simulator.case(case.id))

    # --- evidence ---

    def _list_evidence(self, case: Case) -> None:
        params = self.params
        kinds = _choices(params, "type", EVIDENCE_TYPES)
        statuses = _choices(params, "status", EVIDENCE_STATUSES)
        found = [record for record in self.simulator.evidence(case.id)
                 if record["type"] in kinds and record["status"] in statuses]
        self.send_json(200, self._page(found))

    def _get_evidence(self, case: Case, record: Evidence) -> None:
        self.send_json(200, self.simulator.evidence_document(record))

    def _add_alarms(self, case: Case) -> None:
        numbers = self._json_object().get("alarmNumbers")
        if (not isinstance(numbers, list) or not numbers
                or any(type(number) is not int or number < 1 for number in numbers)):
            raise RequestError(400, "alarmNumbers is required: a list of alarm ids.")
        unknown = [number for number in numbers if self.simulator.alarm(number) is None]
        if unknown:
            raise RequestError(404, f"Alarm {unknown[0]} not found.")
        self.send_json(201, self.simulator.add_alarm_evidence(case, numbers))

    def _add_note(self, case: Case) -> None:
        text = self._json_object().get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= NOTE_LENGTH:
            raise RequestError(400, f"text is required: 1 to {NOTE_LENGTH} characters.")
        self.send_json(201, self.simulator.add_note(case, text))

    def _add_file(self, case: Case) -> None:
        siem: LogRhythmSimulator = self.simulator
        if self.body_left is None or "Content-Length" not in self.headers:
            raise RequestError(411, "Content-Length is required (a chunked body is not "
                                    "accepted).")
        if self.body_left > siem.max_upload:
            raise RequestError(413, f"The file is larger than the {siem.max_upload} bytes "
                                    f"allowed.")
        kind, options = parse_options_header(self.headers.get("Content-Type", ""))
        if kind != b"multipart/form-data" or not options.get(b"boundary"):
            raise RequestError(400, "The request must be multipart/form-data.")
        slow = siem.faults.fire("slow-upload", case.id) is not None
        path = siem.new_upload_path()
        try:
            upload = MultipartUpload(options[b"boundary"], path)
            try:
                while self.body_left:
                    chunk = self.rfile.read(min(STREAM_CHUNK, self.body_left))
                    if not chunk:
                        raise ConnectionError("the client went away during the upload")
                    self.body_left -= len(chunk)
                    upload.write(chunk)
                    if slow:
                        time.sleep(SLOW_UPLOAD_PAUSE)
                upload.finish()
            finally:
                upload.close()
        except ValueError as exc:   # python-multipart's parse errors are ValueErrors too
            path.unlink(missing_ok=True)
            raise RequestError(400, f"Bad multipart body: {exc}") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        fails = siem.faults.fire("evidence-failed", case.id) is not None
        self.send_json(201, siem.add_file(case, path, upload.file_name, upload.size,
                                          upload.note or "", fails))

    def _download(self, case: Case, record: Evidence) -> None:
        if record.kind != "file" or record.path is None or not record.path.exists():
            raise RequestError(404, f"Evidence {record.number} has no file.")
        self.send_file(record.path, DOWNLOAD_CONTENT_TYPE,
                       {"Content-Disposition": _attachment(record.file_name)})


def _header_number(headers, name: str, default: int, low: int, high: int | None = None) -> int:
    value = headers.get(name, "").strip()
    if not value:
        return default
    if (not NUMBER.fullmatch(value) or int(value) < low
            or (high is not None and int(value) > high)):
        limits = f"{low} to {high}" if high is not None else f"{low} or more"
        raise RequestError(400, f"The {name} header must be a whole number, {limits}.")
    return int(value)


def _choices(params: dict[str, str], name: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """A comma list of `known` values from the query (every one when absent)."""
    chosen = tuple(value.strip() for value in params.get(name, "").split(",") if value.strip())
    unknown = [value for value in chosen if value not in known]
    if unknown:
        raise RequestError(400, f"{name} {unknown[0]!r} is not one of {', '.join(known)}.")
    return chosen or known


def _attachment(file_name: str) -> str:
    """A Content-Disposition naming the file; as RFC 6266 says, non-ASCII names go in
    filename* (UTF-8) beside a plain fallback."""
    plain = re.sub(r'[^\x20-\x7e]|["\\]', "_", file_name)
    if plain == file_name:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(file_name, safe='')}"


class LogRhythmSimulator(VendorSimulator):
    """The LogRhythm case and alarm APIs on loopback HTTPS; a context manager.

    alarms: the alarms it knows (AlarmSpecs); default: default_alarms().
    token: the one valid API token; default: a random one (see `.token`).
    cases: the cases that exist from the start (CaseSpecs).
    faults: Fault objects or bare fault names (FAULTS) in force from the start.
    complete_after: seconds an uploaded file stays pending before it is processed.
    max_upload: the largest file upload body (its Content-Length) accepted; 413 above.
    host, port, cert_dir, latency: see HTTPSServer.

    Attributes for tests: url, ca_bundle, token, requests (every request, the token masked;
    a file upload's body logged as empty), faults (FaultSwitch); and cases(), case(),
    evidence(), uploaded_path(), alarm() and comments() to see what clients did. reset()
    also brings back the alarms and cases it began with (uploaded files are deleted).
    """

    handler_class = LogRhythmHandler
    fault_names = FAULTS
    work_prefix = "srp-logrhythm-sim-"

    def __init__(self, alarms: Iterable[AlarmSpec] | None = None, *, token: str | None = None,
                 cases: Iterable[CaseSpec] = (), faults: Iterable[Fault | str] = (),
                 complete_after: float = 0.2, max_upload: int = 1 << 30,
                 host: str = "127.0.0.1", port: int = 0, cert_dir: str | Path | None = None,
                 latency: float = 0.0):
        super().__init__(faults=faults, host=host, port=port, cert_dir=cert_dir,
                         latency=latency)
        self._alarm_specs = list(default_alarms() if alarms is None else alarms)
        self._case_specs = _resolved_cases(cases)
        ids = [spec.alarm_id for spec in self._alarm_specs]
        if len(set(ids)) != len(ids) or any(alarm_id < 1 for alarm_id in ids):
            raise ValueError("alarm ids must be unique and positive")
        for spec in self._alarm_specs:
            if not all(GUID.fullmatch(case_id) for case_id in spec.associated_cases):
                raise ValueError(f"alarm {spec.alarm_id}: associated_cases must be GUIDs")
        if any(spec.date is not None and spec.date.tzinfo is None for spec in
               self._alarm_specs):
            raise ValueError("alarm dates must be timezone-aware")
        if complete_after < 0 or max_upload < 0:
            raise ValueError("complete_after and max_upload must be 0 or more")
        self.token = token if token is not None else secrets.token_hex(20)
        self.complete_after = complete_after
        self.max_upload = max_upload
        self._made = dt.datetime.now(dt.timezone.utc)   # the date of specs without one
        self._lock = threading.Lock()
        self._serial = itertools.count()
        self._restore()

    def _restore(self) -> None:
        """The alarms and cases as the specs give them, alarms already evidence in cases."""
        self._alarms = {spec.alarm_id: Alarm(spec, spec.date or self._made)
                        for spec in self._alarm_specs}
        self._cases = [Case(spec.id, spec.number, spec.name,
                            created=spec.date_created or self._made, priority=spec.priority,
                            summary=spec.summary, external_id=spec.externalId)
                       for spec in self._case_specs]
        by_id = {case.id: case for case in self._cases}
        for alarm in self._alarms.values():
            for case_id in alarm.associated_cases:
                if case_id in by_id:   # else a case this token cannot see
                    by_id[case_id].add("alarm", by_id[case_id].created, alarm=alarm)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            for case in self._cases:
                for record in case.evidence:
                    if record.path is not None:
                        record.path.unlink(missing_ok=True)
            self._restore()

    # --- what clients did, for tests ---

    def cases(self) -> list[dict]:
        """Every case, in the order of their numbers."""
        with self._lock:
            return [case.document() for case in sorted(self._cases, key=_number)]

    def case(self, id_or_number: str | int) -> dict:
        """One case by GUID (any case) or number; KeyError when there is none."""
        case = self.find_case(str(id_or_number))
        if case is None:
            raise KeyError(id_or_number)
        with self._lock:
            return case.document()

    def evidence(self, case_id: str | int) -> list[dict]:
        """A case's evidence records, as the API answers them now; KeyError for no case."""
        case = self.find_case(str(case_id))
        if case is None:
            raise KeyError(case_id)
        now = time.monotonic()
        with self._lock:
            return [record.document(now) for record in case.evidence]

    def uploaded_path(self, case_id: str | int, number: int) -> Path:
        """Where the file of a case's file evidence `number` is stored; KeyError if none."""
        case = self.find_case(str(case_id))
        record = self.evidence_record(case, number) if case is not None else None
        if record is None or record.path is None:
            raise KeyError((case_id, number))
        return record.path

    def alarm(self, alarm_id: int) -> dict | None:
        """The alarmDetails of an alarm; None when there is no such alarm."""
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            return alarm.details() if alarm is not None else None

    def comments(self, alarm_id: int) -> list[str]:
        """The comments added to an alarm, oldest first."""
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            return list(alarm.comments) if alarm is not None else []

    # --- the SIEM's state, shared by its request threads ---

    def find_case(self, key: str) -> Case | None:
        """A case by GUID (any case) or number."""
        with self._lock:
            for case in self._cases:
                if case.id == key.upper() or (NUMBER.fullmatch(key)
                                              and case.number == int(key)):
                    return case
        return None

    def evidence_record(self, case: Case, number: int) -> Evidence | None:
        with self._lock:
            return case.evidence[number - 1] if 1 <= number <= len(case.evidence) else None

    def evidence_document(self, record: Evidence) -> dict:
        now = time.monotonic()
        with self._lock:
            return record.document(now)

    def create_case(self, name: str, priority: int, summary: str,
                    external_id: str | None) -> dict:
        with self._lock:
            number = max(map(_number, self._cases), default=0) + 1
            case = Case(str(uuid.uuid4()).upper(), number, name, priority=priority,
                        summary=summary, external_id=external_id, created=_now())
            self._cases.append(case)
            return case.document()

    def add_comment(self, alarm_id: int, comment: str) -> None:
        with self._lock:
            self._alarms[alarm_id].comments.append(comment)

    def add_alarm_evidence(self, case: Case, alarm_ids: list[int]) -> list[dict]:
        """Add the alarms to the case (an alarm already in it is not added again) and the
        case to each alarm's associatedCases; the records of those added."""
        added = []
        with self._lock:
            for alarm_id in dict.fromkeys(alarm_ids):
                alarm = self._alarms[alarm_id]
                if any(record.alarm is alarm for record in case.evidence):
                    continue
                added.append(case.add("alarm", _now(), alarm=alarm))
                if case.id not in alarm.associated_cases:
                    alarm.associated_cases.append(case.id)
            return [record.document(None) for record in added]

    def add_note(self, case: Case, text: str) -> dict:
        with self._lock:
            return case.add("note", _now(), text=text).document(None)

    def new_upload_path(self) -> Path:
        """A new file in the work folder for an upload to be written to."""
        return self.work_dir / f"upload{next(self._serial):06d}"

    def add_file(self, case: Case, path: Path, file_name: str, size: int, note: str,
                 fails: bool) -> dict:
        """The file evidence of an upload stored at `path`, as its upload answers it."""
        with self._lock:
            record = case.add("file", _now(), text=note, file_name=file_name, size=size,
                              path=path, complete_after=self.complete_after, fails=fails)
            return record.document(None)


def _resolved_cases(specs: Iterable[CaseSpec]) -> list[CaseSpec]:
    """The specs with their GUIDs (upper case) and numbers filled in, checked."""
    specs = list(specs)
    numbers = [spec.number for spec in specs if spec.number is not None]
    if len(set(numbers)) != len(numbers) or any(number < 1 for number in numbers):
        raise ValueError("case numbers must be unique and positive")
    taken = set(numbers)
    free = (number for number in itertools.count(1) if number not in taken)
    resolved = []
    for spec in specs:
        if spec.id is not None and not GUID.fullmatch(spec.id):
            raise ValueError(f"case id {spec.id!r} is not a GUID")
        if not 1 <= len(spec.name) <= NAME_LENGTH or spec.priority not in PRIORITIES:
            raise ValueError(f"case {spec.name!r}: a name of 1 to {NAME_LENGTH} characters "
                             f"and a priority from 1 to 5 are required")
        if spec.date_created is not None and spec.date_created.tzinfo is None:
            raise ValueError("case dates must be timezone-aware")
        resolved.append(CaseSpec(
            spec.name, spec.number if spec.number is not None else next(free),
            spec.externalId, (spec.id or str(uuid.uuid4())).upper(), spec.date_created,
            spec.priority, spec.summary))
    if len({spec.id for spec in resolved}) != len(resolved):
        raise ValueError("case ids must be unique")
    return resolved


def _number(case: Case) -> int:
    return case.number


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
