"""One captured packet's IP and transport headers, decoded in plain Python: the one decoder
of the project (the summary's header pass and the Cisco --only-participants filter).

Link types: Ethernet, Linux cooked (SLL, SLL2), raw IP, BSD and OpenBSD loopback; under
them 802.1Q / 802.1ad tags, PPPoE sessions and MPLS labels. IPv4 and IPv6 (extension
headers skipped); ports for TCP, UDP and SCTP, the TCP sequence number, and where the
transport payload lies. A fragment after the first carries no ports.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

LINKTYPE_NULL = 0          # BSD loopback: a 4-byte address family in the writer's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD = 12      # raw IP, as some BSDs number it in files
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108        # OpenBSD loopback: the address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

# Every link type decode_packet reads, by name.
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
RAW_IP_LINK_TYPES = {LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_IPV4, LINKTYPE_IPV6}
LOOPBACK_LINK_TYPES = {LINKTYPE_NULL, LINKTYPE_LOOP}

ICMP, TCP, UDP, ICMPV6, SCTP = 1, 6, 17, 58, 132
_PORTED = {TCP, UDP, SCTP}               # the ports come first in their headers
# IPv6 extension headers a transport header may follow (hop-by-hop, routing, fragment,
# destination options, AH, mobility, HIP, shim6).
_IPV6_FRAGMENT, _IPV6_AH = 44, 51
_IPV6_EXTENSIONS = {0, 43, _IPV6_FRAGMENT, 60, _IPV6_AH, 135, 139, 140}


class Packet(NamedTuple):
    """One packet's IP and transport headers, decoded."""

    network_offset: int
    transport_offset: int
    protocol: int               # the IP protocol number
    src: bytes                  # packed addresses, 4 or 16 bytes (see packed_address)
    dst: bytes
    sport: int | None           # None: no ports (not TCP/UDP/SCTP, a later fragment, cut short)
    dport: int | None
    seq: int | None             # the TCP sequence number
    payload_start: int          # the transport payload is data[payload_start:payload_end]
    payload_end: int

    @property
    def direction(self) -> tuple:
        """What names this packet's direction of its conversation."""
        return self.protocol, self.src, self.sport, self.dst, self.dport


def packed_address(text: str) -> bytes:
    """An IP address packed as Packet.src and Packet.dst hold addresses, for comparing with
    them; ValueError if `text` is not an IP address."""
    return ipaddress.ip_address(text.strip()).packed


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
    elif linktype in RAW_IP_LINK_TYPES and size:
        version = data[0] >> 4
        ethertype = ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0
        at = 0
    elif linktype in LOOPBACK_LINK_TYPES and size >= 4:
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
    """The IP and transport headers of one captured packet, or None when it is not IP (or
    cut inside its IP header).

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
    if protocol in _PORTED and transport + 4 <= size:   # UDP, SCTP, or TCP cut short
        sport, dport = _PORTS.unpack_from(data, transport)
        payload = min(transport + 8, end) if protocol == UDP else end
        return Packet(at, transport, protocol, src, dst, sport, dport, None, payload, end)
    return Packet(at, transport, protocol, src, dst, None, None, None, end, end)
