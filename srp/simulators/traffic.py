"""Realistic, deterministic traffic for one session between a client and a server.

A session is what a user's visit to a domain leaves on the wire: a DNS lookup (UDP), an HTTP
download (TCP handshake, GET with a Host header, the response in `payload_packets` full-size
segments with delayed ACKs, FIN teardown) and a TLS connection (handshake, a ClientHello
naming the domain in its SNI extension, an encrypted exchange, FIN teardown).

The session is first laid out as a plan of packets (addresses, ports, flags, sequence
numbers, payloads, timestamps) in plain Python, so its packet count, wire size and time span
are known without building anything; scapy then builds each frame only when a capture is
written. The same seed always gives the same bytes.
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

from srp.simulators.capfile import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    PCAP,
    WrittenCapture,
    write_capture,
)

MSS = 1460
DNS_PORT = 53
_BODY_BLOCK = 65536   # the response body repeats a seeded random block of this size
# 12 option bytes, as a Linux client sends them (timestamps left out to keep segments full).
_SYN_OPTIONS = [("MSS", MSS), ("NOP", None), ("WScale", 7), ("NOP", None), ("NOP", None),
                ("SAckOK", b"")]
_SYN_OPTIONS_LEN = 12
_SYN_WINDOW = 64240
_SCALED_WINDOW = 502   # 64256 bytes once the window scale (x128) applies
_UDP_HEADER_LEN, _TCP_HEADER_LEN, _ETHERNET_HEADER_LEN = 8, 20, 14


class PlannedPacket(NamedTuple):
    """One packet before it is built. `payload` is bytes, or for a response body segment
    the int offset of its `payload_len` bytes in the body (built only when written)."""

    ts_ns: int
    src: str
    dst: str
    sport: int
    dport: int
    flags: str | None         # TCP flags ("S", "SA", "PA", ...); None for UDP
    seq: int
    ack: int
    payload: bytes | int
    payload_len: int


class TrafficSummary(NamedTuple):
    packets: int
    wire_bytes: int   # sum of the frames' lengths
    first_ns: int
    last_ns: int


@dataclass(frozen=True)
class Conversation:
    """The parameters of one session's traffic; every field has a plausible default."""

    domain: str
    start_ns: int
    client_ip: str = "10.1.0.10"
    server_ip: str = "203.0.113.10"
    resolver_ip: str | None = None  # default: 10.1.0.53, or 2001:db8::53 for IPv6
    client_port: int = 49152        # the HTTP connection's; DNS and TLS use the next ones
    http_port: int = 80
    tls_port: int = 443
    payload_packets: int = 8        # response body segments of the HTTP download
    seed: int = 0

    def __post_init__(self):
        versions = {ipaddress.ip_address(ip).version
                    for ip in (self.client_ip, self.server_ip, self.resolver)}
        if len(versions) != 1:
            raise ValueError("client, server and resolver must all be IPv4 or all IPv6")
        if self.payload_packets < 0:
            raise ValueError("payload_packets must be 0 or more")
        if not 1024 <= self.client_port <= 65533:
            raise ValueError("client_port must leave room for two more ports below 65536")

    @property
    def ipv6(self) -> bool:
        return ":" in self.client_ip

    @property
    def resolver(self) -> str:
        if self.resolver_ip is not None:
            return self.resolver_ip
        return "2001:db8::53" if self.ipv6 else "10.1.0.53"

    def plan(self) -> Iterator[PlannedPacket]:
        """The session's packets in time order (cheap: nothing is built)."""
        rng = random.Random(self.seed)
        clock = _Clock(self.start_ns, rng)
        yield from _dns_lookup(self, rng, clock)
        yield from _http_download(self, rng, clock)
        yield from _tls_connection(self, rng, clock)

    def summary(self, linktype: int = LINKTYPE_ETHERNET) -> TrafficSummary:
        """Packet count, wire size and time span of the capture `write` would produce."""
        packets = wire = 0
        first = last = self.start_ns
        per_packet = _link_header_len(linktype) + (40 if self.ipv6 else 20)
        for packet in self.plan():
            if not packets:
                first = packet.ts_ns
            packets += 1
            last = packet.ts_ns
            transport = _UDP_HEADER_LEN if packet.flags is None else (
                _TCP_HEADER_LEN + (_SYN_OPTIONS_LEN if "S" in packet.flags else 0))
            wire += per_packet + transport + packet.payload_len
        return TrafficSummary(packets, wire, first, last)

    def frames(self, linktype: int = LINKTYPE_ETHERNET) -> Iterator[tuple[int, bytes]]:
        """(timestamp in ns, frame bytes) for every packet, built with scapy."""
        _link_header_len(linktype)   # refuse an unknown link type before importing scapy
        from scapy.layers.inet import IP, TCP, UDP
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw

        if self.ipv6:
            from scapy.layers.inet6 import IPv6
        body = random.Random(self.seed ^ 0x5EED).randbytes(_BODY_BLOCK)
        body += body   # so any segment's slice wraps around without a copy per segment
        hosts = random.Random(self.seed ^ 0x3AC)
        # Locally administered MACs ({True: the client's, False: its gateway's}) and a
        # per-host IP id counter, as a real stack keeps one.
        macs = {side: "02:" + ":".join(f"{hosts.randrange(256):02x}" for _ in range(5))
                for side in (True, False)}
        ip_ids = {ip: hosts.getrandbits(16) for ip in (self.client_ip, self.server_ip,
                                                       self.resolver)}
        for packet in self.plan():
            if self.ipv6:
                ip = IPv6(src=packet.src, dst=packet.dst, hlim=64)
            else:
                ip_ids[packet.src] = (ip_ids[packet.src] + 1) & 0xFFFF
                ip = IP(src=packet.src, dst=packet.dst, ttl=64, id=ip_ids[packet.src], flags="DF")
            if packet.flags is None:
                layer4 = UDP(sport=packet.sport, dport=packet.dport)
            else:
                layer4 = TCP(sport=packet.sport, dport=packet.dport, flags=packet.flags,
                             seq=packet.seq, ack=packet.ack,
                             window=_SYN_WINDOW if "S" in packet.flags else _SCALED_WINDOW,
                             options=_SYN_OPTIONS if "S" in packet.flags else [])
            frame = ip / layer4
            if isinstance(packet.payload, int):
                start = packet.payload % _BODY_BLOCK
                frame = frame / Raw(body[start:start + packet.payload_len])
            elif packet.payload:
                frame = frame / Raw(packet.payload)
            if linktype == LINKTYPE_ETHERNET:
                client_side = packet.src == self.client_ip
                frame = Ether(src=macs[client_side], dst=macs[not client_side],
                              type=0x86DD if self.ipv6 else 0x0800) / frame
            yield packet.ts_ns, bytes(frame)

    def write(self, path: str | Path, *, linktype: int = LINKTYPE_ETHERNET,
              flavour: str = PCAP) -> WrittenCapture:
        """Write the session as a capture file, streaming one frame at a time."""
        return write_capture(path, self.frames(linktype), linktype=linktype, flavour=flavour)


def _link_header_len(linktype: int) -> int:
    if linktype == LINKTYPE_ETHERNET:
        return _ETHERNET_HEADER_LEN
    if linktype == LINKTYPE_RAW:
        return 0
    raise ValueError(f"unsupported link type {linktype} "
                     f"(use {LINKTYPE_ETHERNET} or {LINKTYPE_RAW})")


class _Clock:
    """Monotonic packet times with seeded jitter: one round-trip time per session."""

    def __init__(self, start_ns: int, rng: random.Random):
        self.now = start_ns
        self.rng = rng
        self.rtt_ns = rng.randint(8_000_000, 60_000_000)

    def after(self, low_ns: int, high_ns: int) -> int:
        self.now += self.rng.randint(low_ns, high_ns)
        return self.now

    def round_trip(self) -> int:
        return self.after(self.rtt_ns, self.rtt_ns + self.rtt_ns // 4)

    def local(self) -> int:
        """A host answering at once (an ACK, the next segment in a burst)."""
        return self.after(20_000, 300_000)


class _Tcp:
    """One TCP connection's sequence numbers, from the client's side."""

    def __init__(self, conv: Conversation, rng: random.Random, client_port: int, server_port: int):
        self.client = (conv.client_ip, client_port)
        self.server = (conv.server_ip, server_port)
        self.client_seq = rng.getrandbits(32)
        self.server_seq = rng.getrandbits(32)

    def from_client(self, ts_ns: int, flags: str, payload: bytes = b"") -> PlannedPacket:
        packet = PlannedPacket(ts_ns, self.client[0], self.server[0], self.client[1],
                               self.server[1], flags, self.client_seq,
                               self.server_seq if "A" in flags else 0, payload, len(payload))
        self.client_seq = _advance(self.client_seq, flags, len(payload))
        return packet

    def from_server(self, ts_ns: int, flags: str, payload: bytes | int = b"",
                    payload_len: int | None = None) -> PlannedPacket:
        length = len(payload) if payload_len is None else payload_len
        packet = PlannedPacket(ts_ns, self.server[0], self.client[0], self.server[1],
                               self.client[1], flags, self.server_seq, self.client_seq,
                               payload, length)
        self.server_seq = _advance(self.server_seq, flags, length)
        return packet

    def handshake(self, clock: _Clock) -> Iterator[PlannedPacket]:
        yield self.from_client(clock.local(), "S")
        yield self.from_server(clock.round_trip(), "SA")
        yield self.from_client(clock.local(), "A")

    def teardown(self, clock: _Clock) -> Iterator[PlannedPacket]:
        yield self.from_client(clock.after(500_000, 2_000_000), "FA")
        yield self.from_server(clock.round_trip(), "FA")
        yield self.from_client(clock.local(), "A")


def _advance(seq: int, flags: str, length: int) -> int:
    """SYN and FIN take one sequence number each, like a byte of data."""
    return (seq + length + ("S" in flags) + ("F" in flags)) & 0xFFFFFFFF


def _dns_lookup(conv: Conversation, rng: random.Random, clock: _Clock) -> Iterator[PlannedPacket]:
    query_id = rng.getrandbits(16)
    port = conv.client_port + 2
    qtype = 28 if conv.ipv6 else 1   # AAAA or A
    yield PlannedPacket(clock.now, conv.client_ip, conv.resolver, port, DNS_PORT, None, 0, 0,
                        *_sized(dns_query(query_id, conv.domain, qtype)))
    answer = dns_answer(query_id, conv.domain, qtype, conv.server_ip, ttl=rng.randint(60, 3600))
    yield PlannedPacket(clock.after(1_000_000, 30_000_000), conv.resolver, conv.client_ip,
                        DNS_PORT, port, None, 0, 0, *_sized(answer))


def _http_download(conv: Conversation, rng: random.Random, clock: _Clock
                   ) -> Iterator[PlannedPacket]:
    tcp = _Tcp(conv, rng, conv.client_port, conv.http_port)
    clock.after(200_000, 2_000_000)
    yield from tcp.handshake(clock)
    request = (f"GET /downloads/update-{rng.randrange(1000, 9999)}.bin HTTP/1.1\r\n"
               f"Host: {conv.domain}\r\n"
               "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n"
               "Accept: */*\r\nConnection: close\r\n\r\n").encode()
    yield tcp.from_client(clock.local(), "PA", request)
    segments = conv.payload_packets
    body_len = MSS * segments - (rng.randrange(MSS // 2) if segments else 0)
    date = email.utils.formatdate(conv.start_ns / 1e9, usegmt=True)
    header = ("HTTP/1.1 200 OK\r\nServer: nginx\r\n"
              f"Date: {date}\r\nContent-Type: application/octet-stream\r\n"
              f"Content-Length: {body_len}\r\nConnection: close\r\n\r\n").encode()
    yield tcp.from_server(clock.round_trip(), "PA", header)
    for index in range(segments):
        offset = index * MSS
        length = min(MSS, body_len - offset)
        yield tcp.from_server(clock.local(), "PA" if index == segments - 1 else "A",
                              offset, length)
        if index % 2 or index == segments - 1:   # delayed ACK: every second segment
            yield tcp.from_client(clock.local(), "A")
    yield from tcp.teardown(clock)


def _tls_connection(conv: Conversation, rng: random.Random, clock: _Clock
                    ) -> Iterator[PlannedPacket]:
    tcp = _Tcp(conv, rng, conv.client_port + 1, conv.tls_port)
    clock.after(1_000_000, 5_000_000)
    yield from tcp.handshake(clock)
    session_id = rng.randbytes(32)
    yield tcp.from_client(clock.local(), "PA", client_hello(conv.domain, rng, session_id))
    server_flight = (server_hello(rng, session_id) + _tls_record(20, b"\x01")
                     + _tls_record(23, rng.randbytes(rng.randint(900, 1300))))
    yield tcp.from_server(clock.round_trip(), "PA", server_flight)
    client_flight = (_tls_record(20, b"\x01") + _tls_record(23, rng.randbytes(53))
                     + _tls_record(23, rng.randbytes(rng.randint(80, 200))))
    yield tcp.from_client(clock.local(), "PA", client_flight)
    server_answer = _tls_record(23, rng.randbytes(rng.randint(300, 900)))
    yield tcp.from_server(clock.round_trip(), "PA", server_answer)
    yield tcp.from_client(clock.local(), "A")
    yield from tcp.teardown(clock)


def _sized(payload: bytes) -> tuple[bytes, int]:
    return payload, len(payload)


# --- Payloads, crafted with struct: small and exact, and no scapy import to lay out a plan. ---

def _dns_name(domain: str) -> bytes:
    labels = [label.encode() for label in domain.rstrip(".").split(".")]
    return b"".join(bytes([len(label)]) + label for label in labels if label) + b"\x00"


def dns_query(query_id: int, domain: str, qtype: int) -> bytes:
    """A recursive query for one name (class IN)."""
    return struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + _dns_name(domain) + struct.pack(
        ">HH", qtype, 1)


def dns_answer(query_id: int, domain: str, qtype: int, address: str, ttl: int) -> bytes:
    """The resolver's answer: the question again and one address record pointing at it."""
    question = _dns_name(domain) + struct.pack(">HH", qtype, 1)
    rdata = ipaddress.ip_address(address).packed
    record = struct.pack(">HHHIH", 0xC00C, qtype, 1, ttl, len(rdata)) + rdata
    return struct.pack(">HHHHHH", query_id, 0x8180, 1, 1, 0, 0) + question + record


def _tls_record(content_type: int, body: bytes) -> bytes:
    return struct.pack(">BHH", content_type, 0x0303, len(body)) + body


def _handshake(message_type: int, body: bytes) -> bytes:
    return struct.pack(">I", message_type << 24 | len(body)) + body


def _extension(ext_type: int, body: bytes) -> bytes:
    return struct.pack(">HH", ext_type, len(body)) + body


def _vector(length_format: str, body: bytes) -> bytes:
    return struct.pack(length_format, len(body)) + body


def client_hello(server_name: str, rng: random.Random, session_id: bytes) -> bytes:
    """A TLS 1.3 ClientHello record (legacy version 1.0 on the record, as browsers send it)
    whose server_name extension carries `server_name`."""
    name = server_name.encode()
    ciphers = struct.pack(">9H", 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030,
                          0xCCA9, 0xCCA8)
    extensions = b"".join([
        _extension(0, _vector(">H", b"\x00" + _vector(">H", name))),            # server_name
        _extension(10, _vector(">H", struct.pack(">3H", 0x001D, 0x0017, 0x0018))),   # groups
        _extension(11, _vector(">B", b"\x00")),                                 # point formats
        _extension(13, _vector(">H", struct.pack(">4H", 0x0403, 0x0804, 0x0401, 0x0805))),
        _extension(16, _vector(">H", _vector(">B", b"http/1.1"))),              # ALPN
        _extension(43, _vector(">B", struct.pack(">2H", 0x0304, 0x0303))),     # versions
        _extension(51, _vector(">H", struct.pack(">HH", 0x001D, 32) + rng.randbytes(32))),
    ])
    body = (struct.pack(">H", 0x0303) + rng.randbytes(32) + _vector(">B", session_id)
            + _vector(">H", ciphers) + _vector(">B", b"\x00") + _vector(">H", extensions))
    return struct.pack(">BHH", 22, 0x0301, len(body) + 4) + _handshake(1, body)


def server_hello(rng: random.Random, session_id: bytes) -> bytes:
    """The server's TLS 1.3 ServerHello record choosing TLS_AES_128_GCM_SHA256 and x25519."""
    extensions = (_extension(43, struct.pack(">H", 0x0304))
                  + _extension(51, struct.pack(">HH", 0x001D, 32) + rng.randbytes(32)))
    body = (struct.pack(">H", 0x0303) + rng.randbytes(32) + _vector(">B", session_id)
            + struct.pack(">HB", 0x1301, 0) + _vector(">H", extensions))
    return _tls_record(22, _handshake(2, body))
