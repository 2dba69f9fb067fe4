"""Packet headers in plain Python: a frame's IP addresses, protocol and ports, and a capture
copied keeping only the packets whose headers pass a test.

Link types: Ethernet (with 802.1Q / 802.1ad tags), Linux cooked (SLL, SLL2) and raw IP.
IPv4 and IPv6 (extension headers skipped); ports for TCP, UDP and SCTP. A fragment after the
first carries no ports: it decodes with sport and dport None.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Callable, NamedTuple

from srp.capture import open_capture
from srp.capture.model import BLOCK, DATA, IFACE, Damage
from srp.capture.pcap import PcapReader, PcapWriter
from srp.capture.pcapng import PcapngWriter

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_PORTED = (6, 17, 132)                      # TCP, UDP, SCTP: ports come first
_IPV6_EXTENSIONS = (0, 43, 60)              # hop-by-hop, routing, destination options
_IPV6_FRAGMENT, _IPV6_AUTH = 44, 51
_MAX_EXTENSIONS = 8                         # a longer chain is left undecoded (no ports)
_U16 = struct.Struct(">H").unpack_from
_PORTS = struct.Struct(">HH").unpack_from
_BATCH = 1 << 20


class PacketHeaders(NamedTuple):
    src: str                 # as socket.inet_ntop writes it
    dst: str
    protocol: int            # IPv4 protocol / IPv6 next header after the extensions
    sport: int | None        # None: not TCP/UDP/SCTP, or a later fragment
    dport: int | None


def normal_address(text: str) -> str:
    """An IP address written the way decode() writes addresses, for comparing with them;
    ValueError if `text` is not an IP address."""
    address = ipaddress.ip_address(text.strip())
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    return socket.inet_ntop(family, address.packed)


def decode(linktype: int, frame) -> PacketHeaders | None:
    """The IP headers of one captured frame; None when it holds no (complete) IP header."""
    try:
        ethertype, offset = _network_layer(linktype, frame)
        if ethertype == ETHERTYPE_IPV4:
            return _ipv4(frame, offset)
        if ethertype == ETHERTYPE_IPV6:
            return _ipv6(frame, offset)
    except (IndexError, struct.error, ValueError):
        pass   # a frame cut before the end of its headers
    return None


def _network_layer(linktype: int, frame) -> tuple[int | None, int]:
    if linktype == LINKTYPE_ETHERNET:
        ethertype, offset = _U16(frame, 12)[0], 14
        while ethertype in _VLAN_TAGS:
            ethertype, offset = _U16(frame, offset + 2)[0], offset + 4
        return ethertype, offset
    if linktype == LINKTYPE_LINUX_SLL:
        return _U16(frame, 14)[0], 16
    if linktype == LINKTYPE_LINUX_SLL2:
        return _U16(frame, 0)[0], 20
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        version = frame[0] >> 4
        return {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(version), 0
    return None, 0


def _ipv4(frame, offset: int) -> PacketHeaders | None:
    header_length = (frame[offset] & 0x0F) * 4
    if header_length < 20 or len(frame) < offset + 20:
        return None
    protocol = frame[offset + 9]
    later_fragment = _U16(frame, offset + 6)[0] & 0x1FFF
    src = socket.inet_ntop(socket.AF_INET, frame[offset + 12:offset + 16])
    dst = socket.inet_ntop(socket.AF_INET, frame[offset + 16:offset + 20])
    return _with_ports(frame, offset + header_length, src, dst, protocol, not later_fragment)


def _ipv6(frame, offset: int) -> PacketHeaders | None:
    if len(frame) < offset + 40:
        return None
    protocol = frame[offset + 6]
    src = socket.inet_ntop(socket.AF_INET6, frame[offset + 8:offset + 24])
    dst = socket.inet_ntop(socket.AF_INET6, frame[offset + 24:offset + 40])
    position, first_fragment = offset + 40, True
    for _ in range(_MAX_EXTENSIONS):
        if protocol in _IPV6_EXTENSIONS:
            protocol, position = frame[position], position + (frame[position + 1] + 1) * 8
        elif protocol == _IPV6_AUTH:
            protocol, position = frame[position], position + (frame[position + 1] + 2) * 4
        elif protocol == _IPV6_FRAGMENT:
            first_fragment = _U16(frame, position + 2)[0] >> 3 == 0
            protocol, position = frame[position], position + 8
        else:
            break
    return _with_ports(frame, position, src, dst, protocol, first_fragment)


def _with_ports(frame, position: int, src: str, dst: str, protocol: int,
                first_fragment: bool) -> PacketHeaders:
    if first_fragment and protocol in _PORTED and len(frame) >= position + 4:
        sport, dport = _PORTS(frame, position)
        return PacketHeaders(src, dst, protocol, sport, dport)
    return PacketHeaders(src, dst, protocol, None, None)


class Filtered(NamedTuple):
    kept: int                # packets written
    read: int                # packets read
    damage: Damage | None    # where the source stopped making sense; the packets before it count


def filter_capture(source: str | os.PathLike, target: str | os.PathLike,
                   keep: Callable[[PacketHeaders | None], bool]) -> Filtered:
    """Copy the packets of `source` for which keep(their headers) is true into `target`, in
    the source's format (pcap stays pcap). Streams: memory stays bounded whatever the size.
    Reading stops at damage, as the merge does; non-packet pcapng blocks are left out."""
    kept = read = 0
    with open_capture(source) as reader, open(target, "wb") as file:
        if isinstance(reader, PcapReader):
            interface = reader.interfaces[0]
            writer = PcapWriter(file, interface.linktype, interface.snaplen,
                                reader.nanosecond)
        else:
            writer = PcapngWriter(file)
        interface_map: list[int] = []   # the encoder reads it as interfaces are added
        encode = writer.encoder(interface_map, None)
        while (batch := reader.read_batch(_BATCH)) is not None:
            for interface in reader.interfaces[len(interface_map):]:
                writer.add_interface(interface)
                interface_map.append(len(interface_map))
            chosen = []
            for record in batch:
                iface = record[IFACE]
                if iface == BLOCK:
                    continue
                read += 1
                if keep(decode(reader.interfaces[iface].linktype, record[DATA])):
                    chosen.append(record)
            kept += len(chosen)
            for blob in encode(chosen):
                writer.write(blob)
        return Filtered(kept, read, reader.damage)
