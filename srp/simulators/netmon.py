"""A LogRhythm Network Monitor (NetMon) look-alike over HTTPS.

It serves the session search and the session PCAP download of docs/vendor-contracts.md#netmon
with `Authorization: Bearer <key>` or the legacy `token: <key>` header, answers queries in the
Lucene subset of srp.simulators.lucene over a catalogue of sessions, and serves each captured
session as a 7z archive of a realistic capture (srp.simulators.traffic), made on first request
and kept on disk, streamed from the file. Faults (FAULTS) can be switched on while it runs.

    with NetMonSimulator() as netmon:
        requests.post(netmon.url + SEARCH_ROUTE, json={...}, verify=netmon.ca_bundle,
                      headers={"Authorization": f"Bearer {netmon.api_key}"})
"""

from __future__ import annotations

import calendar
import datetime as dt
import hmac
import os
import random
import re
import secrets
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote

from srp.simulators import lucene
from srp.simulators.capfile import LINKTYPE_ETHERNET, PCAP, PCAPNG
from srp.simulators.faults import Fault
from srp.simulators.https import RequestError, SimulatorHandler, VendorSimulator
from srp.simulators.traffic import Conversation
from srp.timestamps import ns_to_rfc3339

# ----------------------------------------------------------------------------------------
# The NetMon wire contract: the one place to adjust when a real appliance differs.
# Verified from public sources (docs/vendor-contracts.md#netmon):
AUTH_HEADER = "Authorization"          # "Bearer <API token>"
BEARER_SCHEME = "bearer"               # compared case-insensitively
LEGACY_TOKEN_HEADER = "token"          # NetMon 3.x sent the bare token in this header
PCAP_ROUTE = re.compile(r"/api/session/(?P<id>[^/]+)/pcap")
ARCHIVE_CONTENT_TYPE = "application/x-7z-compressed"
# Lucene field names of NetMon's session metadata, lower case -> the session's value.
QUERY_FIELDS = {"srcip": "src_ip", "destip": "dst_ip", "application": "application",
                "captured": "captured",
                "host": "domain"}      # assumed: the name of the domain/host name field
# Fields an unfielded term is matched against (an alarm's domain or host name is a term).
UNFIELDED_QUERY_FIELDS = ("host", "srcip", "destip", "application")
# Assumed (not public): the session search, the project's contract.
SEARCH_ROUTE = "/api/sessions/search"  # POST, JSON body
REQUEST_QUERY, REQUEST_FROM, REQUEST_TO = "query", "from", "to"       # Lucene, RFC 3339 UTC
REQUEST_OFFSET, REQUEST_LIMIT = "offset", "limit"
ANSWER_TOTAL, ANSWER_SESSIONS = "total", "sessions"
SESSION_FIELDS = {                     # our session attribute -> its name in the answer
    "id": "id", "captured": "captured", "start": "start", "end": "end",
    "src_ip": "srcIp", "src_port": "srcPort", "dst_ip": "dstIp", "dst_port": "dstPort",
    "protocol": "protocol", "application": "application", "bytes": "bytes",
    "packets": "packets",
}
ERROR_FIELD = "error"                  # 400/401/403/404 answer {"error": "..."}
DEFAULT_LIMIT = 100
# ----------------------------------------------------------------------------------------

FAULTS = (
    "503",             # 503 + Retry-After (Fault.retry_after) on every route: a busy appliance
    "reset",           # pcap: TCP reset after Fault.after_bytes (at most half the body)
    "401",             # every route: 401, whatever the key
    "html",            # search or pcap: an HTML page with status 200 instead of JSON / capture
    "truncated",       # pcap: the archive holds the capture cut in the middle of its last record
    "slow",            # every route: Fault.latency_ms added before answering
    "not-7z-garbage",  # pcap: random bytes with status 200
)
DEFAULT_DOMAINS = ("www.example.com", "updates.example.net", "intranet.example.org")

HTML_ERROR_PAGE = b"""<!DOCTYPE html>
<html><head><title>LogRhythm NetMon - Sign In</title></head>
<body><h1>Your session has expired</h1><p>Please sign in again.</p></body></html>
"""
_NS = 1_000_000_000


@dataclass(frozen=True)
class SessionSpec:
    """One session of the catalogue, as a test chooses it."""

    id: str
    domain: str
    start: dt.datetime                 # timezone-aware
    captured: bool = True              # False: listed by the search, no packets to download
    payload_packets: int = 8           # response segments; the capture holds ~1.5x + 19
    linktype: int = LINKTYPE_ETHERNET  # or capfile.LINKTYPE_RAW
    flavour: str = PCAP                # capfile.PCAP, PCAP_NS or PCAPNG
    archived: bool = True              # False: the pcap route answers the bare capture
    member_name: str | None = None     # the capture's name inside the 7z; default "<id>.pcap"
    client_ip: str = "10.1.0.10"
    server_ip: str = "203.0.113.10"
    client_port: int = 49152
    application: str = "HTTP"
    seed: int | None = None            # default: derived from the id


def default_sessions(count: int = 12, *, now: dt.datetime | None = None,
                     domains: Iterable[str] = DEFAULT_DOMAINS, seed: int = 0,
                     payload_packets: int = 8) -> list[SessionSpec]:
    """`count` sessions spread over the hour before `now`, taking turns among `domains`;
    every sixth one is not captured (12 sessions: 2)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    domains = tuple(domains)
    rng = random.Random(seed)
    step = dt.timedelta(hours=1) / count
    specs = []
    for index in range(count):
        domain_index = index % len(domains)
        specs.append(SessionSpec(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            domain=domains[domain_index],
            start=now - dt.timedelta(hours=1) + step * index
            + dt.timedelta(milliseconds=rng.randrange(int(step.total_seconds() * 500) + 1)),
            captured=index % 6 != 5,
            payload_packets=payload_packets,
            client_ip=f"10.1.0.{10 + index % 50}",
            server_ip=f"203.0.113.{10 + domain_index}",
            client_port=49152 + (index * 3) % 16000,
            seed=rng.getrandbits(32),
        ))
    return specs


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
                      r"(Z|z|[+-]\d\d:\d\d)")


def parse_rfc3339(text: str) -> int:
    """An RFC 3339 date-time (offset required) as ns since the epoch; ValueError if not one."""
    found = _RFC3339.fullmatch(text)
    if not found:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
    fraction, offset = found.group(7) or "", found.group(8)
    seconds = calendar.timegm(dt.datetime(year, month, day, hour, minute, second).timetuple())
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds * _NS + int(fraction.ljust(9, "0"))


def format_rfc3339(ns: int) -> str:
    """ns since the epoch as RFC 3339 UTC with microseconds, as the answers carry it."""
    return ns_to_rfc3339(ns, digits=6)


class CatalogueSession:
    """A session of the catalogue: its spec, its traffic and what the search says of it."""

    def __init__(self, index: int, spec: SessionSpec):
        if spec.start.tzinfo is None:
            raise ValueError(f"session {spec.id}: start must be timezone-aware")
        self.index = index
        self.spec = spec
        start_ns = calendar.timegm(spec.start.utctimetuple()) * _NS + spec.start.microsecond * 1000
        self.conversation = Conversation(
            domain=spec.domain, start_ns=start_ns, client_ip=spec.client_ip,
            server_ip=spec.server_ip, client_port=spec.client_port,
            payload_packets=spec.payload_packets,
            seed=zlib.crc32(spec.id.encode()) if spec.seed is None else spec.seed)
        self.summary = self.conversation.summary(spec.linktype)
        self.lock = threading.Lock()   # one thread makes the capture; the others wait for it
        self.metadata = self._metadata()
        self.query_document = {
            name: str(self.metadata[attribute]).lower()
            if isinstance(self.metadata[attribute], bool) else str(self.metadata[attribute])
            for name, attribute in QUERY_FIELDS.items()}

    @property
    def start_ns(self) -> int:
        return self.summary.first_ns

    @property
    def end_ns(self) -> int:
        return self.summary.last_ns

    @property
    def capture_suffix(self) -> str:
        return ".pcapng" if self.spec.flavour == PCAPNG else ".pcap"

    def _metadata(self) -> dict:
        """Everything known of the session, by our attribute names (SESSION_FIELDS keys,
        and the domain)."""
        conversation = self.conversation
        return {
            "id": self.spec.id, "captured": self.spec.captured,
            "start": format_rfc3339(self.start_ns), "end": format_rfc3339(self.end_ns),
            "src_ip": conversation.client_ip, "src_port": conversation.client_port,
            "dst_ip": conversation.server_ip, "dst_port": conversation.http_port,
            "protocol": "TCP", "application": self.spec.application,
            "bytes": self.summary.wire_bytes, "packets": self.summary.packets,
            "domain": self.spec.domain,
        }

    def answer(self) -> dict:
        """The session as the search answers it (the domain stays internal)."""
        return {wire: self.metadata[attribute] for attribute, wire in SESSION_FIELDS.items()}

    def overlaps(self, window_from: int | None, window_to: int | None) -> bool:
        return ((window_from is None or self.end_ns >= window_from)
                and (window_to is None or self.start_ns <= window_to))


class CaptureStore:
    """Each session's capture, and the 7z holding it, made on first use in a directory.

    Files are named by catalogue index, never by session id (ids come from tests and may be
    hostile), and appear under their final name only once complete.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self._cut_lengths: dict[int, int] = {}   # catalogue index -> mid-last-record length

    def capture(self, session: CatalogueSession) -> Path:
        """The session's complete capture file."""
        with session.lock:
            return self._capture(session)

    def body(self, session: CatalogueSession, truncated: bool = False) -> Path:
        """What the pcap route sends: the 7z (or, for a session not archived, the bare
        capture), holding the capture cut mid-record when `truncated`."""
        with session.lock:
            capture = self._cut_capture(session) if truncated else self._capture(session)
            if not session.spec.archived:
                return capture
            archive = capture.with_suffix(capture.suffix + ".7z")
            if not archive.exists():
                self._archive(session, capture, archive)
            return archive

    def _capture(self, session: CatalogueSession) -> Path:
        path = self.directory / f"{session.index:06d}{session.capture_suffix}"
        if not path.exists():
            partial = path.with_name(path.name + ".part")
            written = session.conversation.write(partial, linktype=session.spec.linktype,
                                                 flavour=session.spec.flavour)
            self._cut_lengths[session.index] = written.mid_last_record
            os.replace(partial, path)
        return path

    def _cut_capture(self, session: CatalogueSession) -> Path:
        whole = self._capture(session)
        path = whole.with_name(f"{session.index:06d}-truncated{session.capture_suffix}")
        if not path.exists():
            partial = path.with_name(path.name + ".part")
            with open(whole, "rb") as source, open(partial, "wb") as target:
                target.write(source.read(self._cut_lengths[session.index]))
            os.replace(partial, path)
        return path

    def _archive(self, session: CatalogueSession, capture: Path, archive: Path) -> None:
        import py7zr

        partial = archive.with_name(archive.name + ".part")
        member = session.spec.member_name or f"{session.spec.id}{session.capture_suffix}"
        # LZMA2 at its fastest preset: a real 7z, made quickly for big sessions.
        with py7zr.SevenZipFile(partial, "w", filters=[{"id": py7zr.FILTER_LZMA2,
                                                         "preset": 1}]) as seven_zip:
            seven_zip.write(capture, arcname=member)
        os.replace(partial, archive)


class NetMonHandler(SimulatorHandler):
    def send_problem(self, status, message, headers=None):
        self.send_json(status, {ERROR_FIELD: message}, headers)

    def respond(self) -> None:
        netmon: NetMonSimulator = self.simulator
        route = self.route
        pcap = PCAP_ROUTE.fullmatch(route)
        session_id = unquote(pcap["id"]) if pcap else None
        slow = netmon.faults.fire("slow", session_id)
        if slow:
            time.sleep(slow.latency_ms / 1000)
        busy = netmon.faults.fire("503", session_id)
        if busy:
            raise RequestError(503, "the appliance is busy, try again later",
                               {"Retry-After": str(busy.retry_after)})
        if netmon.faults.fire("401", session_id):
            raise RequestError(401, "invalid API token")
        self._authenticate()
        if route == SEARCH_ROUTE:
            self._require_method("POST")
            self._search()
        elif pcap:
            self._require_method("GET")
            self._download(session_id)
        else:
            raise RequestError(404, "no such API route")

    def _require_method(self, method: str) -> None:
        if self.command != method:
            raise RequestError(405, f"use {method}", {"Allow": method})

    def _authenticate(self) -> None:
        authorization = self.headers.get(AUTH_HEADER)
        if authorization is not None:
            scheme, _, key = authorization.strip().partition(" ")
            if scheme.lower() != BEARER_SCHEME:
                raise RequestError(401, "unsupported authorization scheme")
        elif self.headers.get(LEGACY_TOKEN_HEADER) is not None:
            key = self.headers[LEGACY_TOKEN_HEADER]
        else:
            raise RequestError(401, "missing API token")
        if not hmac.compare_digest(key.strip().encode(), self.simulator.api_key.encode()):
            raise RequestError(401, "invalid API token")   # never echo what was sent

    def _search(self) -> None:
        netmon: NetMonSimulator = self.simulator
        if netmon.faults.fire("html"):
            self.send_bytes(200, HTML_ERROR_PAGE, "text/html; charset=utf-8")
            return
        request = self.request_json()
        if not isinstance(request, dict):
            raise RequestError(400, "the request body must be a JSON object")
        text = request.get(REQUEST_QUERY)
        if not isinstance(text, str) or not text.strip():
            raise RequestError(400, f"'{REQUEST_QUERY}' must be a non-empty string")
        window_from = _time_field(request, REQUEST_FROM)
        window_to = _time_field(request, REQUEST_TO)
        if window_from is not None and window_to is not None and window_from > window_to:
            raise RequestError(400, f"'{REQUEST_FROM}' is after '{REQUEST_TO}'")
        offset = _count_field(request, REQUEST_OFFSET, 0, minimum=0)
        limit = min(_count_field(request, REQUEST_LIMIT, DEFAULT_LIMIT, minimum=1),
                    netmon.max_page_size)
        try:
            query = lucene.parse(text)
        except lucene.QuerySyntaxError as exc:
            raise RequestError(400, f"cannot parse query: {exc}") from None
        found = [session for session in netmon.sessions
                 if session.overlaps(window_from, window_to)
                 and query.matches(session.query_document, UNFIELDED_QUERY_FIELDS)]
        self.send_json(200, {ANSWER_TOTAL: len(found),
                             ANSWER_SESSIONS: [session.answer()
                                               for session in found[offset:offset + limit]]})

    def _download(self, session_id: str) -> None:
        netmon: NetMonSimulator = self.simulator
        session = netmon.session(session_id)
        if session is None:
            raise RequestError(404, "unknown session")
        if not session.spec.captured:
            netmon.uncaptured_requests.append(session_id)
            raise RequestError(404, "the session has no captured packets")
        if netmon.faults.fire("html", session_id):
            self.send_bytes(200, HTML_ERROR_PAGE, "text/html; charset=utf-8")
            return
        if netmon.faults.fire("not-7z-garbage", session_id):
            # A leading zero byte: no capture or archive magic starts with one.
            garbage = b"\x00" + random.Random(session_id).randbytes(4095)
            self.send_bytes(200, garbage, ARCHIVE_CONTENT_TYPE)
            return
        truncated = netmon.faults.fire("truncated", session_id) is not None
        body = netmon.store.body(session, truncated)
        reset = netmon.faults.fire("reset", session_id)
        cut_after = None if reset is None else min(reset.after_bytes, body.stat().st_size // 2)
        filename = re.sub(r"[^0-9A-Za-z._-]", "_", session_id) + body.suffix
        # The Content-Type is the archive's even when the body is a bare capture, as
        # appliances mislabel it: clients must sniff the bytes.
        self.send_file(body, ARCHIVE_CONTENT_TYPE,
                       {"Content-Disposition": f'attachment; filename="{filename}"'},
                       cut_after=cut_after)


def _time_field(request: dict, name: str) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(400, f"'{name}' must be an RFC 3339 date-time string")
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise RequestError(400, f"'{name}': {exc}") from None


def _count_field(request: dict, name: str, default: int, minimum: int) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RequestError(400, f"'{name}' must be an integer of at least {minimum}")
    return value


class NetMonSimulator(VendorSimulator):
    """A NetMon appliance on loopback HTTPS; a context manager.

    sessions: the catalogue (SessionSpecs); default: default_sessions().
    api_key: the one valid key; default: a random one (see `.api_key`).
    faults: Fault objects or bare fault names (FAULTS) in force from the start.
    max_page_size: the most sessions one search answer holds, whatever `limit` asks.
    host, port, cert_dir, latency: see HTTPSServer.

    Attributes for tests: url, ca_bundle, api_key, requests (every request, secrets
    masked), sessions (CatalogueSession, in time order), faults (FaultSwitch),
    uncaptured_requests (ids of non-captured sessions whose pcap was asked for).
    """

    handler_class = NetMonHandler
    fault_names = FAULTS
    work_prefix = "srp-netmon-sim-"

    def __init__(self, sessions: Iterable[SessionSpec] | None = None, *,
                 api_key: str | None = None, faults: Iterable[Fault | str] = (),
                 max_page_size: int = DEFAULT_LIMIT, host: str = "127.0.0.1", port: int = 0,
                 cert_dir: str | Path | None = None, latency: float = 0.0):
        super().__init__(faults=faults, host=host, port=port, cert_dir=cert_dir,
                         latency=latency)
        specs = list(default_sessions() if sessions is None else sessions)
        if len({spec.id for spec in specs}) != len(specs):
            raise ValueError("session ids must be unique")
        catalogue = [CatalogueSession(index, spec) for index, spec in enumerate(specs)]
        self.sessions = sorted(catalogue, key=lambda session: (session.start_ns, session.index))
        self._by_id = {session.spec.id: session for session in self.sessions}
        self.api_key = api_key if api_key is not None else secrets.token_urlsafe(24)
        self.max_page_size = max_page_size
        self.uncaptured_requests: list[str] = []
        self.store: CaptureStore | None = None

    def reset(self) -> None:
        super().reset()
        self.uncaptured_requests.clear()

    def add(self, spec: SessionSpec) -> None:
        """Index one more session while serving, as an appliance does late."""
        if spec.id in self._by_id:
            raise ValueError("session ids must be unique")
        session = CatalogueSession(len(self._by_id), spec)
        self._by_id[spec.id] = session
        self.sessions = sorted([*self.sessions, session],
                               key=lambda entry: (entry.start_ns, entry.index))

    def session(self, session_id: str) -> CatalogueSession | None:
        return self._by_id.get(session_id)

    def capture_path(self, session_id: str) -> Path:
        """The session's whole capture file, as the archive holds it (made if needed)."""
        return self.store.capture(self._by_id[session_id])

    def prepare(self) -> None:
        """Make every captured session's download now, so later timings measure the client."""
        for session in self.sessions:
            if session.spec.captured:
                self.store.body(session)

    def start(self) -> NetMonSimulator:
        if self.store is None:
            self.store = CaptureStore(self.make_work_dir())
        return super().start()

    def stop(self) -> None:
        super().stop()
        self.store = None
