"""What the traffic names: DNS query names, HTTP hosts and request lines, TLS server names.

The header pass shows a NameReader the first payload-bearing packets of every direction. A
look at their first bytes keeps the candidates (at most CANDIDATES of each kind, so that a
chatty kind leaves room for the others), and only those are decoded after the pass, by a
few reads of just the fields shown: a DNS query's question names, an HTTP request's line
and Host header, the server name of a TLS ClientHello. (scapy decodes all three, but its
import takes a third of a second and ~35 MB, which every alarm would pay for these few
fields, and its TLS layer loads the whole cryptography stack.) A ClientHello split over TCP
segments is put back together from the segments that follow it in order.

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

CANDIDATES = 1000            # packets decoded at most per kind
_MAX_QUESTIONS = 16          # questions read of one DNS message (a query asks one)
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
        for payload in self._dns:
            dns.update(dns_question_names(payload))
        for payload in self._http:
            request = http_request(payload)
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


def dns_question_names(message: bytes) -> list[str]:
    """The names a DNS message's questions ask for (RFC 1035 4.1), as far as they can be
    read: a name cut short or malformed ends the list."""
    names: list[str] = []
    try:
        questions = struct.unpack_from(">H", message, 4)[0]
        at = 12
        for _ in range(min(questions, _MAX_QUESTIONS)):
            labels, at = _dns_name(message, at)
            if at + 4 > len(message):      # the question's type and class
                break
            at += 4
            if labels:
                names.append(_host(b".".join(labels)))
    except (IndexError, struct.error, ValueError):
        pass
    return names


def _dns_name(message: bytes, at: int) -> tuple[list[bytes], int]:
    """The labels of the name at `at`, and where the bytes after it start. Compression
    pointers are followed only backwards, so a loop of them cannot run forever."""
    labels: list[bytes] = []
    after = None       # where the name ends in the message, once a pointer was followed
    start, size = at, 0
    while True:
        length = message[at]
        if length == 0:
            return labels, (at + 1 if after is None else after)
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack_from(">H", message, at)[0] & 0x3FFF
            if pointer >= start:
                raise ValueError("a DNS compression pointer that does not point back")
            if after is None:
                after = at + 2
            start = at = pointer
        elif length & 0xC0:
            raise ValueError("a DNS label of a reserved kind")
        else:
            size += length + 1
            if size > 255 or at + 1 + length > len(message):
                raise ValueError("a DNS name too long or cut short")
            labels.append(message[at + 1:at + 1 + length])
            at += 1 + length


def http_request(payload: bytes) -> tuple[str, str | None] | None:
    """The request line of an HTTP/1 request's head, and its Host header's value."""
    head = payload.split(b"\r\n\r\n", 1)[0]
    line, *headers = (part.rstrip(b"\r") for part in head.split(b"\n"))
    if not line.startswith(_HTTP_METHODS):
        return None
    host = None
    for header in headers:
        name, colon, value = header.partition(b":")
        if colon and name.strip().lower() == b"host":
            host = _host(value.strip()) or None
            break
    return printable(line.strip(), NAME_LIMIT), host


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
