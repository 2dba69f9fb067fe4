"""Cisco IPS SDEE documents: parsed safely, read into alerts, IP log status events and the
sensor's own words when it answers with an error document.

Every SDEE XML detail of the project lives here: namespaces, element and attribute names.
Those marked "assumed" are the project's contract (docs/vendor-contracts.md#cisco-ips), not
public: this is the one place to adjust them when a real sensor differs. The routes and
request parameters are in srp.vendors.cisco.

Sensor XML is untrusted. lxml parses it with entity resolution, DTD loading and network
access off, and a document carrying a DOCTYPE (SOAP forbids one; a hostile sensor or a
man in the middle would use it for entities) is refused without expanding anything.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from srp.capture.headers import packed_address
from srp.errors import SrpError
from srp.retrieval.http import one_line, server_words

# --- Verified (Cisco IPS SDEE descriptions, public SDEE clients) ---
SOAP_NAMESPACE = "http://www.w3.org/2003/05/soap-envelope"
SDEE_NAMESPACE = "http://example.org/2003/08/sdee"
ENVELOPE = f"{{{SOAP_NAMESPACE}}}Envelope"   # every SDEE answer but an error message
CIDEE_NAMESPACES = ("http://www.cisco.com/cids/2006/08/cidee",   # IPS 6.x and later
                    "http://www.cisco.com/cids/2004/04/cidee")   # older sensors
ALERT = "evIdsAlert"                     # sd:
STATUS = "evStatus"                      # sd:
EVENT_ID = "eventId"                     # attribute of both
SEVERITY = "severity"                    # attribute of sd:evIdsAlert
TIME = "time"                            # sd:time, nanoseconds since the epoch (UTC)
SIGNATURE = "signature"                  # sd:signature, with these two attributes:
SIGNATURE_ID, SIGNATURE_DESCRIPTION = "id", "description"
PARTICIPANTS = "participants"            # sd:participants/sd:attacker|sd:target
ATTACKER, TARGET = "attacker", "target"
ADDRESS, PORT = "addr", "port"           # inside sd:attacker / sd:target
SUBSCRIPTION_ID = "subscriptionId"       # sd:, in the answer to action=open
# --- Assumed (docs/vendor-contracts.md#cisco-ips) ---
IPLOG_IDS, IPLOG_ID = "ipLogIds", "ipLogId"          # cid:ipLogIds/cid:ipLogId in an alert
IPLOG_STATUSES = {"ipLogAdded": "added", "ipLogStarted": "started",    # cid:, inside
                  "ipLogCompleted": "completed", "ipLogRemoved": "removed"}   # sd:evStatus
# A verbose alert's cid:triggerPacket (verified) is base64 (assumed), whitespace allowed;
# cid:context holds the matched stream bytes (verified) as cid:fromAttacker/cid:fromTarget.
TRIGGER_PACKET, CONTEXT = "triggerPacket", "context"
CONTEXT_SIDES = ("fromAttacker", "fromTarget")
# Error documents: a SOAP Fault (its Reason/Text says it; the first element of its Detail,
# e.g. sd:errNotFound, names it) or an sd:errMessage name=".." element.
FAULT, FAULT_REASON, FAULT_DETAIL = "Fault", "Reason", "Detail"
FAULT_STRING = "faultstring"             # SOAP 1.1 faults
ERROR_MESSAGE, ERROR_NAME = "errMessage", "name"
# --------------------------------------------------------------------------------------

_INTEGER = re.compile(r"\d{1,20}")
_DECLARATIONS = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_SUBSCRIPTION = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class SensorSaid(SrpError):
    """The sensor answered with an SDEE error document: `name` (e.g. errNotFound, may be
    empty) and its words."""

    def __init__(self, what: str, name: str, words: str):
        super().__init__(f"{what}: the sensor answered with an error: "
                         + (f"{name}: {words}" if name and words else name or words))
        self.name = name
        self.words = words


@dataclass(frozen=True)
class Endpoint:
    address: bytes               # packed (srp.capture.headers.packed_address)
    port: int | None             # None when the alert gives none (or 0)


@dataclass
class Alert:
    event_id: int
    time_ns: int | None
    severity: str
    signature_id: str
    description: str
    attacker: Endpoint | None
    targets: list[Endpoint]
    ip_log_ids: list[int]
    unreadable_log_ids: int = 0  # ids that are not whole numbers: never sent back
    trigger: bytes | None = None     # the verbose alert's trigger packet, as decoded
    trigger_problem: str | None = None   # why a trigger packet it carries was not decoded
    context: bytes | None = None     # the matched bytes, where the alert gives them


@dataclass
class LogStatus:
    event_id: int
    time_ns: int | None
    ip_log_id: int
    status: str                  # added, started, completed, removed


@dataclass
class Events:
    """What one SDEE answer holds."""

    alerts: list[Alert] = field(default_factory=list)
    statuses: list[LogStatus] = field(default_factory=list)

    @property
    def keys(self) -> set[tuple[str, int]]:
        """Each event's identity, to recognise it when a later page repeats it."""
        return ({("alert", a.event_id) for a in self.alerts}
                | {("status", s.event_id) for s in self.statuses})

    @property
    def latest_ns(self) -> int | None:
        times = [e.time_ns for e in (*self.alerts, *self.statuses) if e.time_ns is not None]
        return max(times, default=None)

    def without(self, seen: set[tuple[str, int]]) -> Events:
        return Events([a for a in self.alerts if ("alert", a.event_id) not in seen],
                      [s for s in self.statuses if ("status", s.event_id) not in seen])


def parse_document(body: bytes, what: str):
    """The root element of an SDEE answer. Raises SensorSaid for an error document, and
    SrpError for a document declaring a DOCTYPE or entities and for anything that is not
    an SDEE document."""
    from lxml import etree

    if _DECLARATIONS.search(body):
        raise _refused(what)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        said = server_words(body)
        raise SrpError(f"{what}: the sensor's answer is not an XML document: "
                       f"{said or 'an empty body'}") from None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:   # in an encoding the search misses
        raise _refused(what)
    error = _error(root)
    if error is not None:
        raise SensorSaid(what, *error)
    if root.tag != ENVELOPE:   # a well-formed login page must not read as "no events"
        raise SrpError(f"{what}: the sensor's answer is not an SDEE document: "
                       f"{server_words(body) or 'an empty document'}")
    return root


def _refused(what: str) -> SrpError:
    return SrpError(f"{what}: refused the sensor's answer: it carries a DOCTYPE or entity "
                    f"declarations, which SDEE's SOAP documents never do; nothing in it was "
                    f"expanded or fetched")


def error_words(body: bytes) -> tuple[str, str]:
    """(error name, words) of a body that is not a capture: an SDEE error document's, or
    for anything else no name and its first words."""
    try:
        parse_document(body, "")
    except SensorSaid as said:
        return said.name, said.words
    except SrpError:
        pass
    return "", server_words(body) or "an empty body"


def read_events(root) -> Events:
    events = Events()
    for element in root.iter(_sd(ALERT)):
        alert = _alert(element)
        if alert is not None:
            events.alerts.append(alert)
    for element in root.iter(_sd(STATUS)):
        event_id = _integer(element.get(EVENT_ID))
        if event_id is None:
            continue
        for tag, status in IPLOG_STATUSES.items():
            for found in _cid_all(element, tag):
                for log_id in _cid_all(found, IPLOG_ID):
                    number = _integer(log_id.text)
                    if number is not None:
                        events.statuses.append(LogStatus(event_id, _time(element), number,
                                                         status))
    return events


def subscription_id(root, what: str) -> str:
    element = root.find(f".//{_sd(SUBSCRIPTION_ID)}")
    text = (element.text or "").strip() if element is not None else ""
    if not _SUBSCRIPTION.fullmatch(text):
        raise SrpError(f"{what}: the sensor's answer holds no usable subscription id")
    return text


def _alert(element) -> Alert | None:
    event_id = _integer(element.get(EVENT_ID))
    if event_id is None:
        return None
    signature = element.find(_sd(SIGNATURE))
    signature_attributes = signature.attrib if signature is not None else {}
    participants = element.find(_sd(PARTICIPANTS))
    attacker, targets = None, []
    if participants is not None:
        attacker = _endpoint(participants.find(_sd(ATTACKER)))
        targets = [endpoint for endpoint in map(_endpoint, participants.iter(_sd(TARGET)))
                   if endpoint is not None]
    log_texts = [log.text for logs in _cid_all(element, IPLOG_IDS)
                 for log in _cid_all(logs, IPLOG_ID)]
    log_ids = [number for number in map(_integer, log_texts) if number is not None]
    trigger, problem = _base64(next(iter(_cid_all(element, TRIGGER_PACKET)), None))
    contexts = [_base64(side)[0] for context in _cid_all(element, CONTEXT)
                for name in CONTEXT_SIDES for side in _cid_all(context, name)]
    return Alert(event_id=event_id, time_ns=_time(element),
                 severity=one_line(element.get(SEVERITY)),
                 signature_id=one_line(signature_attributes.get(SIGNATURE_ID)),
                 description=one_line(signature_attributes.get(SIGNATURE_DESCRIPTION)),
                 attacker=attacker, targets=targets, ip_log_ids=list(dict.fromkeys(log_ids)),
                 unreadable_log_ids=len(log_texts) - len(log_ids), trigger=trigger,
                 trigger_problem=problem,
                 context=next((data for data in contexts if data), None))


def _base64(element) -> tuple[bytes | None, str | None]:
    """(the bytes, None) of a base64 element, or (None, why not); (None, None) for none."""
    if element is None:
        return None, None
    text = re.sub(r"\s+", "", element.text or "")
    if not text:
        return None, "it is empty"
    try:
        return base64.b64decode(text, validate=True), None
    except ValueError:
        return None, "it is not base64"


def _endpoint(element) -> Endpoint | None:
    if element is None:
        return None
    try:
        address = packed_address(element.findtext(_sd(ADDRESS)) or "")
    except ValueError:
        return None
    port = _integer(element.findtext(_sd(PORT)))
    return Endpoint(address, port if port and port <= 65535 else None)


def _error(root) -> tuple[str, str] | None:
    """(name, words) when the document is an error document: a SOAP Fault or an
    sd:errMessage."""
    from lxml import etree

    fault = _first(root, "{*}" + FAULT)
    message = _first(root, _sd(ERROR_MESSAGE))
    if fault is None and message is None:
        return None
    name = words = ""
    if message is not None:
        name, words = message.get(ERROR_NAME) or "", _text(message)
    if fault is not None:
        reason = _first(fault, "{*}" + FAULT_REASON, FAULT_STRING)
        detail = _first(fault, "{*}" + FAULT_DETAIL)
        named = (next(detail.iterchildren(etree.Element), None) if detail is not None
                 else None)
        if named is not None:
            name = name or named.get(ERROR_NAME) or etree.QName(named).localname
            words = words or _text(named)
        if reason is not None:
            words = _text(reason) or words
    return one_line(name), one_line(words) or "no reason given"


def _first(element, *tags: str):
    """The first element at any depth under `element` (itself included) with one of these
    tags, tried in order; None if there is none."""
    for tag in tags:
        found = next(element.iter(tag), None)
        if found is not None:
            return found
    return None


def _sd(name: str) -> str:
    return f"{{{SDEE_NAMESPACE}}}{name}"


def _cid_all(element, name: str) -> list:
    """Children of `element` called cid:`name`, in either cidee namespace, at any depth."""
    return [found for namespace in CIDEE_NAMESPACES
            for found in element.iter(f"{{{namespace}}}{name}")]


def _time(element) -> int | None:
    found = element.find(_sd(TIME))
    return _integer(found.text) if found is not None else None


def _integer(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def _text(element) -> str:
    return " ".join(element.itertext())



