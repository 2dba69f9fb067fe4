"""Stamus Networks SCS / Clear NDR (Scirius): the packets of the flows that raised a
signature's alerts, kept by conditional pcap.

Every Stamus wire detail lives here, verified from the open-source Scirius code and the
Stamus documentation (docs/vendor-contracts.md#stamus). One alerting flow is one session:
its alert is found with alerts_tail, uploaded back to the manager exactly as received,
extracted on the probe (synchronous, minutes at worst), retrieved to the manager, and
downloaded. The download is one-shot (the server deletes the file once it has served it), so
a download that breaks off starts again at the upload.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from srp.errors import SrpError, UsageError
from srp.retrieval.download import ByteBudget, TransferBroken, save_body
from srp.retrieval.http import (HttpClient, check, json_answer, page_numbers,
                                unexpected_answer)
from srp.retrieval.inputs import TimeWindow, parse_alarm_date, parse_integer_id
from srp.retrieval.vendor import Downloaded, Found, NoData, Session, Vendor
from srp.timestamps import rfc3339

# ----------------------------------------------------------------------------------------
# The Stamus wire contract: the one place to adjust when a real server differs.
AUTH_SCHEME = "Token"                                        # Authorization: Token <key>
ALERTS_PATH = "/rest/rules/es/alerts_tail/"                  # GET, paged
UPLOAD_PATH = "/rest/rules/filestore_pcap/upload/"           # POST multipart, ?host=
EXTRACT_PATH = "/rest/rules/filestore_pcap/{name}/extract_pcap/"   # POST, ?host=
RETRIEVE_PATH = "/rest/rules/filestore_pcap/{name}/retrieve/"      # GET, ?host=
DOWNLOAD_PATH = "/rest/rules/filestore_pcap/{name}/download/"      # GET, one-shot
UPLOAD_FIELD = "file"                    # the multipart field holding the alert's JSON
HOST_PARAM = "host"                      # the probe that keeps the flow's packets
# alerts_tail: query parameters and answer fields
QFILTER, FROM_DATE, TO_DATE, PAGE, PAGE_SIZE_PARAM = (
    "qfilter", "from_date", "to_date", "page", "page_size")
ANSWER_COUNT, ANSWER_NEXT, ANSWER_RESULTS = "count", "next", "results"
ALERT_ID, ALERT_SOURCE = "_id", "_source"     # results come flat or as _id + _source
# The answer word each filestore_pcap step gives when it worked.
UPLOAD_DONE = ("upload", "done")
EXTRACT_DONE = ("extraction", "done")
RETRIEVE_DONE = ("retrieve", "done")
# ----------------------------------------------------------------------------------------

PAGE_SIZE = 100
FETCH_ATTEMPTS = 3               # upload-extract-retrieve-download rounds for one flow
RESTART_BACKOFF = 0.5            # seconds, times the attempt number
DEFAULT_EXTRACT_TIMEOUT = 600.0
# The server's file names: what its filestore_pcap routes accept. An _id outside this set
# would reach a path on the server (a traversal through _id was reported upstream).
_FILE_NAME = re.compile(r"[0-9A-Za-z_-]{1,128}")
_PROBE_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,255}")
_TOKEN = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class _Alert:
    """The alert a session's flow is extracted from."""

    received: dict       # exactly as alerts_tail answered it: what is uploaded
    file_name: str       # its _id, checked against _FILE_NAME
    probe: str


def _probe_name(value) -> str | None:
    """A probe name fit to travel in a query string (requests escapes it; control
    characters are refused outright); None when `value` is not one."""
    if not isinstance(value, str) or not _PROBE_NAME.fullmatch(value.strip()):
        return None
    return value.strip()


class Stamus(Vendor):
    name = "stamus"
    secret_options = ("token",)
    session_noun = "flow"
    # Only `fetch` can repeat a one-shot download: it starts again at the upload.
    download_attempts = 1

    def __init__(self, client: HttpClient, *, token: str, signature_id: str,
                 flow_id: str | None = None, alarm_date: str | None = None,
                 before: float = 60, after: float = 15, probe: str | None = None,
                 extract_timeout: float = DEFAULT_EXTRACT_TIMEOUT):
        super().__init__(client)
        if not _TOKEN.fullmatch(token):
            raise UsageError("--token is empty or holds spaces or control characters")
        self._auth = {"Authorization": f"{AUTH_SCHEME} {token}"}
        self._signature_id = parse_integer_id(signature_id, "--signature-id")
        # An empty --flow-id= is an alarm field LogRhythm left unfilled: the whole signature.
        self._flow_id = parse_integer_id(flow_id, "--flow-id") if flow_id else None
        self._window = TimeWindow.from_options(alarm_date, before, after)
        self._probe = _probe_name(probe) if probe is not None else None
        if probe is not None and self._probe is None:
            raise UsageError("--probe is empty, too long or holds control characters")
        self._extract_timeout = extract_timeout
        # Built from validated integers only: nothing of an alarm's text reaches the query.
        self._qfilter = f"alert.signature_id:{self._signature_id}" + (
            f" AND flow_id:{self._flow_id}" if self._flow_id is not None else "")

    def request(self) -> dict:
        return {"vendor": self.name, "address": self.client.base_url,
                "signature_id": self._signature_id, "flow_id": self._flow_id,
                "probe": self._probe, "qfilter": self._qfilter,
                "window": self._window.as_dict()}

    def window_closes(self) -> datetime:
        return self._window.end

    def _call(self, method: str, path: str, what: str, **kwargs):
        try:
            response = self.client.request(method, path, headers=self._auth, **kwargs)
        except SrpError as exc:   # unreachable, TLS, silent: say at which step
            raise SrpError(str(exc), what) from None
        return check(response, what)

    # --- finding the alerting flows ---

    def find_sessions(self) -> Found:
        found = Found([], self._no_data())
        sessions: dict[str, Session] = {}
        refused: dict[str, str] = {}     # flow -> why its stored alert cannot be uploaded
        uploadable: set[str] = set()     # flows with an alert that can be uploaded
        foreign = 0
        for received in self._alerts_tail():
            fields = _fields_of(received)
            if fields is None:
                found.warnings.append(f"skipped an answer entry that is not an alert: "
                                      f"{str(received)[:80]}")
                continue
            flow_id = fields.get("flow_id")
            if isinstance(flow_id, bool) or not isinstance(flow_id, int):
                found.warnings.append(f"skipped an alert without a flow_id: "
                                      f"{str(fields)[:80]}")
                continue
            if not self._asked_for(fields):
                foreign += 1
                continue
            key = str(flow_id)
            session = _session_from(received, fields)
            if session.captured:
                alert = self._uploadable(received, fields)
                if isinstance(alert, str):
                    refused.setdefault(key, alert)
                    continue
                session.handle = alert
                uploadable.add(key)
            # One session per flow: several alerts of a flow are extracted once, from the
            # first alert that has a capture_file and can be uploaded.
            earlier = sessions.get(key)
            if earlier is None or (session.captured and not earlier.captured):
                sessions[key] = session
        if foreign:
            found.warnings.append(f"skipped {foreign} alerts of another signature or flow "
                                  f"(the server did not apply the filter {self._qfilter!r})")
        for key, why in refused.items():
            if key not in uploadable:   # no other alert of the flow could be uploaded
                sessions.pop(key, None)
                found.warnings.append(f"flow {key}: not uploaded: {why}")
        if refused and not uploadable:   # nothing stored is left to upload
            key, why = next(iter(refused.items()))
            more = f" (and {len(refused) - 1} more flows)" if len(refused) > 1 else ""
            raise SrpError(f"refused to upload its alert: {why}{more}", f"flow {key}")
        found.sessions = list(sessions.values())
        return found

    def _no_data(self) -> NoData:
        """"No data" saying which case it is, in Stamus terms."""
        signature = self._signature_id
        if self._flow_id is None:
            return NoData(
                nothing_found=f"no alert of signature {signature} in the time window",
                nothing_captured=(f"no alert of signature {signature} has a capture_file: "
                                  f"conditional pcap stored none of its flows"),
                only_empty=("the extracted captures are bare headers: the probes kept no "
                            "packet of these flows"))
        return NoData(
            nothing_found=(f"no alert of signature {signature} (flow {self._flow_id}) in the "
                           f"time window"),
            nothing_captured=("the alert has no capture_file: conditional pcap did not store "
                              "the flow"),
            only_empty="the extracted capture is a bare header: the probe kept no packet of "
                       "the flow")

    def _asked_for(self, fields: dict) -> bool:
        """Whether the alert is of the signature (and flow) asked for."""
        alert = fields.get("alert")
        signature_id = alert.get("signature_id") if isinstance(alert, dict) else None
        return signature_id == self._signature_id and (
            self._flow_id is None or fields.get("flow_id") == self._flow_id)

    def _uploadable(self, received: dict, fields: dict) -> _Alert | str:
        """The alert ready to upload, or why it must not be."""
        file_name = received.get(ALERT_ID)
        if file_name is None:
            return "it has no _id, which the upload needs"
        if not isinstance(file_name, str) or not _FILE_NAME.fullmatch(file_name):
            return (f"its _id {json.dumps(file_name)[:60]} is not a file name the server "
                    f"accepts (1 to 128 of [0-9A-Za-z_-])")
        probe = self._probe or _probe_name(fields.get("host"))
        if probe is None:
            return "it names no usable probe (host); give the probe with --probe"
        return _Alert(received, file_name, probe)

    def _alerts_tail(self):
        """Every alert matching the filter in the window, page after page."""
        what = "Stamus alert search"
        start_ms, end_ms = self._window.as_epoch_ms()
        seen = 0
        for number in page_numbers(what):
            params = {QFILTER: self._qfilter, FROM_DATE: start_ms, TO_DATE: end_ms,
                      PAGE: number + 1, PAGE_SIZE_PARAM: PAGE_SIZE}
            answer = self._call("GET", ALERTS_PATH, what, params=params)
            expected = "the answer is not the alert list this tool expects"
            data = json_answer(answer, what, expected)
            try:
                results = data[ANSWER_RESULTS]
                count = int(data[ANSWER_COUNT])
                if not isinstance(results, list):
                    raise TypeError
                results = results[:PAGE_SIZE]     # held to the length asked for
            except (ValueError, KeyError, TypeError, OverflowError):
                raise unexpected_answer(answer, what, expected) from None
            yield from results
            seen += len(results)
            if not results or seen >= count or not data.get(ANSWER_NEXT):
                return

    # --- fetching one flow ---

    def fetch(self, session: Session, dest: Path, budget: ByteBudget) -> Downloaded:
        alert: _Alert = session.handle
        what = self.describe(session)
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            try:
                return self._fetch_once(alert, dest, budget, what)
            except TransferBroken as exc:
                # The server deleted the file as it served it: only a new extraction
                # makes another; save_body gave back what the broken body counted.
                if attempt == FETCH_ATTEMPTS:
                    raise TransferBroken(f"{exc.reason}; tried {FETCH_ATTEMPTS} times from "
                                         f"the upload", exc.subject) from None
                time.sleep(RESTART_BACKOFF * attempt)
        raise AssertionError("fetch tries at least once")

    def _fetch_once(self, alert: _Alert, dest: Path, budget: ByteBudget,
                    what: str) -> Downloaded:
        on_probe = {HOST_PARAM: alert.probe}
        body = json.dumps(alert.received).encode()
        # Neither POST is sent again when its answer does not come (the server may have
        # acted on it): an extraction may still run on the probe, a second would join it.
        self._step("POST", UPLOAD_PATH, f"{what}: upload", UPLOAD_DONE, params=on_probe,
                   files={UPLOAD_FIELD: ("alert.json", body, "application/json")},
                   retry_reads=False)
        self._step("POST", EXTRACT_PATH.format(name=alert.file_name), f"{what}: extraction",
                   EXTRACT_DONE, params=on_probe, timeout=self._extract_timeout,
                   retry_reads=False)
        self._step("GET", RETRIEVE_PATH.format(name=alert.file_name), f"{what}: retrieval",
                   RETRIEVE_DONE, params=on_probe)
        response = self._call("GET", DOWNLOAD_PATH.format(name=alert.file_name),
                              f"{what}: download", stream=True)
        with response:
            return save_body(response, dest, budget, what)

    def _step(self, method: str, path: str, what: str, done: tuple[str, str],
              **kwargs) -> None:
        """One filestore_pcap call, which must answer with its word for done."""
        expected = f'the server did not answer {{"{done[0]}": "{done[1]}"}}'
        with self._call(method, path, what, **kwargs) as answer:
            data = json_answer(answer, what, expected)
            if not (isinstance(data, dict) and data.get(done[0]) == done[1]):
                raise unexpected_answer(answer, what, expected)


def _fields_of(received) -> dict | None:
    """An answer entry's alert fields: the entry itself, or its _source."""
    if not isinstance(received, dict):
        return None
    source = received.get(ALERT_SOURCE)
    return source if isinstance(source, dict) else received


def _session_from(received: dict, fields: dict) -> Session:
    """An alert's flow as a session; what the manifest says of it."""
    alert = fields.get("alert") if isinstance(fields.get("alert"), dict) else {}
    alert_id = received.get(ALERT_ID)
    details = {"flow_id": fields["flow_id"],
               "alert_id": alert_id[:128] if isinstance(alert_id, str) else None,
               "signature_id": alert.get("signature_id"), "signature": alert.get("signature"),
               "probe": fields.get("host"),
               **{key: fields[key] for key in ("timestamp", "src_ip", "src_port", "dest_ip",
                                               "dest_port", "proto", "app_proto")
                  if key in fields}}
    return Session(id=str(fields["flow_id"]), captured=bool(fields.get("capture_file")),
                   start=_rfc3339_or_as_is(fields.get("timestamp")),
                   endpoints=tuple(str(fields[key]) for key in ("src_ip", "dest_ip")
                                   if fields.get(key)),
                   details=details)


def _rfc3339_or_as_is(timestamp) -> str | None:
    """EVE's timestamp (2024-05-01T11:10:00.123456+0200) as RFC 3339 UTC, so flows of
    probes in different zones are fetched in time order."""
    if not isinstance(timestamp, str):
        return None
    try:
        return rfc3339(parse_alarm_date(timestamp))
    except UsageError:
        return timestamp
