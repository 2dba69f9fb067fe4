"""The pcap and pcapng readers and writers, checked against files that capgen (an independent
implementation of both formats) writes, and against Wireshark's tshark when it is installed."""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

import capgen
from capgen import (
    DEFAULT_START_NS,
    KINDS,
    NS_PER_S,
    Custom,
    Iface,
    Isb,
    Nrb,
    RawBlock,
    Rec,
    Section,
    damage,
    fcs_linktype_bits,
    random_recs,
    units_per_second,
    write_kind,
    write_pcap,
    write_pcapng,
)
from srp import __version__
from srp.capture import open_capture
from srp.capture.model import BLOCK, Damage, Interface
from srp.capture.pcap import PcapWriter
from srp.capture.pcapng import PcapngWriter
from srp.errors import CaptureError

T0 = DEFAULT_START_NS
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
BIG_BUDGET = 1 << 20


# --- helpers --------------------------------------------------------------


class Unseekable(io.RawIOBase):
    """A download-like stream: read-only, not seekable, and returning short reads."""

    def __init__(self, payload: bytes, max_chunk: int = 7):
        self._payload = payload
        self._pos = 0
        self._max_chunk = max_chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self._max_chunk, len(self._payload) - self._pos)
        buffer[:size] = self._payload[self._pos:self._pos + size]
        self._pos += size
        return size


def plain(record: tuple) -> tuple:
    """A record tuple with its data and options as bytes (readers may hand out memoryviews
    into their chunk; see srp.capture.model)."""
    ts, iface, origlen, data, options = record
    assert isinstance(data, (bytes, memoryview)), type(data)
    return ts, iface, origlen, bytes(data), None if options is None else bytes(options)


def read_all(source, budget: int = BIG_BUDGET):
    """Open `source` and read it to the end: (reader, every record tuple)."""
    reader = open_capture(source)
    records = []
    for _ in range(10**6):
        batch = reader.read_batch(budget)
        if batch is None:
            return reader, records
        records.extend(map(plain, batch))
    raise AssertionError("read_batch never returned None")


def expected(recs, iface_base: int = 0):
    """What a reader must return for capgen records: (ts_ns, iface, origlen, data)."""
    return [(r.ts_ns, iface_base + r.iface, r.origlen, r.data) for r in recs]


def essentials(records):
    """Record tuples without their options."""
    return [record[:4] for record in records]


def recs_for(kind: str, n: int = 40, seed: int = 0, snaplen: int | None = None):
    return random_recs(random.Random(seed), n, start_ns=T0, spread_ns=30 * NS_PER_S,
                       tsresol=KINDS[kind].tsresol, snaplen=snaplen)


def write_kind_file(tmp_path: Path, kind: str, recs, **kwargs) -> Path:
    suffix = ".pcap" if KINDS[kind].container == "pcap" else ".pcapng"
    path = tmp_path / f"{kind}{suffix}"
    write_kind(path, kind, recs, **kwargs)
    return path


# --- every kind, every way of reading --------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_reads_back_exactly(tmp_path, kind):
    """Timestamps, origlen, data of every record, and the interface's link type, snaplen and
    timestamp units, are exactly what capgen wrote, for every KINDS entry; no damage."""
    recs = recs_for(kind, snaplen=300)
    assert any(len(r.data) < r.origlen for r in recs)  # some records are cut by the snaplen
    path = write_kind_file(tmp_path, kind, recs, linktype=105, snaplen=300)

    reader, records = read_all(path)

    assert essentials(records) == expected(recs)
    assert reader.damage is None
    assert len(reader.interfaces) == 1
    interface = reader.interfaces[0]
    assert (interface.linktype, interface.snaplen) == (105, 300)
    assert interface.ts_units == units_per_second(KINDS[kind].tsresol)
    assert interface.ts_offset == 0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_path_file_object_and_unseekable_stream_agree(tmp_path, kind):
    """Reading from a path, an open file, io.BytesIO and an unseekable stream that returns
    short reads gives the same interfaces and records."""
    recs = recs_for(kind, n=25, seed=1)
    path = write_kind_file(tmp_path, kind, recs)
    payload = path.read_bytes()

    from_path = read_all(path)
    with open(path, "rb") as file:
        from_file = read_all(file)
    from_bytesio = read_all(io.BytesIO(payload))
    from_stream = read_all(Unseekable(payload), budget=100)

    assert essentials(from_path[1]) == expected(recs)
    for reader, records in (from_file, from_bytesio, from_stream):
        assert records == from_path[1]
        assert reader.interfaces == from_path[0].interfaces
        assert reader.damage is None


@pytest.mark.parametrize("kind", ["pcap-us-le", "pcap-ns-be", "pcapng-le", "pcapng-bin20-be"])
@pytest.mark.parametrize("budget", [1, 5, 100, 1500])
def test_small_budgets_give_the_same_records(tmp_path, kind, budget):
    """A budget smaller than one record (even 1 byte) still returns every record, the same
    ones a large budget returns, from a path and from an unseekable stream."""
    recs = recs_for(kind, n=20, seed=2)
    path = write_kind_file(tmp_path, kind, recs)

    _, large = read_all(path, BIG_BUDGET)
    small_reader, small = read_all(path, budget)
    _, streamed = read_all(Unseekable(path.read_bytes()), budget)

    assert essentials(large) == expected(recs)
    assert small == large
    assert streamed == large
    assert small_reader.damage is None


def test_a_record_larger_than_the_budget(tmp_path):
    """One 60,000-byte record read with a budget of 1,000 bytes comes back whole."""
    recs = [Rec(T0, bytes(range(256)) * 234 + b"x" * 96, 60_000), Rec(T0 + 1000, b"y" * 60, 60)]
    for kind in ("pcap-ns-le", "pcapng-be"):
        path = write_kind_file(tmp_path, kind, recs)
        _, records = read_all(path, 1000)
        assert essentials(records) == expected(recs)


# --- pcapng structure ------------------------------------------------------


def test_sections_with_different_byte_orders(tmp_path):
    """Three sections (little, big, little endian), each with its own interfaces: every
    section's interfaces are appended to reader.interfaces, and a record's interface index
    is its section's first interface plus its index in the section."""
    rng = random.Random(3)
    sections, all_recs, ifaces = [], [], []
    start = T0
    for byteorder, section_ifaces in (
        ("<", [Iface(1, 65535, 9), Iface(105, 2000, None)]),
        (">", [Iface(113, 4000, 0x80 | 20)]),
        ("<", [Iface(1, 1500, 3), Iface(1, 9000, 6)]),
    ):
        items = []
        for index, iface in enumerate(section_ifaces):
            for rec in random_recs(rng, 5, start_ns=start, spread_ns=NS_PER_S,
                                   tsresol=iface.tsresol if iface.tsresol is not None else 6,
                                   max_len=min(1514, iface.snaplen)):
                rec.iface = index
                items.append(rec)
                all_recs.append((len(ifaces) + index, rec))
            start += 2 * NS_PER_S
        sections.append(Section(list(section_ifaces), items, byteorder=byteorder))
        ifaces.extend(section_ifaces)
    path = tmp_path / "sections.pcapng"
    write_pcapng(path, sections)

    reader, records = read_all(path)

    assert essentials(records) == [(r.ts_ns, i, r.origlen, r.data) for i, r in all_recs]
    assert [(i.linktype, i.snaplen, i.ts_units) for i in reader.interfaces] == [
        (i.linktype, i.snaplen, units_per_second(i.tsresol)) for i in ifaces]
    assert reader.damage is None


def test_big_endian_section_with_known_length(tmp_path):
    """A section header that states its length (not -1) reads the same."""
    recs = recs_for("pcapng-ns-be", n=10)
    path = tmp_path / "known.pcapng"
    write_pcapng(path, [Section([Iface(1, 65535, 9)], recs, byteorder=">", known_length=True),
                        Section([Iface(1, 65535, 9)], recs, known_length=True)])
    reader, records = read_all(path)
    assert essentials(records) == expected(recs) + expected(recs, iface_base=1)
    assert reader.damage is None


def test_interface_described_mid_section(tmp_path):
    """An IDB after packets adds the next interface; later records may name it and read
    with its own timestamp resolution and link type."""
    first = recs_for("pcapng-le", n=5)
    second = random_recs(random.Random(4), 5, start_ns=T0 + 40 * NS_PER_S, spread_ns=NS_PER_S,
                         tsresol=0x80 | 30)
    for rec in second:
        rec.iface = 1
    path = tmp_path / "mid.pcapng"
    write_pcapng(path, [Section([Iface(1, 65535)], [*first, Iface(228, 1600, 0x80 | 30),
                                                    *second, *first])])

    reader, records = read_all(path)

    assert essentials(records) == expected(first) + expected(second) + expected(first)
    assert [(i.linktype, i.snaplen, i.ts_units) for i in reader.interfaces] == [
        (1, 65535, 10**6), (228, 1600, 2**30)]


@pytest.mark.parametrize("snaplen", [0, 64, 65535])
def test_simple_and_obsolete_packet_blocks(tmp_path, snaplen):
    """An SPB reads with no timestamp, interface 0 and min(origlen, snaplen) bytes (all of
    them when snaplen is 0); an obsolete Packet Block reads like an EPB."""
    rng = random.Random(5)
    items = []
    for index in range(12):
        origlen = rng.randint(40, 200)
        if index % 3 == 0:
            caplen = origlen if snaplen == 0 else min(origlen, snaplen)
            items.append(Rec(None, rng.randbytes(caplen), origlen, spb=True))
        else:
            caplen = origlen if snaplen == 0 else min(origlen, snaplen)
            items.append(Rec(T0 + index * 1000, rng.randbytes(caplen), origlen,
                             obsolete=index % 3 == 1, iface=index % 2))
    for byteorder in "<>":
        path = tmp_path / f"spb{byteorder == '<'}.pcapng"
        write_pcapng(path, [Section([Iface(1, snaplen), Iface(105, snaplen)], items,
                                    byteorder=byteorder)])
        reader, records = read_all(path)
        assert essentials(records) == expected(items)
        assert reader.damage is None


def test_non_packet_blocks_are_skipped_or_passed_on(tmp_path):
    """NRB, ISB, do-not-copy custom blocks and blocks of unknown types, before the first
    packet, between packets and after the last, are skipped and are not damage. Copyable
    custom blocks come as BLOCK records where they stand; decryption secrets come as BLOCK
    records right before the next packet, with its timestamp (or none after the last)."""
    recs = recs_for("pcapng-ns-be", n=6)
    secrets = struct.pack("<II", 0x544C534B, 8) + b"CLIENT_R"   # as the reader gives it: LE
    others = [
        Nrb([("10.0.0.1", ["a.example"]), ("2001:db8::1", ["b.example", "c"])],
            options=[(1, "nrb comment")]),
        Isb(0, ts_units=12345, options=[(1, "isb comment")]),
        Custom(32473, b"custom payload", copyable=True),
        Custom(32473, b"local", copyable=False),
        RawBlock(0x12345678, b"unknown block body"),
        RawBlock(0x80000001, b""),           # a local-use block type
    ]
    items = [*others]
    for rec in recs:
        items += [rec, others[len(items) % len(others)]]
    items += [RawBlock(0x0000000A, b""), recs[0], *others]
    for byteorder in "<>":
        path = tmp_path / f"others{byteorder == '<'}.pcapng"
        secrets_body = (struct.pack(byteorder + "II", 0x544C534B, 8) + b"CLIENT_R")
        items[-len(others) - 2] = RawBlock(0x0000000A, secrets_body)
        write_pcapng(path, [Section([Iface(1, 65535, 9)], items, byteorder=byteorder)])
        reader, records = read_all(path)
        packets = [r for r in records if r[1] != BLOCK]
        blocks = [(r[2], r[3]) for r in records if r[1] == BLOCK]
        assert essentials(packets) == expected(recs + [recs[0]])
        custom = (0x00000BAD, struct.pack("<I", 32473) + b"custom payload\x00\x00")
        assert blocks == [custom if isinstance(item, Custom) else (0x0000000A, secrets)
                          for item in items
                          if isinstance(item, Custom) and item.copyable
                          or isinstance(item, RawBlock) and item.block_type == 0x0000000A]
        position = next(i for i, r in enumerate(records) if r[1] == BLOCK and r[2] == 0x0A)
        assert records[position][0] == recs[0].ts_ns   # it travels with the next packet
        assert records[position + 1][:4] == expected([recs[0]])[0]
        assert reader.blocks_read == len(blocks)
        assert reader.damage is None
        assert len(reader.interfaces) == 1


@pytest.mark.parametrize("tsoffset", [3600, -86400])
def test_if_tsoffset_is_added_to_timestamps(tmp_path, tsoffset):
    """if_tsoffset (seconds) is added to every timestamp; the interface records it in
    ts_offset and leaves it out of its options."""
    recs = recs_for("pcapng-ns-le", n=10)
    for byteorder in "<>":
        path = tmp_path / f"off{byteorder == '<'}.pcapng"
        write_pcapng(path, [Section([Iface(1, 65535, 9, tsoffset=tsoffset, name="eth0")], recs,
                                    byteorder=byteorder)])
        reader, records = read_all(path)
        assert essentials(records) == expected(recs)
        (interface,) = reader.interfaces
        assert interface.ts_offset == tsoffset
        assert 14 not in [code for code, _ in interface.options]
        assert (2, b"eth0") in interface.options


@pytest.mark.parametrize("tsresol", [None, 0, 3, 6, 9, 0x80 | 0, 0x80 | 10, 0x80 | 20, 0x80 | 30])
def test_timestamp_resolutions(tmp_path, tsresol):
    """if_tsresol powers of 10 and of 2: the reader reports floor(units * 1e9 / per_second)."""
    recs = random_recs(random.Random(6), 20, start_ns=T0, spread_ns=100 * NS_PER_S,
                       tsresol=tsresol if tsresol is not None else 6)
    path = tmp_path / "res.pcapng"
    write_pcapng(path, [Section([Iface(1, 65535, tsresol)], recs)])
    reader, records = read_all(path)
    assert essentials(records) == expected(recs)
    assert reader.interfaces[0].ts_units == units_per_second(tsresol)


def le_options(*options) -> bytes:
    """A little-endian option list with opt_endofopt, built here with struct."""
    out = b""
    for code, value in options:
        out += struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    return out + b"\0\0\0\0"


@pytest.mark.parametrize("byteorder", "<>")
def test_packet_and_interface_options_come_back_little_endian(tmp_path, byteorder):
    """EPB options (comment, epb_flags u32, epb_packetid u64) and IDB options (if_name,
    if_speed u64) are returned re-encoded little-endian, whatever the section's byte order."""
    rec = Rec(T0, b"\x01" * 60, 60, comment="hi",
              options=[(2, struct.pack(byteorder + "I", 0x12345678)),
                       (5, struct.pack(byteorder + "Q", 0x0102030405060708))])
    plain = Rec(T0 + 1000, b"\x02" * 61, 61)
    iface = Iface(1, 65535, 9, name="eth0",
                  options=[(8, struct.pack(byteorder + "Q", 10**9))])
    path = tmp_path / "opts.pcapng"
    write_pcapng(path, [Section([iface], [rec, plain], byteorder=byteorder)])

    reader, records = read_all(path)

    assert records[0][4] == le_options((1, b"hi"), (2, struct.pack("<I", 0x12345678)),
                                       (5, struct.pack("<Q", 0x0102030405060708)))
    assert records[1][4] is None
    assert reader.interfaces[0].options == ((2, b"eth0"), (9, b"\x09"),
                                            (8, struct.pack("<Q", 10**9)))


def test_files_without_records(tmp_path):
    """A pcap header alone, and a pcapng SHB + IDB alone, are captures with no records and
    no damage."""
    pcap, pcapng = tmp_path / "empty.pcap", tmp_path / "empty.pcapng"
    write_pcap(pcap, [])
    write_pcapng(pcapng, [Section([Iface(1, 65535)], [])])
    for path in (pcap, pcapng):
        reader, records = read_all(path)
        assert records == [] and reader.damage is None and len(reader.interfaces) == 1


def test_interfaces_after_a_large_block_before_the_first_packet(tmp_path):
    """A file's own interfaces are those described right after its section header (as
    mergecap counts them); one described after another block, even a 200 kB one, is known
    once it has been read."""
    recs = recs_for("pcapng-le", n=3)
    path = tmp_path / "late.pcapng"
    write_pcapng(path, [Section([Iface(1, 65535), Iface(113, 200)],
                                [RawBlock(0x12345678, b"z" * 200_000), Iface(105, 100), *recs])])
    reader = open_capture(path)
    assert [i.linktype for i in reader.interfaces] == [1, 113]
    reader, records = read_all(path)
    assert [i.linktype for i in reader.interfaces] == [1, 113, 105]
    assert essentials(records) == expected(recs)


@pytest.mark.parametrize("payload", [
    b"", b"hello, this is a text file\n", b"\xd4\xc3\xb2\xa1\x02\x00",  # short pcap header
    b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00BADMAGIC" + bytes(16),  # pcapng with a bad magic
])
def test_not_a_capture_raises_capture_error(tmp_path, payload):
    """Empty input, text, a truncated pcap header and a bad pcapng section header are not
    captures: CaptureError, from a path and from a stream."""
    path = tmp_path / "bad.bin"
    path.write_bytes(payload)
    for source in (path, io.BytesIO(payload)):
        with pytest.raises(CaptureError):
            read_all(source)


def test_missing_file_raises_capture_error(tmp_path):
    with pytest.raises(CaptureError, match="missing.pcap"):
        read_all(tmp_path / "missing.pcap")


# --- classic pcap details ---------------------------------------------------


def pcap_with_swapped_lengths(path: Path, recs, minor: int, byteorder: str = "<") -> None:
    """A pcap file as writers before 2.3 wrote it: origlen before caplen in each header."""
    with open(path, "wb") as out:
        out.write(struct.pack(byteorder + "IHHiIII", capgen.PCAP_MAGIC_US, 2, minor, 0, 0,
                              65535, 1))
        for rec in recs:
            sec, usec = divmod(rec.ts_ns // 1000, 10**6)
            out.write(struct.pack(byteorder + "IIII", sec, usec, rec.origlen, len(rec.data)))
            out.write(rec.data)


@pytest.mark.parametrize("byteorder", "<>")
def test_pcap_version_2_2_lengths_swapped(tmp_path, byteorder):
    """Version 2.2 headers hold origlen, then caplen; both are read into their places."""
    recs = recs_for("pcap-us-le", n=15, snaplen=100)
    assert any(len(r.data) < r.origlen for r in recs)
    path = tmp_path / "v22.pcap"
    pcap_with_swapped_lengths(path, recs, minor=2, byteorder=byteorder)
    reader, records = read_all(path)
    assert essentials(records) == expected(recs)
    assert reader.damage is None


def test_pcap_version_2_3_swaps_only_when_caplen_exceeds_origlen(tmp_path):
    """Version 2.3 files come either way: a header whose caplen exceeds origlen is swapped."""
    recs = recs_for("pcap-us-le", n=15, snaplen=100)
    swapped, straight = tmp_path / "swapped.pcap", tmp_path / "straight.pcap"
    pcap_with_swapped_lengths(swapped, recs, minor=3)
    write_pcap(straight, recs, version=(2, 3))
    for path in (swapped, straight):
        _, records = read_all(path)
        assert essentials(records) == expected(recs)


@pytest.mark.parametrize("fcs_words", [1, 2])
@pytest.mark.parametrize("byteorder", "<>")
def test_pcap_fcs_bits_in_the_linktype_field(tmp_path, fcs_words, byteorder):
    """The FCS bits above the 16-bit link type are not part of it; they become if_fcslen
    (13) in bytes."""
    recs = recs_for("pcap-us-le", n=5)
    path = tmp_path / "fcs.pcap"
    write_pcap(path, recs, linktype=1, byteorder=byteorder,
               linktype_fcs_bits=fcs_linktype_bits(fcs_words))
    reader, records = read_all(path)
    assert essentials(records) == expected(recs)
    (interface,) = reader.interfaces
    assert interface.linktype == 1
    assert (13, bytes([2 * fcs_words])) in interface.options


# --- damage ---------------------------------------------------------------


DAMAGE_KINDS = ["truncate-last", "garbage-tail", "impossible-length"]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("how", DAMAGE_KINDS)
@pytest.mark.parametrize("budget", [1, BIG_BUDGET])
def test_damage_is_found_where_it_is(tmp_path, kind, how, budget):
    """Every capgen.damage kind: Damage.offset is the offset damage() returned, and every
    record before it is returned intact (nothing after it), with records_kept counting them."""
    for seed in range(3):
        recs = recs_for(kind, n=12, seed=seed)
        path = write_kind_file(tmp_path, kind, recs)
        starts = [p.offset for p in capgen._packet_positions(path.read_bytes())]
        offset = damage(path, how, random.Random(seed))
        good = [rec for rec, start in zip(recs, starts) if start < offset]

        reader, records = read_all(path, budget)

        assert essentials(records) == expected(good), seed
        assert isinstance(reader.damage, Damage), seed
        assert reader.damage.offset == offset, seed
        assert reader.damage.records_kept == len(good)
        assert str(offset) in reader.damage.describe(path.name)


def test_damage_in_a_later_section(tmp_path):
    """Damage in a second, big-endian section keeps the first section's records."""
    first, second = recs_for("pcapng-le", n=5), recs_for("pcapng-ns-be", n=5, seed=9)
    path = tmp_path / "two.pcapng"
    for seed in range(100):  # the first seed whose damaged record is in the second section
        write_pcapng(path, [Section([Iface(1, 65535)], first),
                            Section([Iface(1, 65535, 9)], second, byteorder=">")])
        starts = [p.offset for p in capgen._packet_positions(path.read_bytes())]
        offset = damage(path, "impossible-length", random.Random(seed))
        kept = [r for r, start in zip([*first, *second], starts) if start < offset]
        if len(kept) > 5:
            break
    reader, records = read_all(path)
    assert essentials(records) == expected(first) + expected(kept[5:], iface_base=1)
    assert reader.damage.offset == offset


# --- writers --------------------------------------------------------------


def sample_records(n: int = 30, seed: int = 7, ifaces: int = 1):
    """Record tuples with nanosecond timestamps, cut and uncut, over `ifaces` interfaces."""
    rng = random.Random(seed)
    records = []
    for index in range(n):
        origlen = rng.randint(20, 1514)
        data = rng.randbytes(min(origlen, rng.choice([origlen, 64])))
        records.append((T0 + rng.randint(0, 10**12), index % ifaces, origlen, data, None))
    return records


def write_with(writer, interfaces, records, cut=None) -> None:
    for interface in interfaces:
        writer.add_interface(interface)
    encode = writer.encoder(list(range(len(interfaces))), cut)
    writer.write_records(encode(records))


def write_pcap_file(path: Path, records, nanosecond: bool, cut=None) -> None:
    with open(path, "wb") as file:
        writer = PcapWriter(file, 1, 262144, nanosecond)
        write_with(writer, [Interface(1, 262144)], records, cut)


PCAPNG_IFACES = [
    Interface(1, 262144, 10**9, 0, ((2, b"eth0"), (9, b"\x09"))),
    Interface(105, 4000, 10**6, 0, ()),
    Interface(1, 65535, 2**20, 0, ((9, bytes([0x80 | 20])),)),
]


def write_pcapng_file(path: Path, records, cut=None) -> None:
    with open(path, "wb") as file:
        write_with(PcapngWriter(file), PCAPNG_IFACES, records, cut)


def floor_to(ts: int, per_second: int) -> int:
    return ts * per_second // NS_PER_S * NS_PER_S // per_second


@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_writer_reads_back(tmp_path, nanosecond):
    """PcapWriter output: little-endian 2.4 header with zone/sigfigs 0, the records (ts cut
    to microseconds in a microsecond file), and -s style cutting that keeps origlen."""
    records = sample_records()
    path = tmp_path / "w.pcap"
    write_pcap_file(path, records, nanosecond)
    header = struct.unpack_from("<IHHiIII", path.read_bytes())
    assert header == (0xA1B23C4D if nanosecond else 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    reader, back = read_all(path)
    step = 1 if nanosecond else 1000
    assert essentials(back) == [(ts // step * step, 0, origlen, data)
                                for ts, _, origlen, data, _ in records]
    assert reader.interfaces[0].ts_units == (10**9 if nanosecond else 10**6)

    write_pcap_file(path, records, nanosecond, cut=50)
    _, cut_back = read_all(path)
    assert [(r[2], r[3]) for r in cut_back] == [(origlen, data[:50])
                                                for _, _, origlen, data, _ in records]


def test_pcapng_writer_reads_back(tmp_path):
    """PcapngWriter output: one section naming srp-pcap and its version, the interfaces as
    given, each record's timestamp floored to its interface's units, options kept."""
    records = sample_records(ifaces=3)
    comment = struct.pack("<HH", 1, 5) + b"hello\0\0\0" + b"\0\0\0\0"
    records[3] = records[3][:4] + (comment,)
    path = tmp_path / "w.pcapng"
    write_pcapng_file(path, records)
    assert f"srp-pcap {__version__}".encode() in path.read_bytes()[:100]

    reader, back = read_all(path)

    assert reader.interfaces == PCAPNG_IFACES
    assert back == [(floor_to(ts, PCAPNG_IFACES[i].ts_units), i, origlen, data, options)
                    for ts, i, origlen, data, options in records]
    assert reader.damage is None


def tshark_fields(path: Path) -> list[tuple[int, int]]:
    """(timestamp in ns, frame length) of every frame, as tshark reads the file."""
    run = subprocess.run([TSHARK, "-r", str(path), "-T", "fields",
                          "-e", "frame.time_epoch", "-e", "frame.len"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = []
    for line in run.stdout.splitlines():
        epoch, length = line.split("\t")
        rows.append((int(Decimal(epoch) * NS_PER_S), int(length)))
    return rows


@needs_tshark
@pytest.mark.parametrize("fmt", ["pcap", "nsecpcap", "pcapng"])
def test_tshark_reads_our_output(tmp_path, fmt):
    """tshark accepts what our writers write, with the same frames, times and lengths."""
    records = sample_records(n=40, ifaces=3 if fmt == "pcapng" else 1)
    path = tmp_path / f"w.{fmt}"
    if fmt == "pcapng":
        write_pcapng_file(path, records)
        want = [(floor_to(ts, PCAPNG_IFACES[i].ts_units), origlen)
                for ts, i, origlen, _, _ in records]
    else:
        write_pcap_file(path, records, nanosecond=fmt == "nsecpcap")
        step = 1 if fmt == "nsecpcap" else 1000
        want = [(ts // step * step, origlen) for ts, _, origlen, _, _ in records]
    assert tshark_fields(path) == want
