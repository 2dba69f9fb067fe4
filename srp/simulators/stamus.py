"""A Stamus Networks SCS (Scirius) look-alike over HTTPS: the conditional pcap of alerting
flows.

It serves the routes of docs/vendor-contracts.md#stamus the way Scirius does
(rules/es/alerts_tail and suricata/rest_api.py PcapFilestoreViewSet):
`Authorization: Token <key>`; alerts_tail over a catalogue of alerts with qfilter (the subset
of srp.simulators.lucene a client needs, matched exactly as Elasticsearch matches numbers),
from_date/to_date in epoch ms and page/page_size paging, results flat or as `_id` + `_source`;
then per alert: upload (multipart, `_id` required), a synchronous extract that writes the
flow's libpcap capture (Ethernet, snaplen 65536) from srp.simulators.traffic, status,
retrieve, and a one-shot download (the file is deleted once served). Errors come in Scirius'
shapes: DRF `{"detail": ...}`, field errors `{"file": [...]}`, and Django's HTML page for a
500. Faults (FAULTS) switch on while it runs; those about one flow take its flow id (as a
string) in Fault.sessions.

    with StamusSimulator() as stamus:
        requests.get(stamus.url + ALERTS_ROUTE, params={"qfilter": "alert.signature_id:1"},
                     headers={"Authorization": f"Token {stamus.token}"},
                     verify=stamus.ca_bundle)
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import hmac
import itertools
import json
import os
import random
import re
import secrets
import shutil
import string
import threading
import time
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, urlencode, urlsplit

from srp.simulators import lucene
from srp.simulators.capfile import LINKTYPE_ETHERNET, PCAP, write_capture
from srp.simulators.faults import Fault
from srp.simulators.https import RequestError, SimulatorHandler, VendorSimulator
from srp.simulators.traffic import Conversation

# ----------------------------------------------------------------------------------------
# The Scirius wire contract: the one place to adjust when a real server differs.
AUTH_HEADER = "Authorization"          # "Token <key>" (Django REST framework)
TOKEN_SCHEME = "token"                 # compared case-insensitively
ALERTS_ROUTE = "/rest/rules/es/alerts_tail/"
UPLOAD_ROUTE = "/rest/rules/filestore_pcap/upload/"
FILE_ROUTE = re.compile(r"/rest/rules/filestore_pcap/(?P<name>[0-9A-Za-z_-]+)/"
                        r"(?P<action>extract_pcap|status|retrieve|download)/")
FILE_ACTIONS = {"extract_pcap": "POST", "status": "GET", "retrieve": "GET", "download": "GET"}
FILE_NAME = re.compile(r"[0-9A-Za-z_-]+")
UPLOAD_FIELD = "file"
DOWNLOAD_CONTENT_TYPE = "application/octet-stream"
DEFAULT_PAGE_SIZE = 30
DEFAULT_WINDOW_MS = 30 * 24 * 3600 * 1000   # alerts_tail without from_date: the last 30 days
# Fields a qfilter may name, as Elasticsearch sees an alert -> the AlertSpec attribute.
QUERY_FIELDS = {"alert.signature_id": "signature_id", "flow_id": "flow_id", "host": "host",
                "src_ip": "src_ip", "dest_ip": "dest_ip", "app_proto": "app_proto"}
SNAPLEN = 65536                        # Suricata's conditional pcap
DJANGO_500_PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <title>Server Error (500)</title>
</head>
<body>
  <h1>Server Error (500)</h1><p></p>
</body>
</html>
"""
# ----------------------------------------------------------------------------------------

FAULTS = (
    "cut",              # download: TCP reset after Fault.after_bytes (at most half the body)
    "no-alert",         # alerts_tail: the alerts (of the chosen flows) are left out
    "no-capture-file",  # alerts_tail: the alerts carry no capture_file
    "header-only",      # extract: the capture is a bare 24-byte header
    "slow-extract",     # extract: Fault.latency_ms added before answering
    "html-500",         # extract: Django's HTML 500 page
    "401",              # every route: 401, whatever the token
)
DEFAULT_SIGNATURES = ((2029743, "ET MALWARE Possible Malicious Download (update.bin)"),
                      (2013028, "ET POLICY curl User-Agent Outbound"))
_NS = 1_000_000_000
_ES_ID_ALPHABET = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True)
class AlertSpec:
    """One alert of the catalogue, as a test chooses it. Alerts sharing a flow_id are alerts
    of one flow; the first of them describes the flow's traffic."""

    signature_id: int
    flow_id: int
    timestamp: dt.datetime             # timezone-aware; the flow starts here
    es_id: str                         # the alert's Elasticsearch _id (tests may make it hostile)
    signature: str = DEFAULT_SIGNATURES[0][1]
    host: str = "probe-1"              # the probe that saw it
    src_ip: str = "10.1.0.10"
    src_port: int = 49152
    dest_ip: str = "203.0.113.10"
    dest_port: int = 80
    app_proto: str = "http"
    domain: str = "alert.example"      # the Host the flow asks for
    captured: bool = True              # conditional pcap stored the flow (capture_file)
    payload_packets: int = 2           # response segments of the flow


def default_alerts(count: int = 6, *, now: dt.datetime | None = None,
                   signatures=DEFAULT_SIGNATURES, seed: int = 0) -> list[AlertSpec]:
    """Alerts of `count` flows spread over the hour before `now`, taking turns among
    `signatures`, on two probes; every fourth flow was not stored by conditional pcap and
    every third raised its signature twice."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rng = random.Random(seed)
    step = dt.timedelta(hours=1) / count
    specs = []
    for index in range(count):
        signature_id, signature = signatures[index % len(signatures)]
        flow = AlertSpec(
            signature_id=signature_id, signature=signature,
            flow_id=rng.getrandbits(51), es_id=_es_id(rng),
            timestamp=now - dt.timedelta(hours=1) + step * index
            + dt.timedelta(milliseconds=rng.randrange(1000)),
            host=f"probe-{1 + index // 2 % 2}", src_ip=f"10.1.0.{10 + index % 50}",
            src_port=49152 + (index * 3) % 16000, dest_ip=f"203.0.113.{10 + index % 20}",
            domain=f"update{index}.example", captured=index % 4 != 3)
        specs.append(flow)
        if index % 3 == 2:
            specs.append(dataclasses.replace(flow, es_id=_es_id(rng),
                                             timestamp=flow.timestamp + dt.timedelta(seconds=2)))
    return specs


def _es_id(rng: random.Random) -> str:
    return "".join(rng.choice(_ES_ID_ALPHABET) for _ in range(20))


def _epoch_ns(moment: dt.datetime) -> int:
    return calendar.timegm(moment.utctimetuple()) * _NS + moment.microsecond * 1000


def eve_timestamp(moment: dt.datetime) -> str:
    """Suricata's EVE timestamp: 2024-05-01T11:10:00.123456+0000."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


class Flow:
    """One alerting flow and its traffic: the HTTP connection of a Conversation."""

    def __init__(self, index: int, spec: AlertSpec):
        self.index = index
        self.spec = spec
        self.conversation = Conversation(
            domain=spec.domain, start_ns=_epoch_ns(spec.timestamp), client_ip=spec.src_ip,
            server_ip=spec.dest_ip, client_port=spec.src_port, http_port=spec.dest_port,
            payload_packets=spec.payload_packets, seed=spec.flow_id & 0xFFFFFFFF)
        self.lock = threading.Lock()   # one thread writes the capture; the others wait

    def frames(self):
        """The flow's frames: the Conversation's packets of this one TCP connection (its
        plan and its frames come in the same order)."""
        ends = {(self.spec.src_ip, self.spec.src_port), (self.spec.dest_ip, self.spec.dest_port)}
        for packet, frame in zip(self.conversation.plan(),
                                 self.conversation.frames(LINKTYPE_ETHERNET)):
            if {(packet.src, packet.sport), (packet.dst, packet.dport)} == ends:
                yield frame


class Alert:
    """One alert of the catalogue and the EVE document alerts_tail answers for it."""

    def __init__(self, spec: AlertSpec, flow: Flow):
        self.spec = spec
        self.flow = flow
        self.time_ms = _epoch_ns(spec.timestamp) // 1_000_000

    def source(self, capture_file: bool) -> dict:
        spec = self.spec
        document = {
            "timestamp": eve_timestamp(spec.timestamp), "flow_id": spec.flow_id,
            "in_iface": "eth1", "event_type": "alert", "src_ip": spec.src_ip,
            "src_port": spec.src_port, "dest_ip": spec.dest_ip, "dest_port": spec.dest_port,
            "proto": "TCP", "app_proto": spec.app_proto,
            "alert": {"action": "allowed", "gid": 1, "signature_id": spec.signature_id,
                      "rev": 3, "signature": spec.signature, "category": "A Network Trojan "
                      "was detected", "severity": 1},
            "http": {"hostname": spec.domain, "http_method": "GET"},
            "host": spec.host,
        }
        if capture_file:
            document["capture_file"] = (f"/var/log/suricata/conditional/log-"
                                        f"{self.time_ms // 1000}-{self.flow.index}.pcap")
        return document

    def query_document(self) -> dict[str, str]:
        return {field: str(getattr(self.spec, attribute))
                for field, attribute in QUERY_FIELDS.items()}


def matches(query, document: dict[str, str]) -> bool:
    """A parsed qfilter against an alert, as Elasticsearch matches keyword and number
    fields: the whole value, not a part of it (wildcards still apply)."""
    if isinstance(query, lucene.Both):
        return all(matches(clause, document) for clause in query.clauses)
    if isinstance(query, lucene.Either):
        return any(matches(clause, document) for clause in query.clauses)
    values = [document.get(query.field)] if query.field else list(document.values())
    for value in values:
        if value is None:
            continue
        if query.pattern is not None:
            if query.pattern.fullmatch(value):
                return True
        elif query.text.casefold() == value.casefold():
            return True
    return False


class StamusHandler(SimulatorHandler):
    def send_problem(self, status, message, headers=None):
        """DRF's {"detail": ...}; a 500 is Django's own HTML page (an unhandled error)."""
        if status == 500:
            self.send_bytes(500, DJANGO_500_PAGE, "text/html; charset=utf-8", headers)
        else:
            self.send_json(status, {"detail": message}, headers)

    def respond(self) -> None:
        stamus: StamusSimulator = self.simulator
        if stamus.faults.fire("401"):
            raise RequestError(401, "Invalid token.", {"WWW-Authenticate": "Token"})
        self._authenticate()
        route = self.route
        file_route = FILE_ROUTE.fullmatch(route)
        if route == ALERTS_ROUTE:
            self._require_method("GET")
            self._alerts_tail()
        elif route == UPLOAD_ROUTE:
            self._require_method("POST")
            self._upload()
        elif file_route:
            action, name = file_route["action"], file_route["name"]
            self._require_method(FILE_ACTIONS[action])
            getattr(self, f"_{action}")(name)
        else:
            raise RequestError(404, "Not found.")

    def _require_method(self, method: str) -> None:
        if self.command != method:
            raise RequestError(405, f'Method "{self.command}" not allowed.', {"Allow": method})

    def _authenticate(self) -> None:
        scheme, _, token = self.headers.get(AUTH_HEADER, "").strip().partition(" ")
        if scheme.lower() != TOKEN_SCHEME:
            raise RequestError(401, "Authentication credentials were not provided.",
                               {"WWW-Authenticate": "Token"})
        if not hmac.compare_digest(token.strip().encode(), self.simulator.token.encode()):
            raise RequestError(401, "Invalid token.", {"WWW-Authenticate": "Token"})

    @property
    def params(self) -> dict[str, str]:
        return {name: values[-1] for name, values in
                parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    # --- alerts_tail ---

    def _alerts_tail(self) -> None:
        stamus: StamusSimulator = self.simulator
        params = self.params
        now_ms = time.time_ns() // 1_000_000
        to_ms = _number(params, "to_date", now_ms)
        from_ms = _number(params, "from_date", to_ms - DEFAULT_WINDOW_MS)
        page = _number(params, "page", 1)
        size = min(_number(params, "page_size", DEFAULT_PAGE_SIZE), stamus.max_page_size)
        if page < 1 or size < 1:
            raise RequestError(404, "Invalid page.")
        query = None
        if params.get("qfilter", "").strip():
            try:
                query = lucene.parse(params["qfilter"])
            except lucene.QuerySyntaxError as exc:
                # Scirius reports Elasticsearch's failures itself, as JSON.
                self.send_json(500, {"detail": f"ES failure: cannot parse qfilter: {exc}"})
                return
        found = []
        for alert in stamus.alerts:   # newest first, as alerts_tail orders by default
            flow = str(alert.spec.flow_id)
            if not from_ms <= alert.time_ms <= to_ms:
                continue
            if query is not None and not matches(query, alert.query_document()):
                continue
            if stamus.faults.fire("no-alert", flow):
                continue
            found.append(alert)
        pages = max(1, -(-len(found) // size))
        if page > pages:
            raise RequestError(404, "Invalid page.")
        results = [self._result(alert) for alert in found[(page - 1) * size:page * size]]

        def link(number: int) -> str | None:
            if not 1 <= number <= pages:
                return None
            return f"{stamus.url}{ALERTS_ROUTE}?{urlencode({**params, 'page': number})}"

        self.send_json(200, {"count": len(found), "next": link(page + 1),
                             "previous": link(page - 1), "results": results})

    def _result(self, alert: Alert) -> dict:
        stamus: StamusSimulator = self.simulator
        stored = (alert.spec.captured
                  and not stamus.faults.fire("no-capture-file", str(alert.spec.flow_id)))
        source = alert.source(capture_file=stored)
        if stamus.shape == "source":
            index = f"logstash-alert-{alert.spec.timestamp:%Y.%m.%d}"
            return {"_id": alert.spec.es_id, "_index": index, "_source": source}
        return {**source, "_id": alert.spec.es_id}

    # --- filestore_pcap ---

    def _upload(self) -> None:
        content = self._uploaded_file()
        if content is None:
            self.send_json(400, {"file": ["This field is required."]})
            return
        try:
            document = json.loads(content)
            name = document["_id"]                 # Scirius fails with a 500 without it
            fields = document.get("_source", document)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RequestError(500, "upload without _id") from None
        if not isinstance(name, str) or not FILE_NAME.fullmatch(name):
            # Scirius wrote /tmp/<_id>.json unchecked (a reported path traversal); this
            # server refuses such a name.
            self.send_json(400, {"file": ["Invalid _id: not a file name."]})
            return
        self.simulator.upload(name, fields)
        self.send_json(200, {"upload": "done", "filename": name})

    def _uploaded_file(self) -> bytes | None:
        """The `file` field of a multipart/form-data body; None when there is none."""
        content_type = self.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            return None
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + self.body)
        if not message.is_multipart():
            return None
        for part in message.iter_parts():
            if (part.get_param("name", header="content-disposition") == UPLOAD_FIELD
                    and part.get_filename() is not None):
                return part.get_payload(decode=True)
        return None

    def _extract_pcap(self, name: str) -> None:
        stamus: StamusSimulator = self.simulator
        fields = stamus.uploaded(name)
        flow = stamus.flow_of(fields)
        if flow is None or not fields.get("capture_file") or not flow.spec.captured:
            # gopherCap finds no event file or no capture for it: Scirius answers a 500.
            if flow is not None:
                stamus.uncaptured_requests.append(str(flow.spec.flow_id))
            raise RequestError(500, "extraction failed")
        key = str(flow.spec.flow_id)
        slow = stamus.faults.fire("slow-extract", key)
        if slow:
            time.sleep(slow.latency_ms / 1000)
        if stamus.faults.fire("html-500", key):
            raise RequestError(500, "extraction failed")
        stamus.extract(name, flow, header_only=stamus.faults.fire("header-only", key)
                       is not None)
        stamus.forget_upload(name)   # as Scirius removes the event file once extracted
        self.send_json(200, {"extraction": "done", "filename": name})

    def _status(self, name: str) -> None:
        available = self.simulator.extracted_path(name) is not None
        self.send_json(200, {"status": "available" if available else "unknown"})

    def _retrieve(self, name: str) -> None:
        self.send_json(200, {"retrieve": "done"})

    def _download(self, name: str) -> None:
        stamus: StamusSimulator = self.simulator
        served = stamus.take_extracted(name)   # one-shot: gone once served, whatever happens
        if served is None:
            raise RequestError(404, f'Unknown filename "{name}.pcap"')
        path, flow = served
        try:
            cut = stamus.faults.fire("cut", str(flow.spec.flow_id))
            size = path.stat().st_size
            self.send_file(path, DOWNLOAD_CONTENT_TYPE,
                           {"Content-Disposition": f'attachment; filename="{name}.pcap"'},
                           cut_after=None if cut is None else min(cut.after_bytes, size // 2))
        finally:
            path.unlink(missing_ok=True)


def _number(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name, "")
    if not value:
        return default
    if not re.fullmatch(r"-?\d{1,19}", value):
        raise RequestError(400, f"{name} must be a number")
    return int(value)


class StamusSimulator(VendorSimulator):
    """A Stamus Central Server on loopback HTTPS; a context manager.

    alerts: the catalogue (AlertSpecs); default: default_alerts().
    token: the one valid API token; default: a random one (see `.token`).
    faults: Fault objects or bare fault names (FAULTS) in force from the start.
    shape: "flat" (alert fields and `_id`) or "source" (`_id` + `_source`); change any time.
    max_page_size: the most alerts one alerts_tail page holds, whatever page_size asks.
    host, port, cert_dir, latency: see HTTPSServer.

    Attributes for tests: url, ca_bundle, token, requests (every request, the token
    masked), faults (FaultSwitch), uncaptured_requests (flow ids whose extraction was asked
    for without a stored capture).
    """

    handler_class = StamusHandler
    fault_names = FAULTS
    work_prefix = "srp-stamus-sim-"

    def __init__(self, alerts: Iterable[AlertSpec] | None = None, *, token: str | None = None,
                 faults: Iterable[Fault | str] = (), shape: str = "flat",
                 max_page_size: int = 100, host: str = "127.0.0.1", port: int = 0,
                 cert_dir: str | Path | None = None, latency: float = 0.0):
        super().__init__(faults=faults, host=host, port=port, cert_dir=cert_dir,
                         latency=latency)
        specs = list(default_alerts() if alerts is None else alerts)
        if len({spec.es_id for spec in specs}) != len(specs):
            raise ValueError("alert _ids must be unique")
        if any(spec.timestamp.tzinfo is None for spec in specs):
            raise ValueError("alert timestamps must be timezone-aware")
        if shape not in ("flat", "source"):
            raise ValueError("shape is 'flat' or 'source'")
        self.flows: dict[int, Flow] = {}
        for spec in sorted(specs, key=lambda spec: spec.timestamp):
            if spec.flow_id not in self.flows:
                self.flows[spec.flow_id] = Flow(len(self.flows), spec)
        self.alerts = sorted((Alert(spec, self.flows[spec.flow_id]) for spec in specs),
                             key=lambda alert: alert.time_ms, reverse=True)
        self.token = token if token is not None else secrets.token_hex(20)
        self.shape = shape
        self.max_page_size = max_page_size
        self._built_as = shape, max_page_size   # what reset() goes back to
        self.uncaptured_requests: list[str] = []
        self._uploads: dict[str, dict] = {}                 # _id -> the uploaded alert
        self._extracted: dict[str, tuple[Path, Flow]] = {}  # _id -> its pcap, until served
        self._files_lock = threading.Lock()
        self._serial = itertools.count()

    def reset(self) -> None:
        super().reset()
        self.uncaptured_requests.clear()
        self.shape, self.max_page_size = self._built_as

    def add(self, spec: AlertSpec) -> None:
        """Index one more alert while serving, as Elasticsearch does late."""
        if any(alert.spec.es_id == spec.es_id for alert in self.alerts):
            raise ValueError("alert _ids must be unique")
        flow = self.flows.setdefault(spec.flow_id, Flow(len(self.flows), spec))
        self.alerts = sorted([*self.alerts, Alert(spec, flow)],
                             key=lambda alert: alert.time_ms, reverse=True)

    def flow_capture(self, flow_id: int) -> Path:
        """The flow's whole capture, as an extraction writes it (made if needed)."""
        flow = self.flows[flow_id]
        with flow.lock:
            path = self.work_dir / f"flow{flow.index:06d}.pcap"
            if not path.exists():
                partial = path.with_name(path.name + ".part")
                write_capture(partial, flow.frames(), linktype=LINKTYPE_ETHERNET, flavour=PCAP,
                              snaplen=SNAPLEN)
                os.replace(partial, path)
            return path

    # --- the server's file store, shared by its request threads ---

    def upload(self, name: str, fields: dict) -> None:
        with self._files_lock:
            self._uploads[name] = fields

    def uploaded(self, name: str) -> dict:
        """The uploaded alert an extraction reads ({} when there is none)."""
        with self._files_lock:
            fields = self._uploads.get(name)
        return fields if isinstance(fields, dict) else {}

    def forget_upload(self, name: str) -> None:
        with self._files_lock:
            self._uploads.pop(name, None)

    def flow_of(self, fields: dict) -> Flow | None:
        flow_id = fields.get("flow_id")
        return self.flows.get(flow_id) if isinstance(flow_id, int) else None

    def extract(self, name: str, flow: Flow, header_only: bool = False) -> None:
        target = self.work_dir / f"extracted{next(self._serial):06d}.pcap"
        if header_only:
            write_capture(target, [], linktype=LINKTYPE_ETHERNET, flavour=PCAP, snaplen=SNAPLEN)
        else:
            shutil.copyfile(self.flow_capture(flow.spec.flow_id), target)
        with self._files_lock:
            earlier = self._extracted.pop(name, None)
            self._extracted[name] = (target, flow)
        if earlier is not None:
            earlier[0].unlink(missing_ok=True)

    def extracted_path(self, name: str) -> Path | None:
        with self._files_lock:
            found = self._extracted.get(name)
        return found[0] if found else None

    def take_extracted(self, name: str) -> tuple[Path, Flow] | None:
        with self._files_lock:
            return self._extracted.pop(name, None)

    def stop(self) -> None:
        super().stop()
        self._uploads.clear()
        self._extracted.clear()
