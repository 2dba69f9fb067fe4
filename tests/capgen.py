"""Synthetic pcap / pcapng capture files for tests and benchmarks.

This is an independent implementation of both formats (plain ``struct``,
standard library only, nothing from ``srp``), so the tests can check our
reader, writer and merger against it and against Wireshark's tools.

Timestamps
----------
Every ``Rec`` carries ``ts_ns``: the timestamp, in ns since the epoch, that a
correct reader must report for it. Writers never round: a ``ts_ns`` the file
cannot hold exactly raises ``ValueError``, so a ``Rec`` always describes what
is in the file.

- pcap: microsecond files hold multiples of 1000 ns, nanosecond files any ns.
- pcapng: a timestamp is a 64-bit count of units of the interface's
  ``if_tsresol`` (raw byte: high bit 0 -> 10^-v s, high bit 1 -> 2^-(v & 0x7f) s,
  absent -> 10^-6 s). A reader turns units into ns as
  ``units * 10**9 // units_per_second`` (what Wireshark does), so with a 2^-n
  resolution the values a file can hold are ``(units * 10**9) >> n``. The
  writer stores the smallest unit count that reads back as ``ts_ns``, and
  ``random_recs(tsresol=...)`` only produces timestamps that have one.
"""

from __future__ import annotations

import ipaddress
import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence, Union

NS_PER_S = 10**9

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_GLOBAL_HEADER_LEN = 24
PCAP_RECORD_HEADER_LEN = 16

SHB_TYPE = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
IDB_TYPE = 1
PB_TYPE = 2  # obsolete Packet Block
SPB_TYPE = 3
NRB_TYPE = 4
ISB_TYPE = 5
EPB_TYPE = 6
CUSTOM_COPYABLE_TYPE = 0x00000BAD
CUSTOM_LOCAL_TYPE = 0x40000BAD

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
IF_TSOFFSET = 14
NRB_RECORD_END = 0
NRB_RECORD_IPV4 = 1
NRB_RECORD_IPV6 = 2

LINKTYPE_ETHERNET = 1
IMPOSSIBLE_CAPLEN = 0x7FFFFFFF
DEFAULT_START_NS = 1_700_000_000 * NS_PER_S

# An option value: bytes as they go in the file, or text written as UTF-8.
# Numeric option values depend on the section's byte order, so callers pack them.
OptionValue = Union[bytes, str]
Option = tuple[int, OptionValue]


@dataclass
class Rec:
    """One packet record as the generator wrote it."""

    ts_ns: int | None  # what a reader must report; None for an SPB, which has no timestamp
    data: bytes  # captured bytes; caplen = len(data)
    origlen: int
    iface: int = 0  # interface index within the section (pcapng)
    comment: str | None = None  # pcapng opt_comment
    spb: bool = False  # pcapng: write as a Simple Packet Block
    obsolete: bool = False  # pcapng: write as an obsolete Packet Block (type 2)
    options: Sequence[Option] = ()  # pcapng: more EPB/PB options, after the comment


@dataclass
class Iface:
    """A pcapng Interface Description Block."""

    linktype: int = LINKTYPE_ETHERNET
    snaplen: int = 65535
    tsresol: int | None = None  # raw if_tsresol byte; None leaves the option out
    # if_tsoffset in seconds; readers (Wireshark too) add it to every timestamp,
    # so the writer stores ts_ns minus it and Rec.ts_ns stays what a reader reports.
    tsoffset: int | None = None
    name: str | None = None
    description: str | None = None
    options: Sequence[Option] = ()  # more IDB options, written after the ones above


@dataclass
class Isb:
    """An Interface Statistics Block; ts_units is in the interface's own units."""

    iface: int
    ts_units: int = 0
    options: Sequence[Option] = ()


@dataclass
class Nrb:
    """A Name Resolution Block: (IPv4 or IPv6 address, names) entries."""

    entries: Sequence[tuple[str, Sequence[str]]]
    options: Sequence[Option] = ()


@dataclass
class Custom:
    """A custom block (0x00000BAD when copyable, else 0x40000BAD)."""

    pen: int  # IANA Private Enterprise Number
    payload: bytes
    copyable: bool = True


@dataclass
class RawBlock:
    """Any block, e.g. of a type readers do not know; body is padded to 4 octets."""

    block_type: int
    body: bytes = b""


Item = Union[Rec, Iface, Isb, Nrb, Custom, RawBlock]


@dataclass
class Section:
    """A pcapng section: SHB, then one IDB per interface, then the items in order.

    An Iface among the items adds an interface (the next index) at that point.
    """

    interfaces: list[Iface] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    byteorder: str | None = None  # '<' or '>'; None uses write_pcapng's byteorder
    options: Sequence[Option] = ()  # SHB options (shb_hardware 2, shb_os 3, shb_userappl 4, ...)
    version: tuple[int, int] = (1, 0)
    known_length: bool = False  # False writes section length -1 ("not specified")


# --- timestamps -----------------------------------------------------------


def units_per_second(tsresol: int | None) -> int:
    """Units per second for a raw if_tsresol byte (None: option absent, microseconds)."""
    if tsresol is None:
        return 10**6
    if tsresol & 0x80:
        return 1 << (tsresol & 0x7F)
    return 10**tsresol


def ns_from_units(units: int, tsresol: int | None) -> int:
    """The timestamp in ns that a reader reports for a pcapng unit count (floor)."""
    return units * NS_PER_S // units_per_second(tsresol)


def _ceil_units(ts_ns: int, tsresol: int | None) -> int:
    return -(-ts_ns * units_per_second(tsresol) // NS_PER_S)


def units_from_ns(ts_ns: int, tsresol: int | None) -> int:
    """The smallest unit count that reads back as exactly ts_ns; ValueError if none does."""
    units = _ceil_units(ts_ns, tsresol)
    if ts_ns < 0 or ns_from_units(units, tsresol) != ts_ns:
        raise ValueError(f"{ts_ns} ns is not representable with if_tsresol {tsresol!r}")
    return units


def representable_ns(ts_ns: int, tsresol: int | None) -> int:
    """The largest timestamp <= ts_ns that resolution tsresol holds exactly."""
    units = _ceil_units(ts_ns, tsresol)
    at_or_above = ns_from_units(units, tsresol)
    return at_or_above if at_or_above == ts_ns else ns_from_units(units - 1, tsresol)


# --- pcap -----------------------------------------------------------------


def fcs_linktype_bits(fcs_len_words: int) -> int:
    """Upper linktype-field bits saying every frame ends in an FCS of that many
    16-bit words (libpcap's LT_FCS_DATALINK_EXT), for write_pcap's linktype_fcs_bits."""
    return ((fcs_len_words & 0xF) << 28) | 0x04000000


def write_pcap(
    path: str | os.PathLike,
    recs: Sequence[Rec],
    *,
    linktype: int = LINKTYPE_ETHERNET,
    snaplen: int = 65535,
    nanosecond: bool = False,
    byteorder: str = "<",
    version: tuple[int, int] = (2, 4),
    linktype_fcs_bits: int = 0,
) -> None:
    """Write a classic libpcap file; linktype_fcs_bits is OR-ed into the linktype field."""
    magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
    tsresol = 9 if nanosecond else 6
    frac_per_s = units_per_second(tsresol)
    with open(path, "wb") as out:
        out.write(
            struct.pack(
                byteorder + "IHHiIII",
                magic, version[0], version[1], 0, 0, snaplen, linktype | linktype_fcs_bits,
            )
        )
        for rec in recs:
            if (
                rec.ts_ns is None or rec.spb or rec.obsolete or rec.iface
                or rec.comment is not None or rec.options
            ):
                raise ValueError("a pcap record holds only a timestamp, origlen and data")
            sec, frac = divmod(units_from_ns(rec.ts_ns, tsresol), frac_per_s)
            out.write(struct.pack(byteorder + "IIII", sec, frac, len(rec.data), rec.origlen))
            out.write(rec.data)


# --- pcapng ---------------------------------------------------------------


def _pad4(value: bytes) -> bytes:
    return value + b"\0" * (-len(value) % 4)


def _block(bo: str, block_type: int, body: bytes) -> bytes:
    body = _pad4(body)
    total = 12 + len(body)
    return struct.pack(bo + "II", block_type, total) + body + struct.pack(bo + "I", total)


def _options(bo: str, options: Sequence[Option]) -> bytes:
    if not options:
        return b""
    encoded = []
    for code, value in options:
        raw = value.encode() if isinstance(value, str) else value
        encoded.append(struct.pack(bo + "HH", code, len(raw)) + _pad4(raw))
    encoded.append(struct.pack(bo + "HH", OPT_ENDOFOPT, 0))
    return b"".join(encoded)


def _shb(bo: str, section: Section, section_length: int) -> bytes:
    body = struct.pack(bo + "IHHq", BYTE_ORDER_MAGIC, *section.version, section_length)
    return _block(bo, SHB_TYPE, body + _options(bo, section.options))


def _idb(bo: str, iface: Iface) -> bytes:
    options: list[Option] = []
    if iface.name is not None:
        options.append((IF_NAME, iface.name))
    if iface.description is not None:
        options.append((IF_DESCRIPTION, iface.description))
    if iface.tsresol is not None:
        options.append((IF_TSRESOL, bytes([iface.tsresol])))
    if iface.tsoffset is not None:
        options.append((IF_TSOFFSET, struct.pack(bo + "q", iface.tsoffset)))
    options.extend(iface.options)
    body = struct.pack(bo + "HHI", iface.linktype, 0, iface.snaplen)
    return _block(bo, IDB_TYPE, body + _options(bo, options))


def _packet_block(bo: str, rec: Rec, ifaces: Sequence[Iface]) -> bytes:
    if not 0 <= rec.iface < len(ifaces):
        raise ValueError(f"record names interface {rec.iface}, section has {len(ifaces)} so far")
    options: list[Option] = [] if rec.comment is None else [(OPT_COMMENT, rec.comment)]
    options.extend(rec.options)
    if rec.spb:
        if rec.iface != 0 or rec.ts_ns is not None or options or rec.obsolete:
            raise ValueError("an SPB has interface 0 and no timestamp or options")
        # Readers take an SPB's captured length from origlen and IDB 0's snaplen,
        # not from the block length, so the data must be exactly that long.
        snaplen = ifaces[0].snaplen
        expected = rec.origlen if snaplen == 0 else min(rec.origlen, snaplen)
        if len(rec.data) != expected:
            raise ValueError(f"SPB data must be min(origlen, snaplen) = {expected} bytes")
        return _block(bo, SPB_TYPE, struct.pack(bo + "I", rec.origlen) + rec.data)
    if rec.ts_ns is None:
        raise ValueError("only an SPB may lack a timestamp")
    iface = ifaces[rec.iface]
    units = units_from_ns(rec.ts_ns - (iface.tsoffset or 0) * NS_PER_S, iface.tsresol)
    if units >= 1 << 64:
        raise ValueError(f"{rec.ts_ns} ns needs more than 64 bits of if_tsresol {iface.tsresol!r} units")
    ts_high, ts_low = units >> 32, units & 0xFFFFFFFF
    if rec.obsolete:
        drops_count = 0
        header = struct.pack(
            bo + "HHIIII", rec.iface, drops_count, ts_high, ts_low, len(rec.data), rec.origlen
        )
        block_type = PB_TYPE
    else:
        header = struct.pack(bo + "IIIII", rec.iface, ts_high, ts_low, len(rec.data), rec.origlen)
        block_type = EPB_TYPE
    return _block(bo, block_type, header + _pad4(rec.data) + _options(bo, options))


def _nrb(bo: str, nrb: Nrb) -> bytes:
    records = []
    for address, names in nrb.entries:
        ip = ipaddress.ip_address(address)
        record_type = NRB_RECORD_IPV4 if ip.version == 4 else NRB_RECORD_IPV6
        value = ip.packed + b"".join(name.encode() + b"\0" for name in names)
        records.append(struct.pack(bo + "HH", record_type, len(value)) + _pad4(value))
    records.append(struct.pack(bo + "HH", NRB_RECORD_END, 0))
    return _block(bo, NRB_TYPE, b"".join(records) + _options(bo, nrb.options))


def _item_block(bo: str, item: Item, ifaces: Sequence[Iface]) -> bytes:
    if isinstance(item, Rec):
        return _packet_block(bo, item, ifaces)
    if isinstance(item, Iface):
        return _idb(bo, item)
    if isinstance(item, Isb):
        body = struct.pack(bo + "III", item.iface, item.ts_units >> 32, item.ts_units & 0xFFFFFFFF)
        return _block(bo, ISB_TYPE, body + _options(bo, item.options))
    if isinstance(item, Nrb):
        return _nrb(bo, item)
    if isinstance(item, Custom):
        block_type = CUSTOM_COPYABLE_TYPE if item.copyable else CUSTOM_LOCAL_TYPE
        return _block(bo, block_type, struct.pack(bo + "I", item.pen) + item.payload)
    if isinstance(item, RawBlock):
        return _block(bo, item.block_type, item.body)
    raise TypeError(f"not a section item: {item!r}")


def write_pcapng(path: str | os.PathLike, sections: Sequence[Section], *, byteorder: str = "<") -> None:
    """Write a pcapng file, one SHB per section, streaming block by block."""
    with open(path, "wb") as out:
        for section in sections:
            bo = section.byteorder or byteorder
            shb_offset = out.tell()
            shb = _shb(bo, section, -1)
            out.write(shb)
            ifaces: list[Iface] = []
            for item in [*section.interfaces, *section.items]:
                if isinstance(item, Iface):
                    ifaces.append(item)
                out.write(_item_block(bo, item, ifaces))
            if section.known_length:
                end = out.tell()
                out.seek(shb_offset)
                out.write(_shb(bo, section, end - shb_offset - len(shb)))
                out.seek(end)


# --- random records -------------------------------------------------------

# 1/64 s is exact in us, ns, 10^-v (v >= 6) and 2^-n (n >= 6) units, so tie
# points on multiples of it coincide across files of different resolutions.
TIE_QUANTUM_NS = NS_PER_S // 64
TIE_POINTS = 64


def _tie_grid(start_ns: int, spread_ns: int) -> list[int]:
    # Depends only on start_ns and spread_ns, so files generated with the same
    # pair draw tie timestamps from the same points.
    step = max(1, spread_ns // TIE_POINTS)
    if step >= TIE_QUANTUM_NS:
        step -= step % TIE_QUANTUM_NS
    first = -(-start_ns // step) * step
    return list(range(first, start_ns + spread_ns + 1, step)) or [start_ns]


def _frame_length(rng: random.Random, min_len: int, max_len: int) -> int:
    # Roughly the shape of real traffic: many ACK-sized frames, many full-MTU ones.
    pick = rng.random()
    if pick < 0.4:
        return rng.randint(min_len, min(max_len, min_len + 32))
    if pick < 0.7:
        return max_len
    return rng.randint(min_len, max_len)


def _ethernet_ipv4_tcp(rng: random.Random, origlen: int, caplen: int) -> bytes:
    """The first caplen bytes of an Ethernet/IPv4/TCP-looking frame of origlen bytes."""
    ethernet = rng.randbytes(12) + b"\x08\x00"
    ipv4 = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0, min(max(origlen - 14, 0), 0xFFFF), rng.getrandbits(16), 0x4000, 64, 6, 0,
        rng.randbytes(4), rng.randbytes(4),
    )
    tcp = struct.pack(
        "!HHIIBBHHH",
        rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(32),
        0x50, 0x18, rng.getrandbits(16), 0, 0,
    )
    headers = ethernet + ipv4 + tcp
    return headers[:caplen] + rng.randbytes(max(0, caplen - len(headers)))


def random_recs(
    rng: random.Random,
    n: int,
    *,
    start_ns: int,
    spread_ns: int,
    nanosecond_precision: bool = False,
    tsresol: int | None = None,
    out_of_order: float = 0.0,
    ties: float = 0.0,
    min_len: int = 40,
    max_len: int = 1514,
    snaplen: int | None = None,
) -> list[Rec]:
    """n records with timestamps in [start_ns, start_ns + spread_ns] (floored to the resolution).

    Resolution: tsresol (a raw if_tsresol byte) when given, else ns or us by
    nanosecond_precision. Timestamps are sorted, then a fraction ``ties`` of
    records share a timestamp (half copy their predecessor's, half take a
    point of a grid shared by every call with the same start_ns/spread_ns, so
    ties also happen across files; across resolutions that needs spread_ns >= 1 s),
    and a fraction ``out_of_order`` swap timestamps with one of the 8 records before.
    Records longer than snaplen are truncated to it.
    """
    resolution = tsresol if tsresol is not None else (9 if nanosecond_precision else 6)
    grid = _tie_grid(start_ns, spread_ns)
    stamps = []
    copies_predecessor = []
    for index in range(n):
        tie = rng.random() < ties
        copy = tie and index > 0 and rng.random() < 0.5
        raw = rng.choice(grid) if tie and not copy else start_ns + rng.randint(0, spread_ns)
        stamps.append(representable_ns(raw, resolution))
        copies_predecessor.append(copy)
    stamps.sort()
    for index in range(1, n):
        if copies_predecessor[index]:
            stamps[index] = stamps[index - 1]
    for index in range(1, n):
        if rng.random() < out_of_order:
            earlier = rng.randint(max(0, index - 8), index - 1)
            stamps[index], stamps[earlier] = stamps[earlier], stamps[index]

    recs = []
    for ts_ns in stamps:
        origlen = _frame_length(rng, min_len, max_len)
        caplen = origlen if snaplen is None else min(origlen, snaplen)
        recs.append(Rec(ts_ns, _ethernet_ipv4_tcp(rng, origlen, caplen), origlen))
    return recs


# --- file kinds -----------------------------------------------------------


class Kind(NamedTuple):
    container: str  # 'pcap' or 'pcapng'
    tsresol: int | None  # raw if_tsresol byte the kind's timestamps use (pcap: 6 or 9)
    byteorder: str


KINDS: dict[str, Kind] = {
    "pcap-us-le": Kind("pcap", 6, "<"),
    "pcap-us-be": Kind("pcap", 6, ">"),
    "pcap-ns-le": Kind("pcap", 9, "<"),
    "pcap-ns-be": Kind("pcap", 9, ">"),
    "pcapng-le": Kind("pcapng", None, "<"),
    "pcapng-be": Kind("pcapng", None, ">"),
    "pcapng-ns-le": Kind("pcapng", 9, "<"),
    "pcapng-ns-be": Kind("pcapng", 9, ">"),
    "pcapng-bin20-le": Kind("pcapng", 0x80 | 20, "<"),
    "pcapng-bin20-be": Kind("pcapng", 0x80 | 20, ">"),
}
DEFAULT_MERGE_KINDS = ("pcap-us-le", "pcap-ns-be", "pcapng-le", "pcapng-ns-be", "pcapng-bin20-le")


def write_kind(
    path: str | os.PathLike,
    kind: str,
    recs: Sequence[Rec],
    *,
    linktype: int = LINKTYPE_ETHERNET,
    snaplen: int = 65535,
) -> None:
    """Write recs as one of KINDS (pcapng: one section, one interface)."""
    spec = KINDS[kind]
    if spec.container == "pcap":
        write_pcap(
            path, recs, linktype=linktype, snaplen=snaplen,
            nanosecond=spec.tsresol == 9, byteorder=spec.byteorder,
        )
    else:
        section = Section([Iface(linktype, snaplen, spec.tsresol)], list(recs))
        write_pcapng(path, [section], byteorder=spec.byteorder)


def make_merge_inputs(
    dirpath: str | os.PathLike,
    rng: random.Random,
    *,
    files: int,
    packets_per_file: int,
    kinds: Sequence[str] = DEFAULT_MERGE_KINDS,
    start_ns: int = DEFAULT_START_NS,
    spread_ns: int = 60 * NS_PER_S,
    out_of_order: float = 0.0,
    ties: float = 0.0,
    snaplen: int | None = None,
    linktype: int = LINKTYPE_ETHERNET,
) -> list[Path]:
    """Write `files` files cycling through kinds, all over the same time span.

    Tests that need the records themselves call random_recs and write_kind.
    """
    paths = []
    for index in range(files):
        kind = kinds[index % len(kinds)]
        recs = random_recs(
            rng, packets_per_file, start_ns=start_ns, spread_ns=spread_ns,
            tsresol=KINDS[kind].tsresol, out_of_order=out_of_order, ties=ties, snaplen=snaplen,
        )
        suffix = ".pcapng" if KINDS[kind].container == "pcapng" else ".pcap"
        path = Path(dirpath) / f"{index:03d}-{kind}{suffix}"
        write_kind(path, kind, recs, linktype=linktype, snaplen=snaplen or 65535)
        paths.append(path)
    return paths


# --- damage ---------------------------------------------------------------


class _PacketPosition(NamedTuple):
    offset: int  # start of the record header or block
    length: int  # record header + data, or the whole block
    caplen_offset: int | None  # where caplen is stored; None for an SPB
    byteorder: str


def _pcap_positions(buf: bytes, bo: str) -> list[_PacketPosition]:
    positions = []
    offset = PCAP_GLOBAL_HEADER_LEN
    while offset + PCAP_RECORD_HEADER_LEN <= len(buf):
        (caplen,) = struct.unpack_from(bo + "I", buf, offset + 8)
        positions.append(_PacketPosition(offset, PCAP_RECORD_HEADER_LEN + caplen, offset + 8, bo))
        offset += PCAP_RECORD_HEADER_LEN + caplen
    return positions


def _pcapng_positions(buf: bytes) -> list[_PacketPosition]:
    positions = []
    offset = 0
    bo = "<"
    while offset + 12 <= len(buf):
        if struct.unpack_from("<I", buf, offset)[0] == SHB_TYPE:  # same in both byte orders
            (magic,) = struct.unpack_from("<I", buf, offset + 8)
            bo = "<" if magic == BYTE_ORDER_MAGIC else ">"
        block_type, total = struct.unpack_from(bo + "II", buf, offset)
        if block_type in (EPB_TYPE, PB_TYPE):
            # EPB: type, length, interface, ts high, ts low, caplen.
            # PB: type, length, interface u16 + drops u16, ts high, ts low, caplen.
            positions.append(_PacketPosition(offset, total, offset + 20, bo))
        elif block_type == SPB_TYPE:
            positions.append(_PacketPosition(offset, total, None, bo))
        offset += total
    return positions


def _packet_positions(buf: bytes) -> list[_PacketPosition]:
    if struct.unpack_from("<I", buf)[0] == SHB_TYPE:
        return _pcapng_positions(buf)
    for bo in "<>":
        if struct.unpack_from(bo + "I", buf)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            return _pcap_positions(buf, bo)
    raise ValueError("neither a pcap nor a pcapng file")


def damage(path: str | os.PathLike, kind: str, rng: random.Random | None = None) -> int:
    """Damage a file written by this module in place; return the damaged offset.

    - 'truncate-last': cut inside the last packet record (pcap record, EPB,
      SPB or PB; any blocks after it go too); returns the record's start.
    - 'garbage-tail': append 1-64 random bytes; returns where they start.
    - 'impossible-length': set one EPB/PB/pcap record's caplen to 0x7fffffff;
      returns the record's start.
    rng picks the cut, the bytes and the record; None means random.Random(0).
    """
    rng = random.Random(0) if rng is None else rng
    buf = Path(path).read_bytes()
    positions = _packet_positions(buf)
    if kind == "truncate-last":
        last = positions[-1]
        with open(path, "r+b") as out:
            out.truncate(last.offset + rng.randint(1, last.length - 1))
        return last.offset
    if kind == "garbage-tail":
        garbage = bytearray(rng.randbytes(rng.randint(1, 64)))
        # A length of 0xffffffff (pcap caplen at +8, pcapng block length at +4)
        # is invalid in either byte order, so the garbage can never parse as a
        # record; garbage too short to hold it is a truncated header instead.
        length_at = 4 if struct.unpack_from("<I", buf)[0] == SHB_TYPE else 8
        if len(garbage) >= length_at + 4:
            garbage[length_at:length_at + 4] = b"\xff\xff\xff\xff"
        with open(path, "ab") as out:
            out.write(garbage)
        return len(buf)
    if kind == "impossible-length":
        target = rng.choice([p for p in positions if p.caplen_offset is not None])
        with open(path, "r+b") as out:
            out.seek(target.caplen_offset)
            out.write(struct.pack(target.byteorder + "I", IMPOSSIBLE_CAPLEN))
        return target.offset
    raise ValueError(f"unknown damage kind {kind!r}")
