"""What the traffic names: DNS query names, HTTP hosts and request lines, TLS server names.

The header pass shows a NameReader the first payload-bearing packets of every direction. A
look at their first bytes keeps the candidates (at most CANDIDATES of each kind, so that a
chatty kind leaves room for the others), and only those are decoded after the pass: DNS and
HTTP with scapy, imported only then, and the server name of a TLS ClientHello with a few
struct reads (scapy's TLS layer loads its whole cryptography stack to read that one field).
A ClientHello split over TCP segments is put back together from the segments that follow
it in order.

Names come out printable (see printable.py), at most NAME_LIMIT characters, counted, most
frequent first. Host names (DNS, HTTP Host, TLS) are case-insensitive and are lowercased.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from srp.capture.headers import TCP, UDP, Packet
from srp.summary.headers import DNS_PORT
from srp.summary.printable import printable

CANDIDATES = 1000            # packets decoded at most per kind (scapy takes ~0.2 ms for each)
NAME_LIMIT = 200             # characters kept of a name or request line
TOP = 10                     # names kept per kind
_PAYLOAD_LIMIT = 4096        # bytes kept of a DNS or HTTP candidate
_HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ",
                 b"PATCH ", b"TRACE ")
_TLS_HANDSHAKE, _CLIENT_HELLO, _SERVER_NAME = 22, 1, 0


class NameCount(NamedTuple):
    name: str
    count: int


class RequestCount(NamedTuple):
    request: str             # the request line: method, target, version
    host: str | None         # its Host header
    count: int


@dataclass(frozen=True)
class Ranked:
    """The most frequent names of one kind, and how many different ones there were."""

    top: tuple = ()
    distinct: int = 0

    @classmethod
    def of(cls, counts: Counter) -> Ranked:
        return cls(tuple(NameCount(*item) for item in counts.most_common(TOP)), len(counts))


@dataclass(frozen=True)
class TrafficNames:
    dns: Ranked = field(default_factory=Ranked)              # of NameCount
    http_hosts: Ranked = field(default_factory=Ranked)       # of NameCount
    http_requests: Ranked = field(default_factory=Ranked)    # of RequestCount
    tls: Ranked = field(default_factory=Ranked)              # of NameCount
    capped: tuple[str, ...] = ()     # kinds ("DNS", "HTTP", "TLS") that had more candidates


class NameReader:
    """Picks candidate packets during the header pass; `names()` decodes them after it."""

    def __init__(self, limit: int = CANDIDATES):
        self._limit = limit
        self._dns: list[bytes] = []
        self._http: list[bytes] = []
        self._tls: list[bytes] = []
        # ClientHellos still missing segments: direction -> (next sequence number, bytes so
        # far, length of the whole record).
        self._hellos: dict[tuple, tuple[int, bytearray, int]] = {}
        self._capped: set[str] = set()

    def _room(self, kind: str, kept: int) -> bool:
        """Whether one more candidate of `kind` fits in its budget (else: note it is capped)."""
        if kept < self._limit:
            return True
        self._capped.add(kind)
        return False

    def examine(self, packet: Packet, data) -> bool:
        """Keep the packet if it may name something; False once every kind is full."""
        payload = data[packet.payload_start:packet.payload_end]
        ports = (packet.sport, packet.dport)
        if packet.protocol == TCP and packet.direction in self._hellos:
            self._continue_hello(packet, payload)
        elif DNS_PORT in ports and packet.protocol in (UDP, TCP):
            if packet.protocol == TCP:     # DNS over TCP: each message after a 2-byte length
                payload = payload[2:]
            if (len(payload) >= 12 and not payload[2] & 0x80      # a query, not a response
                    and self._room("DNS", len(self._dns))):
                self._dns.append(bytes(payload[:_PAYLOAD_LIMIT]))
        elif packet.protocol == TCP and payload[:8].tobytes().startswith(_HTTP_METHODS):
            if self._room("HTTP", len(self._http)):
                self._http.append(bytes(payload[:_PAYLOAD_LIMIT]))
        elif (packet.protocol == TCP and len(payload) >= 6 and payload[0] == _TLS_HANDSHAKE
              and payload[1] == 3 and payload[5] == _CLIENT_HELLO):
            if self._room("TLS", len(self._tls) + len(self._hellos)):
                self._start_hello(packet, payload)
        return len(self._capped) < 3

    def _start_hello(self, packet: Packet, payload) -> None:
        wanted = 5 + (payload[3] << 8 | payload[4])
        if len(payload) >= wanted or packet.seq is None:
            self._tls.append(bytes(payload))
        else:
            self._hellos[packet.direction] = ((packet.seq + len(payload)) & 0xFFFFFFFF,
                                              bytearray(payload), wanted)

    def _continue_hello(self, packet: Packet, payload) -> None:
        expected, hello, wanted = self._hellos[packet.direction]
        if packet.seq != expected:      # a retransmission or a gap: keep waiting
            return
        hello += payload
        if len(hello) >= wanted:
            self._tls.append(bytes(self._hellos.pop(packet.direction)[1]))
        else:
            self._hellos[packet.direction] = ((expected + len(payload)) & 0xFFFFFFFF, hello,
                                              wanted)

    def names(self) -> TrafficNames:
        """Decode the candidates kept (a ClientHello never completed is read as far as it
        goes)."""
        hellos = self._tls + [bytes(hello) for _seq, hello, _wanted in self._hellos.values()]
        tls = Counter(name for name in map(server_name, hellos) if name)
        dns, hosts, requests = Counter(), Counter(), Counter()
        if self._dns or self._http:
            decode_dns, decode_http = _scapy_decoders()
            for payload in self._dns:
                dns.update(decode_dns(payload))
            for payload in self._http:
                request = decode_http(payload)
                if request is not None:
                    line, host = request
                    requests[line, host] += 1
                    if host:
                        hosts[host] += 1
        return TrafficNames(
            dns=Ranked.of(dns), http_hosts=Ranked.of(hosts), tls=Ranked.of(tls),
            http_requests=Ranked(tuple(RequestCount(line, host, count) for (line, host), count
                                       in requests.most_common(TOP)), len(requests)),
            capped=tuple(kind for kind in ("DNS", "HTTP", "TLS") if kind in self._capped))


def _host(raw: bytes) -> str:
    return printable(raw.rstrip(b".").lower(), NAME_LIMIT)


def preload() -> None:
    """Import scapy's DNS and HTTP layers now (a retrieval does it while it waits on the
    network, so that its summary need not wait for the import)."""
    _scapy_decoders()


def _scapy_decoders():
    """DNS and HTTP readers backed by scapy, imported on first use: the command line starts
    without it, and its import must not print (it logs what it cannot find on the host)."""
    import logging
    import warnings

    scapy_log = logging.getLogger("scapy")
    if scapy_log.level == logging.NOTSET:   # scapy keeps a level set before its import
        scapy_log.setLevel(logging.CRITICAL + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from scapy.layers.dns import DNS
        from scapy.layers.http import HTTP, HTTPRequest

    def decode_dns(payload: bytes) -> list[str]:
        try:
            questions = DNS(payload).qd or []
            return [_host(question.qname) for question in questions if question.qname]
        except Exception:   # scapy raises many kinds on hostile bytes: not a name
            return []

    def decode_http(payload: bytes) -> tuple[str, str | None] | None:
        try:
            request = HTTP(payload).getlayer(HTTPRequest)
        except Exception:   # as above
            return None
        if request is None or not request.Method:
            return None
        line = b" ".join(part for part in (request.Method, request.Path,
                                           request.Http_Version) if part)
        return printable(line, NAME_LIMIT), _host(request.Host) if request.Host else None

    return decode_dns, decode_http


def server_name(hello: bytes) -> str | None:
    """The host name in a TLS ClientHello's server_name extension (RFC 6066), or None.

    `hello` is the handshake records as sent, possibly cut short; a handshake message
    split over several records is joined first."""
    message = _handshake_bytes(hello)
    try:
        if message[0] != _CLIENT_HELLO:
            return None
        at = 4 + 2 + 32                                      # header, version, random
        at += 1 + message[at]                                # session id
        at += 2 + struct.unpack_from(">H", message, at)[0]   # cipher suites
        at += 1 + message[at]                                # compression methods
        end = min(len(message), at + 2 + struct.unpack_from(">H", message, at)[0])
        at += 2
        while at + 4 <= end:
            kind, length = struct.unpack_from(">HH", message, at)
            at += 4
            if kind == _SERVER_NAME:
                return _first_host_name(message[at:at + length])
            at += length
    except (IndexError, struct.error):   # cut short before the extension: no name
        return None
    return None


def _handshake_bytes(hello: bytes) -> bytes:
    """The bodies of the handshake records at the start of `hello`, joined."""
    parts, at = [], 0
    while at + 5 <= len(hello) and hello[at] == _TLS_HANDSHAKE:
        length = hello[at + 3] << 8 | hello[at + 4]
        parts.append(hello[at + 5:at + 5 + length])
        at += 5 + length
    return b"".join(parts)


def _first_host_name(extension: bytes) -> str | None:
    at = 2                                                   # after the list's length
    while at + 3 <= len(extension):
        kind, length = extension[at], struct.unpack_from(">H", extension, at + 1)[0]
        if kind == 0:                                        # host_name
            name = extension[at + 3:at + 3 + length]
            return _host(name) if name else None
        at += 3 + length
    return None
