"""A Cisco IPS sensor look-alike over HTTPS: SDEE events and the IP log server.

- SDEE at /cgi-bin/sdee-server (with `legacy`, a 4.x sensor: /cgi-bin/event-server, and
  sdee-server answers 404), HTTP Basic auth and a session cookie, in query mode
  (`?events=..&startTime=..&maxNbrOfEvents=..`) and subscription mode
  (`?action=open|get|close`); with `subscription_only`, query mode answers an SDEE error
  document. Alerts are sd:evIdsAlert with their IP log ids; every IP log has status events
  sd:evStatus (added and started with the alert, completed once it is complete).
- /cgi-bin/iplog-server (`POST ?ipLogId=N`) serves the IP log: a libpcap capture holding the
  alert's attacker/target connection and unrelated traffic (a DNS lookup, another
  connection of the pair, another pair's session), complete `complete_after` seconds after
  it is first asked for. Before that it answers an XML error document with status 200.
- A verbose alert (the produce-verbose-alert event action) also carries its trigger packet,
  base64 in cid:triggerPacket, and the bytes the attacker sent in cid:context/cid:fromAttacker.

Faults (FAULTS) can be switched on while it runs; `hostile-entity` answers SDEE with a
document declaring external entities, one of them pointing at a plain-HTTP canary on
loopback that records whether anything ever fetched it (`canary_hits`).

    with CiscoSimulator(complete_after=2) as sensor:
        requests.get(sensor.url + SDEE_ROUTE, params={"events": "evIdsAlert"},
                     auth=(sensor.username, sensor.password), verify=sensor.ca_bundle)
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import heapq
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

from srp.simulators.capfile import LINKTYPE_ETHERNET, PCAP, write_capture
from srp.simulators.faults import Fault
from srp.simulators.https import RequestError, SimulatorHandler, VendorSimulator
from srp.simulators.traffic import Conversation

# ----------------------------------------------------------------------------------------
# The Cisco wire contract as this sensor serves it (docs/vendor-contracts.md#cisco-ips),
# written independently of srp.vendors.cisco so that the simulator tests the client.
SDEE_ROUTE = "/cgi-bin/sdee-server"
LEGACY_SDEE_ROUTE = "/cgi-bin/event-server"
IPLOG_ROUTE = "/cgi-bin/iplog-server"
SOAP_NAMESPACE = "http://www.w3.org/2003/05/soap-envelope"
SDEE_NAMESPACE = "http://example.org/2003/08/sdee"
CIDEE_NAMESPACES = {"2006": "http://www.cisco.com/cids/2006/08/cidee",
                    "2004": "http://www.cisco.com/cids/2004/04/cidee"}
ALERT_EVENT, STATUS_EVENT = "evIdsAlert", "evStatus"
COOKIE_NAME = "cidssid"
XML_CONTENT_TYPE = "text/xml; charset=utf-8"
IPLOG_CONTENT_TYPE = "application/octet-stream"
# SDEE error names: the sensor serves events through subscriptions only; an unknown IP log
# or subscription; an IP log still being written; too many subscriptions; a sensor in
# trouble (the xml-error fault).
ERR_NOT_SUPPORTED, ERR_NOT_FOUND, ERR_NOT_AVAILABLE = ("errNotSupported", "errNotFound",
                                                      "errNotAvailable")
ERR_LIMIT, ERR_INVALID, ERR_SYSTEM = "errLimitExceeded", "errInvalidQuery", "errSystemError"
DEFAULT_MAX_EVENTS = 20          # per answer, whatever maxNbrOfEvents asks
DEFAULT_SUBSCRIPTIONS = 5
# A verbose alert's dump of its trigger packet (cid:triggerPacket): the whole frame, the frame
# from its IP header (as some sensors dump it), the frame cut short, or text that is no base64.
TRIGGER_DUMPS = ("ethernet", "raw-ip", "truncated", "not-base64")
TRIGGER_CUT = 64                 # bytes a truncated dump keeps
NOT_BASE64 = "%%not base64%%"
# ----------------------------------------------------------------------------------------

FAULTS = (
    "never-completes",   # iplog-server: "not available" for ever
    "unknown-id",        # iplog-server: errNotFound, as for a log the sensor does not know
    "401",               # every route: 401, whatever the credentials
    "xml-error",         # SDEE: an XML error document with status 200
    "hostile-entity",    # SDEE: a document declaring external entities (file, canary URL)
)
IPLOG_LENGTH_NS = 30 * 1_000_000_000   # a complete log's status comes this long after it began
_NS = 1_000_000_000
_ETHERNET_HEADER_LEN = 14
_STATUS_EVENT_IDS = 7_000_000_000_000
_STATUS_KINDS = ("ipLogAdded", "ipLogStarted", "ipLogCompleted")
_HTML_PAGE = ("<!DOCTYPE html><html><head><title>{status} {title}</title></head>"
              "<body><h1>{title}</h1></body></html>")


@dataclass(frozen=True)
class AlertSpec:
    """One alert of the sensor's event store, as a test chooses it."""

    event_id: int
    time: dt.datetime                  # timezone-aware
    ip_log_ids: tuple[int, ...] = ()   # the IP logs its event action started
    signature_id: int = 5081
    signature_description: str = "WWW WinNT cmd.exe Access"
    severity: str = "high"
    attacker: str = "198.51.100.23"
    attacker_port: int = 49822
    target: str = "10.1.0.20"
    target_port: int = 80
    verbose: bool = False              # produce-verbose-alert: it carries cid:triggerPacket
    trigger_dump: str = "ethernet"     # how that dump is made: one of TRIGGER_DUMPS
    context: bool = True               # verbose alerts only: also cid:context/cid:fromAttacker

    def __post_init__(self):
        if self.trigger_dump not in TRIGGER_DUMPS:
            raise ValueError(f"trigger_dump is one of {', '.join(TRIGGER_DUMPS)}")

    @property
    def time_ns(self) -> int:
        return calendar.timegm(self.time.utctimetuple()) * _NS + self.time.microsecond * 1000


def default_alerts(now: dt.datetime | None = None) -> list[AlertSpec]:
    """Five alerts over the last hour: one with an IP log, one with two (attacker's and
    victim's), one over IPv6, one whose signature logs no packets, and last a verbose one
    with no IP log (its trigger packet and the attacker's bytes in the alert itself)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return [
        AlertSpec(6821859430001, now - dt.timedelta(minutes=50), (1734556221,)),
        AlertSpec(6821859430002, now - dt.timedelta(minutes=35), (1734556222, 1734556223),
                  signature_id=3030, signature_description="TCP SYN Host Sweep",
                  attacker="203.0.113.66", attacker_port=40001, target="10.1.0.30",
                  target_port=8080, severity="medium"),
        AlertSpec(6821859430003, now - dt.timedelta(minutes=20), (1734556224,),
                  signature_id=5474, signature_description="SQL Query in HTTP Request",
                  attacker="2001:db8:66::7", attacker_port=50100, target="2001:db8:1::20",
                  target_port=80),
        AlertSpec(6821859430004, now - dt.timedelta(minutes=5), (),
                  signature_id=2000, signature_description="ICMP Echo Reply",
                  severity="informational"),
        AlertSpec(6821859430005, now - dt.timedelta(minutes=2), (),
                  signature_id=3215, signature_description="IIS Dot Dot Execute Attack",
                  attacker="198.51.100.41", attacker_port=51234, target="10.1.0.21",
                  verbose=True),
    ]


def pair_conversation(alert: AlertSpec, seed: int) -> Conversation:
    """The alert's pair as its IP log holds it: a DNS lookup of the attacker's, the alert's
    connection (the alert's ports) and a second connection between the same hosts."""
    return Conversation(domain="target.example", start_ns=alert.time_ns - 2 * _NS,
                        client_ip=alert.attacker, server_ip=alert.target,
                        client_port=alert.attacker_port, http_port=alert.target_port,
                        payload_packets=4, seed=seed)


class IpLog:
    """One IP log: its traffic, and when it was first asked for (it completes from then)."""

    def __init__(self, log_id: int, alert: AlertSpec, index: int):
        self.log_id = log_id
        self.alert = alert
        self.index = index
        self.pair = pair_conversation(alert, seed=log_id)
        self.unrelated = Conversation(domain="unrelated.example",
                                      start_ns=self.pair.start_ns + _NS // 2,
                                      client_ip="10.1.0.77", server_ip="203.0.113.99",
                                      client_port=50500, payload_packets=2, seed=log_id + 1)
        self.first_asked: float | None = None   # wall-clock seconds

    def completed_ns(self, complete_after: float, now: float) -> int | None:
        """When the log completed (ns since the epoch), or None while it is being written."""
        if complete_after <= 0:
            return self.alert.time_ns + IPLOG_LENGTH_NS
        if self.first_asked is None or now < self.first_asked + complete_after:
            return None
        return int((self.first_asked + complete_after) * _NS)

    def frames(self):
        """The log's frames in time order."""
        return heapq.merge(self.pair.frames(LINKTYPE_ETHERNET),
                           self.unrelated.frames(LINKTYPE_ETHERNET), key=lambda frame: frame[0])


@dataclass(frozen=True)
class _Event:
    time_ns: int
    event_id: int
    kind: str          # ALERT_EVENT or STATUS_EVENT
    xml: str


@dataclass
class Subscription:
    kinds: frozenset[str]
    start_ns: int
    delivered: set[int]


class _Canary:
    """A plain-HTTP server on loopback that only records the paths asked of it: a parser that
    resolves external entities would fetch one."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "18")
                self.end_headers()
                self.wfile.write(b"canary was fetched")

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/{secrets.token_hex(8)}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class CiscoHandler(SimulatorHandler):
    server_version = "mainApp"

    def send_problem(self, status, message, headers=None):
        """HTTP-level errors come as a small HTML page, as the sensor's web server sends."""
        page = _HTML_PAGE.format(status=status, title=escape(message))
        self.send_bytes(status, page.encode(), "text/html; charset=utf-8", headers)

    def respond(self) -> None:
        sensor: CiscoSimulator = self.simulator
        route = self.route
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        self.query = {name: values[-1] for name, values in query.items()}
        log_id = self.query.get("ipLogId") if route == IPLOG_ROUTE else None
        if sensor.faults.fire("401", log_id):
            raise RequestError(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="IPS"'})
        self._authenticate()
        if route == sensor.sdee_route:
            self._require_method("GET")
            self._sdee()
        elif route == IPLOG_ROUTE:
            self._require_method("POST")
            self._iplog(log_id)
        else:
            raise RequestError(404, "Not Found")

    def _require_method(self, method: str) -> None:
        if self.command != method:
            raise RequestError(405, "Method Not Allowed", {"Allow": method})

    def _authenticate(self) -> None:
        sensor: CiscoSimulator = self.simulator
        scheme, _, encoded = (self.headers.get("Authorization") or "").strip().partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        good = (hmac.compare_digest(user.encode(), sensor.username.encode())
                & hmac.compare_digest(password.encode(), sensor.password.encode()))
        if scheme.lower() != "basic" or not good:
            raise RequestError(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="IPS"'})

    def _send_xml(self, document: str) -> None:
        sensor: CiscoSimulator = self.simulator
        headers = {}
        if COOKIE_NAME not in (self.headers.get("Cookie") or ""):
            headers["Set-Cookie"] = f"{COOKIE_NAME}={sensor.session_cookie}; Path=/; Secure"
        self.send_bytes(200, document.encode(), XML_CONTENT_TYPE, headers)

    # --- SDEE ---

    def _sdee(self) -> None:
        sensor: CiscoSimulator = self.simulator
        if sensor.faults.fire("hostile-entity"):
            self._send_xml(sensor.hostile_document())
            return
        if sensor.faults.fire("xml-error"):
            self._send_xml(sensor.fault_document(ERR_SYSTEM, "sensorApp is not responding; "
                                                             "the event store is unavailable"))
            return
        action = self.query.get("action")
        kinds = frozenset((self.query.get("events") or f"{ALERT_EVENT} {STATUS_EVENT}").split())
        try:
            if action is None:
                self._query(kinds)
            elif action == "open":
                self._open(kinds)
            elif action == "get":
                self._get()
            elif action == "close":
                self._close()
            else:
                raise _SdeeError(ERR_INVALID, f"unknown action {action[:40]!r}")
        except _SdeeError as error:
            self._send_xml(sensor.fault_document(error.name, error.words))

    def _query(self, kinds: frozenset[str]) -> None:
        sensor: CiscoSimulator = self.simulator
        if sensor.subscription_only:
            raise _SdeeError(ERR_NOT_SUPPORTED, "query mode is not supported on this sensor; "
                                                "open a subscription")
        events = sensor.events(kinds, self._number("startTime", 0))
        self._send_xml(sensor.events_document(event.xml for event in
                                              events[:self._page_size()]))

    def _open(self, kinds: frozenset[str]) -> None:
        sensor: CiscoSimulator = self.simulator
        with sensor.lock:
            if (len(sensor.subscriptions) >= sensor.max_subscriptions
                    and self.query.get("force") != "yes"):
                raise _SdeeError(ERR_LIMIT, "the maximum number of subscriptions is open")
            sensor.subscription_count += 1
            subscription_id = f"sub-{sensor.subscription_count}"
            start = self._number("startTime", time.time_ns())
            sensor.subscriptions[subscription_id] = Subscription(kinds, start, set())
        self._send_xml(sensor.envelope(
            f"<sd:subscriptionId>{subscription_id}</sd:subscriptionId>",
            header=f"<sd:oobInfo><sd:hostId>{sensor.host_id}</sd:hostId>"
                   f"<sd:sessionId>{sensor.session_cookie[:12]}</sd:sessionId></sd:oobInfo>"))

    def _get(self) -> None:
        sensor: CiscoSimulator = self.simulator
        with sensor.lock:
            subscription = sensor.subscriptions.get(self.query.get("subscriptionId", ""))
        if subscription is None:
            raise _SdeeError(ERR_NOT_FOUND, "invalid subscriptionId")
        events = [event for event in sensor.events(subscription.kinds, subscription.start_ns)
                  if event.event_id not in subscription.delivered][:self._page_size()]
        subscription.delivered.update(event.event_id for event in events)
        self._send_xml(sensor.events_document(event.xml for event in events))

    def _close(self) -> None:
        sensor: CiscoSimulator = self.simulator
        with sensor.lock:
            closed = sensor.subscriptions.pop(self.query.get("subscriptionId", ""), None)
        if closed is None:
            raise _SdeeError(ERR_NOT_FOUND, "invalid subscriptionId")
        sensor.closed_subscriptions += 1
        self._send_xml(sensor.envelope(""))

    def _number(self, name: str, default: int) -> int:
        text = self.query.get(name)
        if text is None:
            return default
        if not text.isdigit() or len(text) > 20:
            raise _SdeeError(ERR_INVALID, f"{name} must be a whole number")
        return int(text)

    def _page_size(self) -> int:
        sensor: CiscoSimulator = self.simulator
        return max(1, min(self._number("maxNbrOfEvents", sensor.max_events), sensor.max_events))

    # --- the IP log server ---

    def _iplog(self, text: str | None) -> None:
        sensor: CiscoSimulator = self.simulator
        log = sensor.ip_logs.get(int(text)) if text and text.isdigit() and len(text) < 20 \
            else None
        if log is None or sensor.faults.fire("unknown-id", text):
            self._send_xml(sensor.error_message(ERR_NOT_FOUND,
                                                f"IP log {(text or '')[:20]} does not exist"))
            return
        with sensor.lock:
            if log.first_asked is None:
                log.first_asked = time.time()
        if (sensor.faults.fire("never-completes", text)
                or log.completed_ns(sensor.complete_after, time.time()) is None):
            self._send_xml(sensor.error_message(
                ERR_NOT_AVAILABLE, f"IP log {log.log_id} is not available: it is still being "
                                   f"written"))
            return
        self.send_file(sensor.capture_path(log), IPLOG_CONTENT_TYPE)


def _connection(alert: AlertSpec) -> tuple[str, int, str, int]:
    return alert.attacker, alert.attacker_port, alert.target, alert.target_port


def _base64_lines(data: bytes) -> str:
    """Base64 in lines of 76 characters, as many XML producers write xs:base64Binary."""
    return base64.encodebytes(data).decode()


class _SdeeError(Exception):
    def __init__(self, name: str, words: str):
        super().__init__(words)
        self.name = name
        self.words = words


class CiscoSimulator(VendorSimulator):
    """A Cisco IPS sensor on loopback HTTPS; a context manager.

    alerts: the event store (AlertSpecs); default: default_alerts().
    username, password: the one account accepted (default password: a random one).
    faults: Fault objects or bare fault names (FAULTS) in force from the start; the IP log
      faults may be limited to log ids (Fault.sessions, as strings).
    complete_after: seconds an IP log takes to complete once first asked for (0: every log
      is complete from the start).
    legacy: a 4.x sensor (SDEE at /cgi-bin/event-server only).
    subscription_only: query mode answers an SDEE error document (errNotSupported).
    cidee_namespace: "2006" or "2004", the cid namespace the documents use.
    max_events: the most events one SDEE answer holds, whatever maxNbrOfEvents asks.
    host, port, cert_dir, latency: see HTTPSServer.

    Attributes for tests: url, ca_bundle, username, password, requests (every request,
    credentials masked), faults, ip_logs (id -> IpLog), subscriptions (the open ones),
    closed_subscriptions, canary_url and canary_hits (hostile-entity), capture_path(), and
    an alert's trigger packet: trigger_frame(), trigger_dump(), trigger_context().
    """

    handler_class = CiscoHandler
    fault_names = FAULTS
    work_prefix = "srp-cisco-sim-"

    def __init__(self, alerts: Iterable[AlertSpec] | None = None, *,
                 username: str = "sdee-viewer", password: str | None = None,
                 faults: Iterable[Fault | str] = (), complete_after: float = 0.0,
                 legacy: bool = False, subscription_only: bool = False,
                 cidee_namespace: str = "2006", max_events: int = DEFAULT_MAX_EVENTS,
                 max_subscriptions: int = DEFAULT_SUBSCRIPTIONS, host: str = "127.0.0.1",
                 port: int = 0, cert_dir: str | Path | None = None, latency: float = 0.0):
        super().__init__(faults=faults, host=host, port=port, cert_dir=cert_dir,
                         latency=latency)
        if cidee_namespace not in CIDEE_NAMESPACES:
            raise ValueError(f"cidee_namespace is one of {', '.join(CIDEE_NAMESPACES)}")
        self.alerts = list(default_alerts() if alerts is None else alerts)
        if len({alert.event_id for alert in self.alerts}) != len(self.alerts):
            raise ValueError("alert event ids must be unique")
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(18)
        self.complete_after = complete_after
        self.legacy = legacy
        self.subscription_only = subscription_only
        self.cid = CIDEE_NAMESPACES[cidee_namespace]
        self.max_events = max_events
        self.max_subscriptions = max_subscriptions
        self.host_id = "sensor-sim"
        self.session_cookie = secrets.token_hex(16)
        self.lock = threading.Lock()
        self.subscriptions: dict[str, Subscription] = {}
        self.subscription_count = self.closed_subscriptions = 0
        self.ip_logs: dict[int, IpLog] = {}
        for alert in self.alerts:
            for log_id in alert.ip_log_ids:   # a log shared by alerts is the first one's
                self.ip_logs.setdefault(log_id, IpLog(log_id, alert, len(self.ip_logs)))
        self._triggers: dict[int, tuple[bytes, bytes]] = {}   # event id -> (frame, payload)
        self._static_events = self._make_static_events()
        self._canary: _Canary | None = None

    @property
    def sdee_route(self) -> str:
        return LEGACY_SDEE_ROUTE if self.legacy else SDEE_ROUTE

    @property
    def canary_url(self) -> str:
        return self._canary.url

    @property
    def canary_hits(self) -> list[str]:
        return list(self._canary.hits)

    # --- events ---

    def _make_static_events(self) -> list[_Event]:
        events = [_Event(alert.time_ns, alert.event_id, ALERT_EVENT, self._alert_xml(alert))
                  for alert in self.alerts]
        for log in self.ip_logs.values():
            for offset, kind in enumerate(_STATUS_KINDS[:2]):
                events.append(self._status_event(log, kind, log.alert.time_ns - 1000 + offset))
        return events

    def _status_event(self, log: IpLog, kind: str, time_ns: int) -> _Event:
        event_id = _STATUS_EVENT_IDS + log.index * len(_STATUS_KINDS) + _STATUS_KINDS.index(kind)
        xml = (f'<sd:evStatus eventId="{event_id}" vendor="Cisco">{self._originator()}'
               f'<sd:time offset="0" timeZone="UTC">{time_ns}</sd:time>'
               f"<cid:{kind}><cid:ipLogId>{log.log_id}</cid:ipLogId></cid:{kind}>"
               f"</sd:evStatus>")
        return _Event(time_ns, event_id, STATUS_EVENT, xml)

    def events(self, kinds: frozenset[str], start_ns: int) -> list[_Event]:
        """The stored events of these kinds from `start_ns` on, in time order; a log's
        completed status is there once it has completed."""
        now = time.time()
        events = list(self._static_events)
        for log in self.ip_logs.values():
            completed = log.completed_ns(self.complete_after, now)
            if completed is not None:
                events.append(self._status_event(log, "ipLogCompleted", completed))
        return sorted((event for event in events
                       if event.kind in kinds and event.time_ns >= start_ns),
                      key=lambda event: (event.time_ns, event.event_id))

    def _originator(self) -> str:
        return (f"<sd:originator><sd:hostId>{self.host_id}</sd:hostId>"
                f"<cid:appName>sensorApp</cid:appName>"
                f"<cid:appInstanceId>421</cid:appInstanceId></sd:originator>")

    def _alert_xml(self, alert: AlertSpec) -> str:
        logs = "".join(f"<cid:ipLogId>{log_id}</cid:ipLogId>" for log_id in alert.ip_log_ids)
        return (
            f'<sd:evIdsAlert eventId="{alert.event_id}" vendor="Cisco" '
            f"severity={quoteattr(alert.severity)}>{self._originator()}"
            f'<sd:time offset="0" timeZone="UTC">{alert.time_ns}</sd:time>'
            f"<sd:signature description={quoteattr(alert.signature_description)} "
            f'id="{alert.signature_id}" version="S2"><cid:subsigId>0</cid:subsigId>'
            f"</sd:signature>"
            f"<sd:participants>"
            f'<sd:attacker><sd:addr cid:locality="OUT">{escape(alert.attacker)}</sd:addr>'
            f"<sd:port>{alert.attacker_port}</sd:port></sd:attacker>"
            f'<sd:target><sd:addr cid:locality="IN">{escape(alert.target)}</sd:addr>'
            f"<sd:port>{alert.target_port}</sd:port></sd:target>"
            f"</sd:participants>"
            f'<cid:riskRatingValue targetValueRating="medium">75</cid:riskRatingValue>'
            + self._verbose_xml(alert)
            + (f"<cid:ipLogIds>{logs}</cid:ipLogIds>" if logs else "")
            + "</sd:evIdsAlert>")

    # --- verbose alerts ---

    def _verbose_xml(self, alert: AlertSpec) -> str:
        """A verbose alert's cid:context (unless left out) and cid:triggerPacket."""
        if not alert.verbose:
            return ""
        context = self.trigger_context(alert.event_id)
        dump = (NOT_BASE64 if alert.trigger_dump == "not-base64"
                else _base64_lines(self.trigger_dump(alert.event_id)))
        return ((f"<cid:context><cid:fromAttacker>{_base64_lines(context)}</cid:fromAttacker>"
                 "</cid:context>" if context is not None else "")
                + f"<cid:triggerPacket>{dump}</cid:triggerPacket>")

    def _alert(self, event_id: int) -> AlertSpec:
        for alert in self.alerts:
            if alert.event_id == event_id:
                return alert
        raise KeyError(f"no alert {event_id}")

    def _trigger(self, alert: AlertSpec) -> tuple[bytes, bytes]:
        """(frame, TCP payload) of the alert's trigger packet: the first segment with payload
        of its attacker->target connection, the request. It is taken from the alert's first IP
        log holding that connection, so it is byte-identical to that log's packet; with no such
        log it comes from the same traffic built for the alert alone, seeded with its event id."""
        if alert.event_id not in self._triggers:
            connection = _connection(alert)
            logs = (self.ip_logs[log_id] for log_id in alert.ip_log_ids)
            pair = next((log.pair for log in logs if _connection(log.alert) == connection),
                        None) or pair_conversation(alert, seed=alert.event_id)
            for planned, (_, frame) in zip(pair.plan(), pair.frames(LINKTYPE_ETHERNET)):
                if planned.flags and planned.payload_len and (
                        planned.src, planned.sport, planned.dst, planned.dport) == connection:
                    self._triggers[alert.event_id] = frame, planned.payload
                    break
        return self._triggers[alert.event_id]

    def trigger_frame(self, event_id: int) -> bytes:
        """The alert's trigger packet as a whole Ethernet frame (any alert has one; only a
        verbose alert carries it)."""
        return self._trigger(self._alert(event_id))[0]

    def trigger_dump(self, event_id: int) -> bytes:
        """Exactly the bytes the alert's cid:triggerPacket encodes: the frame ("ethernet"), the
        frame from its IP header ("raw-ip"), or its first TRIGGER_CUT bytes ("truncated").
        ValueError for an alert whose element encodes nothing: not verbose, or "not-base64"."""
        alert = self._alert(event_id)
        if not alert.verbose or alert.trigger_dump == "not-base64":
            raise ValueError(f"alert {event_id} carries no dump of its trigger packet")
        frame = self.trigger_frame(event_id)
        if alert.trigger_dump == "raw-ip":
            return frame[_ETHERNET_HEADER_LEN:]
        return frame[:TRIGGER_CUT] if alert.trigger_dump == "truncated" else frame

    def trigger_context(self, event_id: int) -> bytes | None:
        """The bytes of the alert's cid:context/cid:fromAttacker, the trigger packet's TCP
        payload; None for an alert that carries no cid:context."""
        alert = self._alert(event_id)
        return self._trigger(alert)[1] if alert.verbose and alert.context else None

    # --- documents ---

    def envelope(self, body: str, header: str = "") -> str:
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<env:Envelope xmlns:env="{SOAP_NAMESPACE}" xmlns:sd="{SDEE_NAMESPACE}" '
                f'xmlns:cid="{self.cid}">'
                + (f"<env:Header>{header}</env:Header>" if header else "")
                + f"<env:Body>{body}</env:Body></env:Envelope>")

    def events_document(self, events: Iterable[str]) -> str:
        """An SDEE answer holding these events' XML."""
        return self.envelope("<sd:events>" + "".join(events) + "</sd:events>")

    def fault_document(self, name: str, words: str) -> str:
        """An SDEE error: a SOAP Fault whose Detail element names it."""
        return self.envelope(
            "<env:Fault><env:Code><env:Value>env:Sender</env:Value></env:Code>"
            f'<env:Reason><env:Text xml:lang="en">{escape(words)}</env:Text></env:Reason>'
            f"<env:Detail><sd:{name}/></env:Detail></env:Fault>")

    @staticmethod
    def error_message(name: str, words: str) -> str:
        """The IP log server's error: a bare sd:errMessage document."""
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<sd:errMessage xmlns:sd="{SDEE_NAMESPACE}" name="{name}">{escape(words)}'
                "</sd:errMessage>")

    def hostile_document(self) -> str:
        """The stored alerts, with a DOCTYPE declaring external entities used inside them: a
        local file, the canary URL, and a parameter entity loading a DTD from the canary."""
        doctype = ("<!DOCTYPE env:Envelope [\n"
                   '<!ENTITY passwd SYSTEM "file:///etc/passwd">\n'
                   f'<!ENTITY canary SYSTEM "{self.canary_url}/entity">\n'
                   f'<!ENTITY % remote SYSTEM "{self.canary_url}/dtd">\n'
                   "%remote;\n]>\n")
        document = self.events_document(
            self._alert_xml(alert).replace(f">{self.host_id}<", ">&passwd;<")
            .replace(f">{escape(alert.attacker)}<", ">&canary;<")
            for alert in self.alerts)
        declaration, _, rest = document.partition("\n")
        return f"{declaration}\n{doctype}{rest}"

    # --- IP log captures ---

    def capture_path(self, log: IpLog | int) -> Path:
        """The log's libpcap file (made on first use)."""
        log = self.ip_logs[log] if isinstance(log, int) else log
        path = self.work_dir / f"{log.index:06d}.pcap"
        with self.lock:
            if not path.exists():
                partial = path.with_name(path.name + ".part")
                write_capture(partial, log.frames(), linktype=LINKTYPE_ETHERNET, flavour=PCAP)
                partial.replace(path)
        return path

    def start(self) -> CiscoSimulator:
        if self.work_dir is None:   # not started yet, or stopped: a new canary as well
            self._canary = _Canary()
        return super().start()

    def stop(self) -> None:
        super().stop()
        if self._canary is not None:
            self._canary.stop()
