"""Checks of the synthetic capture generator itself, against the format specs
(read back here with struct) and, when installed, against Wireshark's tshark."""

import random
import shutil
import struct
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capgen import (
    DEFAULT_START_NS,
    IMPOSSIBLE_CAPLEN,
    KINDS,
    Custom,
    Iface,
    Isb,
    Nrb,
    RawBlock,
    Rec,
    Section,
    damage,
    fcs_linktype_bits,
    make_merge_inputs,
    ns_from_units,
    random_recs,
    representable_ns,
    units_from_ns,
    write_kind,
    write_pcap,
    write_pcapng,
)

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

T0 = DEFAULT_START_NS


def pcapng_blocks(buf):
    """(offset, type, total length, byte order) of every block, following SHB byte orders."""
    blocks, offset, bo = [], 0, "<"
    while offset < len(buf):
        if struct.unpack_from("<I", buf, offset)[0] == 0x0A0D0D0A:
            bo = "<" if struct.unpack_from("<I", buf, offset + 8)[0] == 0x1A2B3C4D else ">"
        block_type, total = struct.unpack_from(bo + "II", buf, offset)
        assert struct.unpack_from(bo + "I", buf, offset + total - 4)[0] == total
        blocks.append((offset, block_type, total, bo))
        offset += total
    return blocks


def pcap_record_offsets(recs):
    offsets, offset = [], 24
    for rec in recs:
        offsets.append(offset)
        offset += 16 + len(rec.data)
    return offsets


# --- pcap -----------------------------------------------------------------


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("bo", ["<", ">"])
def test_pcap_header_and_records(tmp_path, nanosecond, bo):
    recs = [Rec(T0 + 123_456_000, b"\x01" * 60, 60), Rec(T0 + 2_000_001_000, b"\x02" * 30, 1500)]
    path = tmp_path / "f.pcap"
    write_pcap(path, recs, linktype=105, snaplen=30000, nanosecond=nanosecond, byteorder=bo)
    buf = path.read_bytes()

    assert len(buf) == 24 + 16 * 2 + 90
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    assert struct.unpack_from(bo + "IHHiIII", buf) == (magic, 2, 4, 0, 0, 30000, 105)
    second = (T0 // 10**9, 123_456_000 if nanosecond else 123_456, 60, 60)
    assert struct.unpack_from(bo + "IIII", buf, 24) == second
    third = (T0 // 10**9 + 2, 1_000 if nanosecond else 1, 30, 1500)
    assert struct.unpack_from(bo + "IIII", buf, 24 + 16 + 60) == third
    assert buf[24 + 16 + 60 + 16:] == b"\x02" * 30


def test_pcap_version_and_fcs_bits(tmp_path):
    path = tmp_path / "f.pcap"
    write_pcap(path, [], version=(2, 3), linktype_fcs_bits=fcs_linktype_bits(2))
    assert struct.unpack_from("<HHiIII", path.read_bytes(), 4) == (2, 3, 0, 0, 65535, 0x24000001)


@pytest.mark.parametrize(
    "rec, kwargs",
    [
        (Rec(T0 + 1, b"x", 1), {}),  # ns timestamp in a microsecond file
        (Rec(T0, b"x", 1, comment="no comments in pcap"), {"nanosecond": True}),
        (Rec(None, b"x", 1), {}),
    ],
)
def test_pcap_refuses_what_it_cannot_hold(tmp_path, rec, kwargs):
    with pytest.raises(ValueError):
        write_pcap(tmp_path / "f.pcap", [rec], **kwargs)


# --- pcapng ---------------------------------------------------------------


@pytest.mark.parametrize("bo", ["<", ">"])
def test_pcapng_layout(tmp_path, bo):
    iface = Iface(linktype=1, snaplen=9000, tsresol=9, name="eth0")
    rec = Rec(T0 + 7, b"\xaa" * 61, 70, comment="hi")
    section = Section([iface], [rec], options=[(4, "capgen")], known_length=True)
    path = tmp_path / "f.pcapng"
    write_pcapng(path, [section], byteorder=bo)
    buf = path.read_bytes()

    (shb_at, shb, shb_len, _), (idb_at, idb, _, _), (epb_at, epb, epb_len, _) = pcapng_blocks(buf)
    assert (shb, idb, epb) == (0x0A0D0D0A, 1, 6)
    magic, major, minor, section_length = struct.unpack_from(bo + "IHHq", buf, 8)
    assert (magic, major, minor) == (0x1A2B3C4D, 1, 0)
    assert section_length == len(buf) - shb_len
    assert struct.unpack_from(bo + "HHI", buf, idb_at + 8) == (1, 0, 9000)
    # if_name "eth0", then if_tsresol 9, then opt_endofopt.
    assert buf[idb_at + 16:idb_at + 36] == (
        struct.pack(bo + "HH", 2, 4) + b"eth0"
        + struct.pack(bo + "HH", 9, 1) + b"\x09\0\0\0"
        + struct.pack(bo + "HH", 0, 0)
    )
    interface, high, low, caplen, origlen = struct.unpack_from(bo + "IIIII", buf, epb_at + 8)
    assert (interface, (high << 32) | low, caplen, origlen) == (0, T0 + 7, 61, 70)
    data_end = epb_at + 28 + 64  # 61 bytes padded to 64
    assert buf[epb_at + 28:data_end] == b"\xaa" * 61 + b"\0" * 3
    assert buf[data_end:data_end + 8] == struct.pack(bo + "HH", 1, 2) + b"hi\0\0"
    assert epb_len == 28 + 64 + 8 + 4 + 4


def test_pcapng_unknown_section_length_and_extra_blocks(tmp_path):
    section = Section(
        [Iface(snaplen=64)],
        [
            Rec(None, b"s" * 64, 100, spb=True),
            Rec(T0, b"p" * 10, 10, obsolete=True),
            Isb(0, 5),
            Nrb([("10.0.0.1", ["a.example"])]),
            Custom(32473, b"xyz"),
            Custom(32473, b"xyz", copyable=False),
            RawBlock(0x1234, b"abc"),
            Iface(tsresol=0x80 | 20),
        ],
    )
    path = tmp_path / "f.pcapng"
    write_pcapng(path, [section, Section([Iface()], [Rec(T0, b"e", 1)], byteorder=">")])
    buf = path.read_bytes()

    blocks = pcapng_blocks(buf)
    assert [b[1] for b in blocks] == [
        0x0A0D0D0A, 1, 3, 2, 5, 4, 0x00000BAD, 0x40000BAD, 0x1234, 1, 0x0A0D0D0A, 1, 6,
    ]
    assert struct.unpack_from("<q", buf, 16)[0] == -1
    assert blocks[-1][3] == ">"
    spb_at = blocks[2][0]
    assert struct.unpack_from("<I", buf, spb_at + 8)[0] == 100
    assert blocks[2][2] == 12 + 4 + 64
    pb_at = blocks[3][0]
    units = T0 // 1000  # microseconds: the interface has no if_tsresol
    pb_header = (0, 0, units >> 32, units & 0xFFFFFFFF, 10, 10)
    assert struct.unpack_from("<HHIIII", buf, pb_at + 8) == pb_header


@pytest.mark.parametrize(
    "rec",
    [
        Rec(None, b"x" * 10, 100, spb=True),  # SPB data must be min(origlen, snaplen)
        Rec(T0, b"x", 1, spb=True),  # an SPB has no timestamp
        Rec(T0 + 1, b"x", 1),  # ns timestamp on a microsecond interface
        Rec(T0, b"x", 1, iface=1),  # no such interface yet
    ],
)
def test_pcapng_refuses_what_it_cannot_hold(tmp_path, rec):
    with pytest.raises(ValueError):
        write_pcapng(tmp_path / "f.pcapng", [Section([Iface(snaplen=64)], [rec])])


def test_binary_resolution_and_tsoffset(tmp_path):
    tsresol = 0x80 | 20
    ts_ns = representable_ns(T0 + 123_456_789, tsresol)
    path = tmp_path / "f.pcapng"
    write_pcapng(path, [Section([Iface(tsresol=tsresol, tsoffset=-100)], [Rec(ts_ns, b"x", 1)])])
    buf = path.read_bytes()
    epb_at = pcapng_blocks(buf)[2][0]
    high, low = struct.unpack_from("<II", buf, epb_at + 12)
    units = (high << 32) | low
    # Readers add if_tsoffset (-100 s) to the stored time.
    assert ((units * 10**9) >> 20) - 100 * 10**9 == ts_ns


RESOLUTIONS = [None, 0, 3, 6, 9, 12, 0x80 | 1, 0x80 | 10, 0x80 | 20, 0x80 | 30, 0x80 | 40]


@given(st.integers(0, 2**62), st.sampled_from(RESOLUTIONS))
def test_representable_ns_is_the_largest_exact_value_below(ts_ns, tsresol):
    exact = representable_ns(ts_ns, tsresol)
    assert exact <= ts_ns
    units = units_from_ns(exact, tsresol)
    assert ns_from_units(units, tsresol) == exact
    assert ns_from_units(units + 1, tsresol) > ts_ns or ns_from_units(units + 1, tsresol) == exact


# --- random records -------------------------------------------------------


def test_random_recs_shape():
    recs = random_recs(
        random.Random(3), 2000, start_ns=T0, spread_ns=10**9,
        out_of_order=0.05, ties=0.1, snaplen=200,
    )
    assert recs == random_recs(
        random.Random(3), 2000, start_ns=T0, spread_ns=10**9,
        out_of_order=0.05, ties=0.1, snaplen=200,
    )
    stamps = [r.ts_ns for r in recs]
    assert all(T0 <= t <= T0 + 10**9 and t % 1000 == 0 for t in stamps)
    assert all(len(r.data) <= 200 and len(r.data) <= r.origlen and 40 <= r.origlen <= 1514 for r in recs)
    assert any(len(r.data) < r.origlen for r in recs)
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert 0 < sum(s < 0 for s in steps) < 0.15 * len(steps)
    assert sum(s == 0 for s in steps) > 0.02 * len(steps)
    assert recs[0].data[12:14] == b"\x08\x00" and recs[0].data[14] == 0x45


def test_random_recs_tie_across_resolutions():
    def stamps(seed, tsresol):
        recs = random_recs(random.Random(seed), 300, start_ns=T0, spread_ns=10 * 10**9,
                           tsresol=tsresol, ties=0.3)
        return {r.ts_ns for r in recs}

    assert stamps(1, 6) & stamps(2, 9) & stamps(3, 0x80 | 20)
    assert all(representable_ns(t, 0x80 | 20) == t for t in stamps(3, 0x80 | 20))


def test_make_merge_inputs(tmp_path):
    paths = make_merge_inputs(tmp_path, random.Random(0), files=6, packets_per_file=10)
    assert [p.name for p in paths][:3] == ["000-pcap-us-le.pcap", "001-pcap-ns-be.pcap",
                                           "002-pcapng-le.pcapng"]
    assert all(p.stat().st_size > 10 * 40 for p in paths)


# --- damage ---------------------------------------------------------------


def written(tmp_path, kind, n=8, seed=0):
    recs = random_recs(random.Random(seed), n, start_ns=T0, spread_ns=10**9,
                       tsresol=KINDS[kind].tsresol)
    path = tmp_path / kind
    write_kind(path, kind, recs)
    return path, recs


def record_offsets(kind, buf, recs):
    if KINDS[kind].container == "pcap":
        return pcap_record_offsets(recs)
    return [offset for offset, block_type, _, _ in pcapng_blocks(buf) if block_type == 6]


@pytest.mark.parametrize("kind", ["pcap-us-le", "pcap-ns-be", "pcapng-le", "pcapng-be"])
@pytest.mark.parametrize("seed", range(3))
def test_damage_offsets(tmp_path, kind, seed):
    path, recs = written(tmp_path, kind, seed=seed)
    original = path.read_bytes()
    starts = record_offsets(kind, original, recs)

    offset = damage(path, "truncate-last", random.Random(seed))
    assert offset == starts[-1]
    assert starts[-1] < path.stat().st_size < len(original)

    path.write_bytes(original)
    assert damage(path, "garbage-tail", random.Random(seed)) == len(original)
    assert path.read_bytes().startswith(original) and path.stat().st_size > len(original)

    path.write_bytes(original)
    offset = damage(path, "impossible-length", random.Random(seed))
    assert offset in starts
    caplen_at = offset + (8 if KINDS[kind].container == "pcap" else 20)
    bo = KINDS[kind].byteorder
    assert struct.unpack_from(bo + "I", path.read_bytes(), caplen_at)[0] == IMPOSSIBLE_CAPLEN


# --- against tshark -------------------------------------------------------


def tshark_rows(path):
    """tshark's (ts_ns or None, caplen, origlen, comment, interface) rows, and its exit code."""
    result = subprocess.run(
        [TSHARK, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len",
         "-e", "frame.len", "-e", "frame.comment", "-e", "frame.interface_id"],
        capture_output=True, text=True,
    )
    rows = []
    for line in result.stdout.splitlines():
        epoch, caplen, origlen, comment, interface = line.split("\t")
        ts_ns = None
        if epoch:
            seconds, _, fraction = epoch.partition(".")
            ts_ns = int(seconds) * 10**9 + int(fraction.ljust(9, "0"))
        rows.append((ts_ns, int(caplen), int(origlen), comment or None, interface))
    return rows, result.returncode


@needs_tshark
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tshark_reads_every_kind(tmp_path, kind):
    recs = random_recs(random.Random(7), 25, start_ns=T0, spread_ns=10**9,
                       tsresol=KINDS[kind].tsresol, out_of_order=0.1, ties=0.1, snaplen=300)
    path = tmp_path / kind
    write_kind(path, kind, recs, snaplen=300)
    rows, returncode = tshark_rows(path)
    assert returncode == 0
    assert [row[:3] for row in rows] == [(r.ts_ns, len(r.data), r.origlen) for r in recs]


@needs_tshark
def test_tshark_reads_sections_and_extra_blocks(tmp_path):
    binary = 0x80 | 20
    first = Section(
        [Iface(snaplen=64, name="eth0")],
        [
            Rec(None, b"a" * 60, 60, spb=True),
            Rec(None, b"b" * 64, 100, spb=True),
            Rec(T0 + 1000, b"c" * 61, 61, comment="hello"),
            Nrb([("10.0.0.1", ["a.example"]), ("::1", ["lo6", "lo"])]),
            RawBlock(0x1234, b"abc"),
            Iface(snaplen=0, tsresol=binary, tsoffset=-100),
            Rec(representable_ns(T0 + 5 * 10**8, binary), b"d" * 62, 62, iface=1, obsolete=True),
            Isb(0, 12345, [(1, "stats")]),
        ],
        byteorder=">",
        known_length=True,
    )
    second = Section([Iface(tsresol=9)], [Rec(T0 + 7, b"e" * 63, 63)])
    path = tmp_path / "f.pcapng"
    write_pcapng(path, [first, second])
    rows, returncode = tshark_rows(path)
    assert returncode == 0
    assert rows == [
        (None, 60, 60, None, "0"),
        (None, 64, 100, None, "0"),
        (T0 + 1000, 61, 61, "hello", "0"),
        (representable_ns(T0 + 5 * 10**8, binary), 62, 62, None, "1"),
        (T0 + 7, 63, 63, None, "0"),
    ]


@needs_tshark
@pytest.mark.parametrize("kind", ["pcap-us-le", "pcap-ns-be", "pcapng-le", "pcapng-be"])
@pytest.mark.parametrize("how", ["truncate-last", "garbage-tail", "impossible-length"])
def test_tshark_sees_the_damage_where_damage_says(tmp_path, kind, how):
    path, recs = written(tmp_path, kind)
    starts = record_offsets(kind, path.read_bytes(), recs)
    offset = damage(path, how, random.Random(1))
    rows, returncode = tshark_rows(path)
    assert returncode != 0
    records_before = len(recs) if how == "garbage-tail" else starts.index(offset)
    assert len(rows) == records_before
