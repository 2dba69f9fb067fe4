"""The fast pass over a capture's headers: every packet counted into its conversation.

Within one direction of a conversation the header bytes that name it (addresses, ports,
protocol, the link layer's type field) do not change from packet to packet. So a packet is
first looked up by those bytes, read with one struct call at the offsets the common layouts
(Ethernet, 802.1Q, Linux cooked, raw IP, with IPv4 or IPv6) put them at; only the first
packet of each distinct key is decoded in full (`decode_packet`). Packets those offsets do
not fit (IPv4 options, IPv6 extension headers, fragments, QinQ, non-IP) are decoded one by
one. Conversations are bidirectional: both directions' keys add up into one.
"""

from __future__ import annotations

import struct
from collections import Counter
from operator import itemgetter
from typing import Callable, NamedTuple

from srp.capture.model import BLOCK

LINKTYPE_NULL = 0          # BSD loopback: a 4-byte address family in the writer's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD = 12      # raw IP, as some BSDs number it in files
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108        # OpenBSD loopback: the address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINK_TYPE_NAMES = {
    LINKTYPE_NULL: "BSD loopback", LINKTYPE_ETHERNET: "Ethernet", LINKTYPE_RAW_BSD: "raw IP",
    LINKTYPE_RAW: "raw IP", LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked", LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6", LINKTYPE_LINUX_SLL2: "Linux cooked v2",
}

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TAGS = {0x8100, 0x88A8, 0x9100}   # 802.1Q, 802.1ad (QinQ) and its older tag
ETHERTYPE_PPPOE_SESSION = 0x8864
_PPP_PROTOCOLS = {0x0021: ETHERTYPE_IPV4, 0x0057: ETHERTYPE_IPV6}
ETHERTYPE_MPLS = {0x8847, 0x8848}        # unicast, multicast
_AF_INET = 2
_AF_INET6 = {10, 24, 28, 30}             # Linux, NetBSD/OpenBSD, FreeBSD, macOS
_RAW_IP = {LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_IPV4, LINKTYPE_IPV6}
_LOOPBACK = {LINKTYPE_NULL, LINKTYPE_LOOP}

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
PROTOCOL_NAMES = {TCP: "TCP", UDP: "UDP", ICMP: "ICMP", ICMPV6: "ICMPv6"}
_PORTED = {TCP, UDP}
# IPv6 extension headers a transport header may follow (hop-by-hop, routing, fragment,
# destination options, AH, mobility, HIP, shim6).
_IPV6_FRAGMENT, _IPV6_AH = 44, 51
_IPV6_EXTENSIONS = {0, 43, _IPV6_FRAGMENT, 60, _IPV6_AH, 135, 139, 140}

# The first packets of each direction are shown to the name reader (DNS, HTTP, TLS live
# in a flow's first packets); a DNS flow carries one name per packet, so it is shown more.
EXAMINED_PER_DIRECTION = 8
EXAMINED_PER_DNS_DIRECTION = 64
DNS_PORT = 53


class Packet(NamedTuple):
    """One packet's IP and transport headers, decoded."""

    network_offset: int
    transport_offset: int
    protocol: int               # the IP protocol number
    src: bytes                  # packed addresses, 4 or 16 bytes
    dst: bytes
    sport: int | None           # None: no ports (not TCP/UDP, a later fragment, cut short)
    dport: int | None
    seq: int | None             # the TCP sequence number
    payload_start: int          # the transport payload is data[payload_start:payload_end]
    payload_end: int

    @property
    def direction(self) -> tuple:
        """What names this packet's direction of its conversation."""
        return self.protocol, self.src, self.sport, self.dst, self.dport


_IPV4_HEADER = struct.Struct("!BxHxxHxB2x4s4s")   # version+length, total, fragment, protocol
_IPV6_HEADER = struct.Struct("!B3xHB1x16s16s")    # version, payload length, next header
_PORTS = struct.Struct("!HH")
_TCP_HEADER = struct.Struct("!HHI4xB")             # ports, sequence number, header length


def _network_start(linktype: int, data) -> tuple[int, int] | None:
    """(ethertype, offset) of the network header under the link layer (and VLAN tags,
    PPPoE, MPLS labels), or None."""
    size = len(data)
    if linktype == LINKTYPE_ETHERNET and size >= 14:
        ethertype, at = data[12] << 8 | data[13], 14
    elif linktype == LINKTYPE_LINUX_SLL and size >= 16:
        ethertype, at = data[14] << 8 | data[15], 16
    elif linktype == LINKTYPE_LINUX_SLL2 and size >= 20:
        ethertype, at = data[0] << 8 | data[1], 20
    elif linktype in _RAW_IP and size:
        version = data[0] >> 4
        ethertype = ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0
        at = 0
    elif linktype in _LOOPBACK and size >= 4:
        family = data[0] or data[3]   # whichever end of the 4 bytes holds it
        ethertype = (ETHERTYPE_IPV4 if family == _AF_INET else
                     ETHERTYPE_IPV6 if family in _AF_INET6 else 0)
        at = 4
    else:
        return None
    while ethertype in VLAN_TAGS and at + 4 <= size:
        ethertype, at = data[at + 2] << 8 | data[at + 3], at + 4
    if ethertype == ETHERTYPE_PPPOE_SESSION and at + 8 <= size:
        ethertype = _PPP_PROTOCOLS.get(data[at + 6] << 8 | data[at + 7], 0)
        at += 8
    elif ethertype in ETHERTYPE_MPLS:
        while at + 4 <= size and not data[at + 2] & 1:   # labels down to the bottom of stack
            at += 4
        at += 4
        version = data[at] >> 4 if at < size else 0
        ethertype = ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0
    return ethertype, at


def decode_packet(linktype: int, data) -> Packet | None:
    """The IP and transport headers of one captured packet, or None when it is not IP.

    Never raises on hostile or cut-short bytes: what is missing is left out."""
    start = _network_start(linktype, data)
    if start is None:
        return None
    ethertype, at = start
    if ethertype == ETHERTYPE_IPV4 and len(data) >= at + 20:
        return _ipv4(data, at)
    if ethertype == ETHERTYPE_IPV6 and len(data) >= at + 40:
        return _ipv6(data, at)
    return None


def _ipv4(data, at: int) -> Packet | None:
    version_length, total, fragment, protocol, src, dst = _IPV4_HEADER.unpack_from(data, at)
    if version_length >> 4 != 4:
        return None
    header = (version_length & 0x0F) * 4
    # A total length of 0 is a segment the capturing NIC had not cut up yet (TSO).
    end = min(len(data), at + total) if total >= header else len(data)
    if header < 20 or fragment & 0x1FFF:   # a later fragment carries no transport header
        return Packet(at, at + header, protocol, src, dst, None, None, None, end, end)
    return _transport(data, at, at + header, end, protocol, src, dst)


def _ipv6(data, at: int) -> Packet | None:
    version, length, protocol, src, dst = _IPV6_HEADER.unpack_from(data, at)
    if version >> 4 != 6:
        return None
    transport = at + 40
    end = min(len(data), transport + length) if length else len(data)   # 0: a jumbogram
    while protocol in _IPV6_EXTENSIONS and transport + 8 <= end:
        if protocol == _IPV6_FRAGMENT:
            if (data[transport + 2] << 8 | data[transport + 3]) >> 3:   # a later fragment
                return Packet(at, transport, data[transport], src, dst, None, None, None,
                              end, end)
            length = 8
        elif protocol == _IPV6_AH:
            length = (data[transport + 1] + 2) * 4
        else:
            length = (data[transport + 1] + 1) * 8
        protocol, transport = data[transport], transport + length
    return _transport(data, at, transport, end, protocol, src, dst)


def _transport(data, at: int, transport: int, end: int, protocol: int, src: bytes,
               dst: bytes) -> Packet:
    size = len(data)
    if protocol == TCP and transport + 13 <= size:
        sport, dport, seq, header = _TCP_HEADER.unpack_from(data, transport)
        payload = min(transport + (header >> 4) * 4, end)
        return Packet(at, transport, protocol, src, dst, sport, dport, seq, payload, end)
    if protocol in _PORTED and transport + 4 <= size:   # UDP, or TCP cut short
        sport, dport = _PORTS.unpack_from(data, transport)
        payload = min(transport + 8, end) if protocol == UDP else end
        return Packet(at, transport, protocol, src, dst, sport, dport, None, payload, end)
    return Packet(at, transport, protocol, src, dst, None, None, None, end, end)


class _Layout(NamedTuple):
    """Where one common layout puts the fields that name a packet's direction."""

    key: Callable          # struct unpack_from: the raw key of a packet
    size: int              # the bytes a packet needs for it
    network_offset: int
    transport_offset: int  # where the transport header is when the layout fits


def _layout(type_start: int, network: int, version: int) -> _Layout:
    # The link layer's type bytes (and a VLAN tag), then for IPv4 the version and header
    # length, flags and fragment offset, protocol, addresses, the 4 bytes after a 20-byte
    # header (ports); for IPv6 the version and traffic class, next header, addresses, ports.
    link = f"{type_start}x{network - type_start}s"
    fields, header = ("B5xHxB2x8sI", 20) if version == 4 else ("B5xBx32sI", 40)
    compiled = struct.Struct(f"!{link}{fields}")
    return _Layout(compiled.unpack_from, compiled.size, network, network + header)


def _layouts(linktype: int) -> tuple[_Layout, ...]:
    """The layouts tried first for a link type's packets, most common first."""
    if linktype == LINKTYPE_ETHERNET:
        places = [(12, 14), (12, 18)]         # untagged, one VLAN tag
    elif linktype == LINKTYPE_LINUX_SLL:
        places = [(14, 16)]
    elif linktype == LINKTYPE_LINUX_SLL2:
        places = [(0, 20)]
    elif linktype in _RAW_IP:
        places = [(0, 0)]
    elif linktype in _LOOPBACK:
        places = [(0, 4)]
    else:
        return ()
    return tuple(_layout(type_start, network, version)
                 for type_start, network in places for version in (4, 6))


# What a raw key maps to when its layout does not fit its packets: they are decoded one
# by one (its other layouts tried first). False, so that one truth test in the hot loop
# tells both it and an unknown key (None) from a tally (a list, never empty).
_UNFIT = False
# A direction's tally is a list: [packets, bytes on the wire, first time, last time, packets
# still to show the name reader, the direction (Packet.direction)].
# Raw keys and directions remembered at most (~450 bytes each): a port scan makes a
# conversation of every packet. Past this, a packet whose raw key is new is counted as
# untracked, undecoded (a scan would otherwise cost a decode per packet).
MAX_TRACKED = 300_000


def protocol_name(protocol: int) -> str:
    return PROTOCOL_NAMES.get(protocol, f"proto {protocol}")


def link_type_name(linktype: int) -> str:
    return LINK_TYPE_NAMES.get(linktype, f"link type {linktype}")


class HeaderPass:
    """Counts packets into conversations, batch by batch of reader records.

    `examine(packet, data)` is shown the first packets of every direction that carry a
    transport payload; it returns False once it wants no more."""

    max_tracked = MAX_TRACKED

    def __init__(self, examine: Callable[[Packet, memoryview], bool] | None = None):
        self._examine = examine
        self.packets = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.link_types: Counter[int] = Counter()    # packets per link type
        self.not_ip = 0          # packets of a link type decoded here that are not IP
        self.untracked_packets = 0                   # packets of directions past max_tracked
        self.untracked_bytes = 0
        self._directions: dict[tuple, list] = {}     # Packet.direction -> its tally
        self._tracked = 0                            # raw keys and directions remembered
        self._plans: list[tuple] = []                # per reader interface, see _plan

    def add(self, records: list[tuple], interfaces: list) -> None:
        """Count one batch of records; `interfaces` is the reader's (it grows as it reads)."""
        plans = self._plans
        while len(plans) < len(interfaces):
            plans.append(self._plan(interfaces[len(plans)].linktype))
        self._count_batch(records)
        other = self._tally_unfitted
        for ts, iface, origlen, data, _options in records:
            if iface == BLOCK:
                continue
            # The first layout inline: most packets of a capture fit it.
            key_of, table, linktype, layouts, later_layouts = plans[iface]
            try:
                tally = table.get(key_of(data))
            except struct.error:   # a packet too short for the layout
                tally = None
            if not tally:
                tally = other(linktype, later_layouts if tally is _UNFIT else layouts, data,
                              ts, origlen)
                if tally is None:
                    continue
            tally[0] += 1               # packets
            tally[1] += origlen         # bytes
            tally[3] = ts               # last time
            if tally[4]:                # to show the name reader
                tally[4] -= 1
                self._show(linktype, data)

    def _plan(self, linktype: int) -> tuple:
        """The first layout's key reader and table, the link type, every (layout, table),
        and those after the first."""
        layouts = tuple((layout, {}) for layout in _layouts(linktype))
        if not layouts:
            return _no_key, {}, linktype, (), ()
        first, table = layouts[0]
        return first.key, table, linktype, layouts, layouts[1:]

    def _count_batch(self, records: list[tuple]) -> None:
        """Packets per link type and the time span, at C speed over the whole batch."""
        for iface, count in Counter(map(itemgetter(1), records)).items():
            if iface != BLOCK:
                self.link_types[self._plans[iface][2]] += count
                self.packets += count
        stamps = [ts for ts in map(itemgetter(0), records) if ts is not None]
        if stamps:
            low, high = min(stamps), max(stamps)
            self.first_ns = low if self.first_ns is None else min(self.first_ns, low)
            self.last_ns = high if self.last_ns is None else max(self.last_ns, high)

    def _tally_unfitted(self, linktype: int, layouts: tuple, data, ts, origlen) -> list | None:
        """The tally of a packet the first layout's table does not know, or None when it is
        not IP (or not tracked: see MAX_TRACKED)."""
        for layout, table in layouts:
            if len(data) < layout.size:
                continue
            key = layout.key(data)
            tally = table.get(key)
            if tally is None:
                if self._tracked >= self.max_tracked:
                    return self._untracked(origlen)
                packet = decode_packet(linktype, data)
                fits = (packet is not None and packet.network_offset == layout.network_offset
                        and packet.transport_offset == layout.transport_offset)
                tally = table[key] = self._direction_tally(packet, ts) if fits else _UNFIT
                self._tracked += 1
            if tally is not _UNFIT:
                return tally
        packet = decode_packet(linktype, data)
        if packet is None:
            self.not_ip += linktype in LINK_TYPE_NAMES
            return None
        return self._direction_tally(packet, ts) or self._untracked(origlen)

    def _untracked(self, origlen: int) -> None:
        """Count a packet of a direction past max_tracked (its tally: None)."""
        self.untracked_packets += 1
        self.untracked_bytes += origlen

    def _direction_tally(self, packet: Packet, ts) -> list | None:
        """The tally of the packet's direction, made if new (None past max_tracked)."""
        direction = packet.direction
        tally = self._directions.get(direction)
        if tally is not None or self._tracked >= self.max_tracked:
            return tally
        examined = 0
        if self._examine is not None:
            examined = (EXAMINED_PER_DNS_DIRECTION if DNS_PORT in (packet.sport, packet.dport)
                        else EXAMINED_PER_DIRECTION)
        tally = self._directions[direction] = [0, 0, ts, ts, examined, direction]
        self._tracked += 1
        return tally

    def _show(self, linktype: int, data) -> None:
        packet = decode_packet(linktype, data)
        if packet is not None and packet.payload_end > packet.payload_start:
            if not self._examine(packet, data):
                self._examine = None
                for tally in self._directions.values():
                    tally[4] = 0        # to show the name reader

    def conversations(self) -> dict[tuple, list]:
        """(protocol, endpoint A, endpoint B) -> [packets, bytes, first, last] for every
        conversation seen, both directions added up; endpoints are (address, port)."""
        merged: dict[tuple, list] = {}
        for packets, size, first, last, _examined, direction in self._directions.values():
            protocol, src, sport, dst, dport = direction
            if src < dst or (src == dst and (sport or 0) <= (dport or 0)):
                key = (protocol, (src, sport), (dst, dport))
            else:
                key = (protocol, (dst, dport), (src, sport))
            totals = merged.get(key)
            if totals is None:
                merged[key] = [packets, size, first, last]
            else:
                totals[0] += packets
                totals[1] += size
                totals[2] = _earliest(totals[2], first)
                totals[3] = _latest(totals[3], last)
        return merged


def _no_key(data) -> None:
    """The key of a packet of a link type without layouts: none, it is decoded."""


def _earliest(a, b):
    return b if a is None else a if b is None else min(a, b)


def _latest(a, b):
    return b if a is None else a if b is None else max(a, b)
