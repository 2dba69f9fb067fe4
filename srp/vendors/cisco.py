"""Cisco IPS sensors: find an alert over SDEE, wait for its IP logs to complete, download
them from the IP log server, and optionally keep only the alert's attacker/target packets.

Every Cisco wire detail lives here (routes, request parameters, the error names the waiting
acts on) and in srp.vendors.cisco_sdee (the XML: namespaces, element names). Verified (Cisco
IPS guides, the RDEP and SDEE descriptions): HTTP Basic auth and a session cookie; SDEE at
/cgi-bin/sdee-server (4.x sensors: /cgi-bin/event-server) in query mode and subscription
mode (open / get / close); `POST /cgi-bin/iplog-server?ipLogId=N` answering the libpcap
log. Assumed, since Cisco does not publish it (vendor-apis.md section 3): the error names
below, the one place to adjust when a real sensor differs.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import requests

from srp.capture.filter import filter_capture
from srp.capture.headers import Packet
from srp.errors import CaptureError, SrpError, UsageError
from srp.retrieval.download import (CAPTURE_KINDS, CHUNK, ByteBudget, Downloaded,
                                    DownloadError, NotACapture, save_body)
from srp.retrieval.http import HttpClient, check
from srp.retrieval.inputs import rfc3339
from srp.retrieval.outcome import ns_to_rfc3339
from srp.vendors import Session, Vendor
from srp.vendors.cisco_sdee import (Alert, Endpoint, Events, SensorSaid, error_words,
                                    parse_document, read_events, subscription_id)

# --- Routes and request parameters (verified) ---
SDEE_PATH = "/cgi-bin/sdee-server"
LEGACY_SDEE_PATH = "/cgi-bin/event-server"     # IPS 4.x sensors; used once SDEE_PATH is 404
IPLOG_PATH = "/cgi-bin/iplog-server"            # POST, empty body
IPLOG_ID = "ipLogId"
ACTION, EVENTS, START_TIME, MAX_EVENTS = "action", "events", "startTime", "maxNbrOfEvents"
SUBSCRIPTION, TIMEOUT, CONFIRM, FORCE = "subscriptionId", "timeout", "confirm", "force"
EVENT_TYPES = "evIdsAlert evStatus"             # sent as evIdsAlert+evStatus
# startTime is in nanoseconds since the epoch.
OPEN, GET, CLOSE = "open", "get", "close"
# A sensor keeps a few subscriptions; "force" would close the oldest, which may be the SIEM's
# own event collector: an automatic action never does that.
FORCE_SUBSCRIPTION = "no"
# --- Assumed (vendor-apis.md section 3) ---
SUBSCRIPTION_NEEDED = frozenset({"errNotSupported"})   # query mode refused: subscribe
IPLOG_GONE = frozenset({"errNotFound"})         # the log is unknown or was overwritten
# ---------------------------------------------------------------------------------------

PAGE_EVENTS = 500
MAX_PAGES = 1000          # a sensor that never stops paging is cut here
GET_WAIT = 1              # seconds a subscription `get` may hold on for new events
MAX_ANSWER = 32 * 1024 * 1024
SEARCH_LOOKBACK = timedelta(hours=24)   # before --alarm-date (or now), the alert is looked for
FIRST_RETRY, LONGEST_RETRY = 1.0, 15.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Participants:
    """The alert's attacker and targets: which packets of an IP log are the alert's."""

    attacker: Endpoint
    targets: tuple[Endpoint, ...]

    def matches(self, packet: Packet | None) -> bool:
        """A packet between the attacker and a target, either way. Ports must match when the
        alert gives them and the packet carries them (fragments and ICMP carry none)."""
        if packet is None:
            return False
        src, dst = (packet.src, packet.sport), (packet.dst, packet.dport)
        return any((_is_endpoint(src, self.attacker) and _is_endpoint(dst, target))
                   or (_is_endpoint(src, target) and _is_endpoint(dst, self.attacker))
                   for target in self.targets)


def _is_endpoint(side: tuple[bytes, int | None], endpoint: Endpoint) -> bool:
    address, port = side
    return address == endpoint.address and (endpoint.port is None or port is None
                                            or port == endpoint.port)


class Cisco(Vendor):
    name = "cisco"
    session_noun = "IP log"
    nothing_captured = "the alert's IP logs hold no packets"

    def __init__(self, client: HttpClient, username: str, password: str, *,
                 event_id: int | None = None, iplog_id: int | None = None, wait: float,
                 only_participants: bool = False, alarm_date: datetime | None = None):
        super().__init__()
        if (event_id is None) == (iplog_id is None):
            raise UsageError("give one of --event-id and --iplog-id")
        if only_participants and event_id is None:
            raise UsageError("--only-participants needs --event-id: with --iplog-id the "
                             "alert's attacker and target are not known")
        if not username or ":" in username or _CONTROL.search(username):
            raise UsageError("--username must be a non-empty name without ':' or control "
                             "characters")
        if not password:
            raise UsageError("--password is empty")
        self._client = client
        self._auth = (username, password)
        self._event_id = event_id
        self._iplog_id = iplog_id
        self._wait = wait
        self._only_participants = only_participants
        self._alarm_date = alarm_date
        self._search_from = (alarm_date or datetime.now(timezone.utc)) - SEARCH_LOOKBACK
        self._sdee_path = SDEE_PATH
        self._mode = "query"
        self._statuses: dict[int, str] = {}      # IP log id -> its latest status event
        self._participants: Participants | None = None
        self._deadline = 0.0

    def request(self) -> dict:
        return {"vendor": self.name, "address": self._client.base_url,
                "event_id": self._event_id, "iplog_id": self._iplog_id,
                "only_participants": self._only_participants,
                "alarm_date": rfc3339(self._alarm_date) if self._alarm_date else None}

    # --- finding the IP logs ---

    def find_sessions(self) -> list[Session]:
        if self._iplog_id is not None:
            sessions = [Session(str(self._iplog_id), details={"ipLogId": self._iplog_id})]
        else:
            sessions = self._alert_sessions()
        self._deadline = time.monotonic() + self._wait
        return sessions

    def _alert_sessions(self) -> list[Session]:
        alert = self._find_alert()
        if alert is None:
            self.nothing_found = (f"no alert with event id {self._event_id} on the sensor "
                                  f"since {rfc3339(self._search_from)}")
            return []
        if alert.unreadable_log_ids:
            self.warnings.append(f"alert {alert.event_id}: skipped {alert.unreadable_log_ids} "
                                 f"IP log ids that are not whole numbers")
        if not alert.ip_log_ids:
            label = alert.description or f"signature {alert.signature_id}"
            self.nothing_found = (f"alert {alert.event_id} ({label}) has no IP log: its event "
                                  f"action logs no packets")
            return []
        if self._only_participants:
            self._choose_participants(alert)
        details = {
            "eventId": alert.event_id, "signatureId": alert.signature_id,
            "description": alert.description, "severity": alert.severity,
            "attacker": _endpoint_text(alert.attacker),
            "targets": [_endpoint_text(target) for target in alert.targets],
            "foundThrough": f"SDEE {self._mode} mode at {self._sdee_path}",
        }
        start = ns_to_rfc3339(alert.time_ns)
        return [Session(str(log_id), start=start,
                        details={"ipLogId": log_id, **details,
                                 "ipLogStatus": self._statuses.get(log_id, "unknown")})
                for log_id in alert.ip_log_ids]

    def _choose_participants(self, alert: Alert) -> None:
        if alert.attacker is None or not alert.targets:
            self.warnings.append(f"alert {alert.event_id} names no attacker and target "
                                 f"address: its IP logs are kept whole")
            return
        self._participants = Participants(alert.attacker, tuple(alert.targets))
        self.only_empty = "the IP logs hold no packet between the alert's attacker and target"

    def _find_alert(self) -> Alert | None:
        with contextlib.closing(self._event_pages()) as pages:
            for events in pages:
                # Pages come in time order: a later status of a log replaces an earlier one.
                for status in events.statuses:
                    self._statuses[status.ip_log_id] = status.status
                for alert in events.alerts:
                    if alert.event_id == self._event_id:
                        return alert
        return None

    def _event_pages(self) -> Iterator[Events]:
        """The sensor's events since the search start, page by page: in query mode, or
        through a subscription when the sensor serves events only that way."""
        try:
            yield from self._query_pages()
            return
        except SensorSaid as said:
            if said.name not in SUBSCRIPTION_NEEDED:
                raise
        self._mode = "subscription"
        yield from self._subscription_pages()

    def _query_pages(self) -> Iterator[Events]:
        start = _ns(self._search_from)
        seen: set = set()
        for _page in range(MAX_PAGES):
            answer = self._sdee({EVENTS: EVENT_TYPES, START_TIME: start,
                                 MAX_EVENTS: PAGE_EVENTS}, "SDEE event query")
            # The next page starts at the latest time seen; events of that very time come
            # again and are recognised by their ids.
            events = read_events(answer).without(seen)
            if not events.keys:
                return
            seen |= events.keys
            yield events
            start = max(start, events.latest_ns or start)
        raise SrpError(f"SDEE event query: still paging after {MAX_PAGES} pages")

    def _subscription_pages(self) -> Iterator[Events]:
        what = "SDEE subscription"
        opened = self._sdee({ACTION: OPEN, EVENTS: EVENT_TYPES, FORCE: FORCE_SUBSCRIPTION,
                             START_TIME: _ns(self._search_from)}, what)
        subscription = subscription_id(opened, what)
        try:
            for _page in range(MAX_PAGES):
                events = read_events(self._sdee({ACTION: GET, SUBSCRIPTION: subscription,
                                                 TIMEOUT: GET_WAIT, MAX_EVENTS: PAGE_EVENTS,
                                                 CONFIRM: "yes"}, what))
                if not events.keys:
                    return
                yield events
            raise SrpError(f"{what}: still paging after {MAX_PAGES} pages")
        finally:
            # A sensor holds only a few subscriptions: never leave one open.
            try:
                self._sdee({ACTION: CLOSE, SUBSCRIPTION: subscription}, what)
            except SrpError as exc:
                self.warnings.append(f"could not close the SDEE subscription: {exc}")

    def _sdee(self, params: dict, what: str):
        """One SDEE request, its answer parsed (SensorSaid for an error document); a 4.x
        sensor's route is used from the first 404 of the current one on."""
        response = self._request("GET", self._sdee_path, params=params)
        if response.status_code == 404 and self._sdee_path == SDEE_PATH:
            response.close()
            self._sdee_path = LEGACY_SDEE_PATH
            response = self._request("GET", self._sdee_path, params=params)
        with response:
            check(response, what)
            return parse_document(_read_answer(response, what), what)

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        # Basic auth on every request; the session keeps the sensor's cookie as well.
        return self._client.request(method, path, auth=self._auth, stream=True, **kwargs)

    # --- downloading an IP log ---

    def fetch(self, session: Session, dest: Path, budget: ByteBudget) -> Downloaded:
        """Download one IP log, waiting while the sensor is still writing it; what the wait
        and the filter did goes into the session's details, which reach the manifest."""
        log_id = int(session.id)   # made from an integer in find_sessions
        what = f"IP log {log_id}"
        if self._statuses.get(log_id) == "removed":
            raise DownloadError(f"{what}: the sensor reports it removed (overwritten) before "
                                f"it could be fetched")
        started, delay = time.monotonic(), FIRST_RETRY
        while True:
            try:
                download = self._download(log_id, dest, budget, what)
                break
            except NotACapture as answer:
                # Not a capture: the sensor talking, typically "not complete yet".
                name, words = error_words(answer.head)
                said = f"{name}: {words}" if name else words
                if name in IPLOG_GONE:
                    raise DownloadError(f"{what}: the sensor does not have it: {said}"
                                        ) from None
                left = self._deadline - time.monotonic()
                if left <= 0:
                    raise DownloadError(f"{what} did not complete within --wait "
                                        f"{self._wait:g} s; the sensor still answers: "
                                        f"{said}") from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, LONGEST_RETRY)
        waited = time.monotonic() - started
        if waited >= FIRST_RETRY:
            session.details["waitedSeconds"] = round(waited, 1)
        if self._participants is None:
            return download
        return self._keep_participants(session, download, what)

    def _download(self, log_id: int, dest: Path, budget: ByteBudget,
                  what: str) -> Downloaded:
        response = self._request("POST", IPLOG_PATH, params={IPLOG_ID: log_id}, data=b"")
        with response:
            check(response, what)
            return save_body(response, dest, budget, what)

    def _keep_participants(self, session: Session, download: Downloaded,
                           what: str) -> Downloaded:
        """The IP log cut to the alert's attacker/target packets (an IP log may hold more
        than the alert's pair)."""
        if download.kind not in CAPTURE_KINDS:
            raise DownloadError(f"{what} came as a {download.kind} archive; "
                                f"--only-participants filters bare captures only")
        filtered = download.path.with_name(download.path.name + ".participants")
        try:
            result = filter_capture(download.path, filtered, self._participants.matches)
        except CaptureError as exc:
            raise DownloadError(f"{what}: {str(exc).split(': ', 1)[-1]}") from None
        finally:
            download.path.unlink(missing_ok=True)
        if result.damage is not None:
            self.warnings.append(result.damage.describe(what))
        # The size and SHA-256 stay those of the log as the sensor sent it.
        session.details["participantPackets"] = {"kept": result.kept, "of": result.read}
        return Downloaded(filtered, download.size, download.sha256, download.kind)


def _read_answer(response: requests.Response, what: str) -> bytes:
    body = bytearray()
    try:
        for chunk in response.iter_content(CHUNK):
            body += chunk
            if len(body) > MAX_ANSWER:
                raise SrpError(f"{what}: the sensor's answer is larger than {MAX_ANSWER} bytes")
    except requests.exceptions.RequestException as exc:
        raise SrpError(f"{what}: the answer broke off ({type(exc).__name__})") from None
    return bytes(body)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def _endpoint_text(endpoint: Endpoint | None) -> str | None:
    if endpoint is None:
        return None
    if len(endpoint.address) == 4:
        address = socket.inet_ntop(socket.AF_INET, endpoint.address)
    else:
        address = f"[{socket.inet_ntop(socket.AF_INET6, endpoint.address)}]"
    return address + (f":{endpoint.port}" if endpoint.port is not None else "")
