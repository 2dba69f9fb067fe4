"""Cisco IPS sensors: find an alert over SDEE, wait for its IP logs to complete, download
them from the IP log server, and optionally keep only the alert's attacker/target packets.

Every Cisco wire detail lives here (routes, request parameters, the error names the waiting
acts on) and in srp.vendors.cisco_sdee (the XML: namespaces, element names). Verified (Cisco
IPS guides, the RDEP and SDEE descriptions): HTTP Basic auth and a session cookie; SDEE at
/cgi-bin/sdee-server (4.x sensors: /cgi-bin/event-server) in query mode and subscription
mode (open / get / close); `POST /cgi-bin/iplog-server?ipLogId=N` answering the libpcap
log. Assumed, since Cisco does not publish it (docs/vendor-contracts.md#cisco-ips): the
error names below, the one place to adjust when a real sensor differs.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import requests

from srp.capture.filter import filter_capture
from srp.capture.headers import LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, decode_packet
from srp.capture.magic import CAPTURE_KINDS
from srp.errors import CaptureError, SrpError, UsageError
from srp.retrieval.download import CHUNK, ByteBudget, DownloadError, NotACapture, save_body
from srp.retrieval.http import HttpClient, check, page_numbers
from srp.retrieval.inputs import parse_alarm_date, parse_integer_id
from srp.retrieval.vendor import Downloaded, Found, InlinePacket, NoData, Session, Vendor
from srp.summary.printable import printable
from srp.timestamps import ns_to_rfc3339, rfc3339
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
# --- Assumed (docs/vendor-contracts.md#cisco-ips) ---
SUBSCRIPTION_NEEDED = frozenset({"errNotSupported"})   # query mode refused: subscribe
IPLOG_GONE = frozenset({"errNotFound"})         # the log is unknown or was overwritten
# ---------------------------------------------------------------------------------------

PAGE_EVENTS = 500
GET_WAIT = 1              # seconds a subscription `get` may hold on for new events
MAX_ANSWER = 32 * 1024 * 1024
SEARCH_LOOKBACK = timedelta(hours=24)   # before --alarm-date (or now), the alert is looked for
# A trigger packet starting with one of these at bytes 12-13 is an Ethernet frame (assumed).
TRIGGER_ETHERTYPES = frozenset({0x0800, 0x86DD, 0x8100})
MATCHED_SHOWN = 120       # bytes of the matched stream the summary shows
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


@dataclass(frozen=True)
class _IpLog:
    """What fetching one IP log needs besides its id."""

    log_id: int
    status: str | None                   # its latest status event, if the sensor sent one
    participants: Participants | None    # the packets to keep (--only-participants)
    deadline: float                      # time.monotonic() at which --wait runs out


class Cisco(Vendor):
    name = "cisco"
    secret_options = ("password",)
    session_noun = "IP log"
    no_data = NoData(nothing_captured="the alert's IP logs hold no packets")

    def __init__(self, client: HttpClient, *, username: str, password: str,
                 event_id: str | None = None, iplog_id: str | None = None,
                 alarm_date: str | None = None, wait: float = 300,
                 only_participants: bool = False, trigger_only: bool = False):
        super().__init__(client)
        if (event_id is None) == (iplog_id is None):
            raise UsageError("give one of --event-id and --iplog-id")
        if trigger_only and event_id is None:
            raise UsageError("--trigger-only needs --event-id: the trigger packet is in the "
                             "alert")
        if only_participants and event_id is None:
            raise UsageError("--only-participants needs --event-id: with --iplog-id the "
                             "alert's attacker and target are not known")
        if not username or ":" in username or _CONTROL.search(username):
            raise UsageError("--username must be a non-empty name without ':' or control "
                             "characters")
        if not password:
            raise UsageError("--password is empty")
        self._auth = (username, password)
        self._event_id = parse_integer_id(event_id, "--event-id") if event_id is not None \
            else None
        self._iplog_id = parse_integer_id(iplog_id, "--iplog-id") if iplog_id is not None \
            else None
        self._alarm_date = parse_alarm_date(alarm_date) if alarm_date else None
        self._wait = wait
        self._only_participants = only_participants
        self._trigger_only = trigger_only
        self._search_from = (self._alarm_date or datetime.now(timezone.utc)) - SEARCH_LOOKBACK
        self._sdee_path = SDEE_PATH
        self._mode = "query"

    def request(self) -> dict:
        return {"vendor": self.name, "address": self.client.base_url,
                "event_id": self._event_id, "iplog_id": self._iplog_id,
                "only_participants": self._only_participants,
                "alarm_date": rfc3339(self._alarm_date) if self._alarm_date else None,
                **({"trigger_only": True} if self._trigger_only else {})}

    # --- finding the IP logs ---

    def find_sessions(self) -> Found:
        found = Found([], self.no_data)
        if self._iplog_id is not None:
            handle = _IpLog(self._iplog_id, None, None, time.monotonic() + self._wait)
            found.sessions = [Session(str(self._iplog_id), details={"ipLogId": self._iplog_id},
                                      handle=handle)]
            return found
        statuses: dict[int, str] = {}      # IP log id -> its latest status event
        alert = self._find_alert(statuses, found.warnings)
        deadline = time.monotonic() + self._wait
        if alert is None:
            found.no_data = replace(
                self.no_data, nothing_found=f"no alert with event id {self._event_id} on the "
                                            f"sensor since {rfc3339(self._search_from)}")
            return found
        found.about = _about(alert)
        found.fallback = _trigger_packet(alert, found.warnings)
        if self._trigger_only:
            found.no_data = replace(self.no_data, nothing_found=(
                "--trigger-only: the IP logs were not asked for" if found.fallback else
                f"alert {alert.event_id} carries no trigger packet (it is not a verbose "
                f"alert): nothing to take with --trigger-only"))
            return found
        if alert.unreadable_log_ids:
            found.warnings.append(f"alert {alert.event_id}: skipped "
                                  f"{alert.unreadable_log_ids} IP log ids that are not whole "
                                  f"numbers")
        if not alert.ip_log_ids:
            label = alert.description or f"signature {alert.signature_id}"
            found.no_data = replace(
                self.no_data, nothing_found=f"alert {alert.event_id} ({label}) has no IP log: "
                                            f"its event action logs no packets")
            return found
        participants = None
        if self._only_participants:
            if alert.attacker is None or not alert.targets:
                found.warnings.append(f"alert {alert.event_id} names no attacker and target "
                                      f"address: its IP logs are kept whole")
            else:
                participants = Participants(alert.attacker, tuple(alert.targets))
                found.no_data = replace(
                    self.no_data, only_empty="the IP logs hold no packet between the alert's "
                                             "attacker and target")
        details = {
            "eventId": alert.event_id, "signatureId": alert.signature_id,
            "description": alert.description, "severity": alert.severity,
            "attacker": _endpoint_text(alert.attacker),
            "targets": [_endpoint_text(target) for target in alert.targets],
            "foundThrough": f"SDEE {self._mode} mode at {self._sdee_path}",
        }
        start = ns_to_rfc3339(alert.time_ns)
        hosts = tuple(_endpoint_text(Endpoint(endpoint.address, None))
                      for endpoint in (alert.attacker, *alert.targets) if endpoint is not None)
        found.sessions = [
            Session(str(log_id), start=start, endpoints=hosts,
                    details={"ipLogId": log_id, **details,
                             "ipLogStatus": statuses.get(log_id, "unknown")},
                    handle=_IpLog(log_id, statuses.get(log_id), participants, deadline))
            for log_id in alert.ip_log_ids]
        return found

    def _find_alert(self, statuses: dict[int, str], warnings: list[str]) -> Alert | None:
        """The alert asked for, recording on the way the IP log statuses the sensor sent."""
        with contextlib.closing(self._event_pages(warnings)) as pages:
            for events in pages:
                # Pages come in time order: a later status of a log replaces an earlier one.
                for status in events.statuses:
                    statuses[status.ip_log_id] = status.status
                for alert in events.alerts:
                    if alert.event_id == self._event_id:
                        return alert
        return None

    def _event_pages(self, warnings: list[str]) -> Iterator[Events]:
        """The sensor's events since the search start, page by page: in query mode, or
        through a subscription when the sensor serves events only that way."""
        try:
            yield from self._query_pages()
            return
        except SensorSaid as said:
            if said.name not in SUBSCRIPTION_NEEDED:
                raise
        self._mode = "subscription"
        yield from self._subscription_pages(warnings)

    def _query_pages(self) -> Iterator[Events]:
        what = "SDEE event query"
        start = _ns(self._search_from)
        seen: set = set()
        for _page in page_numbers(what):
            answer = self._sdee({EVENTS: EVENT_TYPES, START_TIME: start,
                                 MAX_EVENTS: PAGE_EVENTS}, what)
            # The next page starts at the latest time seen; events of that very time come
            # again and are recognised by their ids.
            events = read_events(answer).without(seen)
            if not events.keys:
                return
            seen |= events.keys
            yield events
            start = max(start, events.latest_ns or start)

    def _subscription_pages(self, warnings: list[str]) -> Iterator[Events]:
        what = "SDEE subscription"
        opened = self._sdee({ACTION: OPEN, EVENTS: EVENT_TYPES, FORCE: FORCE_SUBSCRIPTION,
                             START_TIME: _ns(self._search_from)}, what)
        subscription = subscription_id(opened, what)
        try:
            for _page in page_numbers(what):
                events = read_events(self._sdee({ACTION: GET, SUBSCRIPTION: subscription,
                                                 TIMEOUT: GET_WAIT, MAX_EVENTS: PAGE_EVENTS,
                                                 CONFIRM: "yes"}, what))
                if not events.keys:
                    return
                yield events
        finally:
            # A sensor holds only a few subscriptions: never leave one open.
            try:
                self._sdee({ACTION: CLOSE, SUBSCRIPTION: subscription}, what)
            except SrpError as exc:
                warnings.append(f"could not close the SDEE subscription: {exc}")

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
        return self.client.request(method, path, auth=self._auth, stream=True, **kwargs)

    # --- downloading an IP log ---

    def fetch(self, session: Session, dest: Path, budget: ByteBudget) -> Downloaded:
        """Download one IP log, waiting while the sensor is still writing it; the download's
        details say how long it waited and what the filter kept."""
        log: _IpLog = session.handle
        what = self.describe(session)
        if log.status == "removed":
            raise DownloadError("the sensor reports it removed (overwritten) before it could "
                                "be fetched", what)
        started, delay = time.monotonic(), FIRST_RETRY
        while True:
            try:
                download = self._download(log.log_id, dest, budget, what)
                break
            except NotACapture as answer:
                # Not a capture: the sensor talking, typically "not complete yet".
                name, words = error_words(answer.head)
                said = f"{name}: {words}" if name else words
                if name in IPLOG_GONE:
                    raise DownloadError(f"the sensor does not have it: {said}", what) from None
                left = log.deadline - time.monotonic()
                if left <= 0:
                    raise DownloadError(f"did not complete within --wait {self._wait:g} s; the "
                                        f"sensor still answers: {said}", what) from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, LONGEST_RETRY)
        waited = time.monotonic() - started
        if waited >= FIRST_RETRY:
            download.details["waitedSeconds"] = round(waited, 1)
        if log.participants is None:
            return download
        return _keep_participants(download, log.participants, what)

    def _download(self, log_id: int, dest: Path, budget: ByteBudget,
                  what: str) -> Downloaded:
        response = self._request("POST", IPLOG_PATH, params={IPLOG_ID: log_id}, data=b"")
        with response:
            check(response, what)
            return save_body(response, dest, budget, what)


def _keep_participants(download: Downloaded, participants: Participants,
                       what: str) -> Downloaded:
    """The IP log cut to the alert's attacker/target packets (an IP log may hold more than
    the alert's pair)."""
    if download.kind not in CAPTURE_KINDS:
        raise DownloadError(f"came as a {download.kind} archive; --only-participants filters "
                            f"bare captures only", what)
    filtered = download.path.with_name(download.path.name + ".participants")
    try:
        result = filter_capture(download.path, filtered, participants.matches)
    except CaptureError as exc:
        raise DownloadError(exc.reason, what) from None
    finally:
        download.path.unlink(missing_ok=True)
    # The size and SHA-256 stay those of the log as the sensor sent it.
    download.path = filtered
    download.details["participantPackets"] = {"kept": result.kept, "of": result.read}
    if result.damage is not None:
        download.warnings.append(result.damage.describe(what))
    return download


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


def _about(alert: Alert) -> dict[str, str]:
    """The alert, for the summary: its signature, and the bytes that matched it (the
    alert's context, else the start of the trigger packet's payload), escaped."""
    about = {"signature": f'{alert.signature_id} "{alert.description}" (alert '
                          f'{alert.event_id}, severity {alert.severity or "unknown"})'}
    matched = alert.context
    if matched is None and alert.trigger is not None:
        linktype = _trigger_linktype(alert.trigger)
        packet = decode_packet(linktype, alert.trigger) if linktype is not None else None
        if packet is not None:
            matched = alert.trigger[packet.payload_start:packet.payload_end]
    if matched:
        about["matched"] = printable(matched[:MATCHED_SHOWN])
    return about


def _trigger_packet(alert: Alert, warnings: list[str]) -> InlinePacket | None:
    """The verbose alert's trigger packet as a packet of its own, at the alert's time: its
    link type from its first bytes, its original length from its IP header when the dump
    was cut. A dump that cannot be read is a warning."""
    what = f"alert {alert.event_id}'s trigger packet"
    if alert.trigger_problem:
        warnings.append(f"{what} was left out: {alert.trigger_problem}")
        return None
    if alert.trigger is None:
        return None
    linktype = _trigger_linktype(alert.trigger)
    if linktype is None:
        warnings.append(f"{what} was left out: it is neither an Ethernet frame nor an IP "
                        f"packet")
        return None
    if alert.time_ns is None:
        warnings.append(f"{what} was left out: the alert has no time")
        return None
    return InlinePacket("the alert's trigger packet", alert.time_ns, linktype,
                        alert.trigger, _original_length(linktype, alert.trigger))


def _trigger_linktype(data: bytes) -> int | None:
    """Ethernet when bytes 12-13 are an EtherType a sensor sees (assumed), else raw IP when
    it starts like an IP header, else None."""
    if len(data) >= 14 and int.from_bytes(data[12:14], "big") in TRIGGER_ETHERTYPES:
        return LINKTYPE_ETHERNET
    if data and data[0] >> 4 in (4, 6):
        return LINKTYPE_RAW
    return None


def _original_length(linktype: int, data: bytes) -> int:
    """The packet's length on the wire: the IP header's, when the dump was cut shorter."""
    start = 14 if linktype == LINKTYPE_ETHERNET else 0
    if linktype == LINKTYPE_ETHERNET and data[12:14] == b"\x81\x00":
        start = 18                              # one 802.1Q tag
    header = data[start:start + 6]
    if len(header) >= 4 and header[0] >> 4 == 4:
        wire = start + int.from_bytes(header[2:4], "big")
    elif len(header) >= 6 and header[0] >> 4 == 6:
        wire = start + 40 + int.from_bytes(header[4:6], "big")
    else:
        wire = 0
    return max(wire, len(data))


def _endpoint_text(endpoint: Endpoint | None) -> str | None:
    if endpoint is None:
        return None
    if len(endpoint.address) == 4:
        address = socket.inet_ntop(socket.AF_INET, endpoint.address)
    else:
        address = f"[{socket.inet_ntop(socket.AF_INET6, endpoint.address)}]"
    return address + (f":{endpoint.port}" if endpoint.port is not None else "")
