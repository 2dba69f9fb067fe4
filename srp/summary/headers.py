"""The fast pass over a capture's headers: every packet counted into its conversation.

Within one direction of a conversation the header bytes that name it (addresses, ports,
protocol, the link layer's type field) do not change from packet to packet. So a packet is
first looked up by those bytes, read with one struct call at the offsets the common layouts
(Ethernet, 802.1Q, Linux cooked, raw IP, with IPv4 or IPv6) put them at; only the first
packet of each distinct key is decoded in full (srp.capture.headers.decode_packet).
Packets those offsets do not fit (IPv4 options, IPv6 extension headers, fragments, QinQ,
non-IP) are decoded one by one. Conversations are bidirectional: both directions' keys add
up into one.
"""

from __future__ import annotations

import struct
from collections import Counter
from operator import itemgetter
from typing import Callable, NamedTuple

from srp.capture.headers import (
    ICMP,
    ICMPV6,
    LINK_TYPE_NAMES,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LOOPBACK_LINK_TYPES,
    RAW_IP_LINK_TYPES,
    TCP,
    UDP,
    Packet,
    decode_packet,
)
from srp.capture.model import BLOCK

PROTOCOL_NAMES = {TCP: "TCP", UDP: "UDP", ICMP: "ICMP", ICMPV6: "ICMPv6"}

# The first packets of each direction are shown to the name reader (DNS, HTTP, TLS live
# in a flow's first packets); a DNS flow carries one name per packet, so it is shown more.
EXAMINED_PER_DIRECTION = 8
EXAMINED_PER_DNS_DIRECTION = 64
DNS_PORT = 53


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
    elif linktype in RAW_IP_LINK_TYPES:
        places = [(0, 0)]
    elif linktype in LOOPBACK_LINK_TYPES:
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
