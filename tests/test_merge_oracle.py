"""Oracle tests: our merge against Wireshark's mergecap 4.0.17, the reference.

Every test runs both mergers on the same inputs, as a user would (`python -m srp merge`
and `mergecap`; the corpus tests call our merge() in-process where mergecap succeeds, to
keep the run short), and compares what they wrote:

- pcap / nsecpcap output: byte for byte;
- pcapng output: record for record (the section header names the writing application, so
  it never matches byte for byte). A record is compared as (timestamp in ns, origlen,
  captured bytes, options, and its interface's link type, snaplen and timestamp units), and
  the number of interface blocks must match too.

pcapng outputs are read twice: by our reader (srp.capture.open_capture) and by the small
independent block walker below, and the two readings must agree, so a reader bug cannot
hide a writer bug.

The inputs come from tests/capgen.py. They avoid the mergecap 4.0.17 bugs listed in
/tmp/research/wiretap-notes.md (resolutions finer than 10^-9 or 2^-30, several sections in
one file, if_fcslen, EPB verdicts), where agreeing with mergecap would be wrong, and the
places where mergecap loses data only because wiretap cannot hold it (epb_hash, interface
addresses and time zones, unknown option codes).
"""

from __future__ import annotations

import hashlib
import random
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

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
    random_recs,
    units_per_second,
    write_kind,
    write_pcap,
    write_pcapng,
)
from conftest import CORPUS, run_srp
from srp.capture import open_capture
from srp.capture.model import BLOCK

T0 = DEFAULT_START_NS
PCAP_KINDS = [k for k, spec in KINDS.items() if spec.container == "pcap"]
PCAPNG_KINDS = [k for k, spec in KINDS.items() if spec.container == "pcapng"]


# --- running the two mergers ------------------------------------------------


def run_mergecap(mergecap: str, output: Path, inputs, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([mergecap, *flags, "-w", str(output), *map(str, inputs)],
                          capture_output=True, text=True, timeout=120)


def run_ours(output: Path, inputs, *flags: str) -> subprocess.CompletedProcess:
    return run_srp("merge", *flags, "-w", str(output), *map(str, inputs))


def merge_both(mergecap: str, workdir: Path, inputs, *flags: str,
               suffix: str = ".pcapng") -> tuple[Path, Path]:
    """Merge `inputs` with both tools, each of which must succeed; (theirs, ours)."""
    theirs, ours = workdir / f"mergecap{suffix}", workdir / f"ours{suffix}"
    for path in (theirs, ours):
        path.unlink(missing_ok=True)
    reference = run_mergecap(mergecap, theirs, inputs, *flags)
    assert reference.returncode == 0, f"mergecap {flags} failed: {reference.stderr}"
    result = run_ours(ours, inputs, *flags)
    assert result.returncode == 0, f"srp merge {flags} failed: {result.stderr}"
    assert "Traceback" not in result.stderr
    return theirs, ours


def assert_same_bytes(theirs: Path, ours: Path) -> None:
    expected, got = theirs.read_bytes(), ours.read_bytes()
    if expected != got:
        where = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b),
                     min(len(expected), len(got)))
        pytest.fail(f"outputs differ from byte {where} (mergecap {len(expected)} bytes, "
                    f"ours {len(got)}): mergecap {expected[where:where + 24].hex()} "
                    f"ours {got[where:where + 24].hex()}")


# --- reading pcapng outputs ---------------------------------------------------


@dataclass(frozen=True)
class OutRecord:
    """A packet as a reader reports it, with what matters of its interface. A block passed
    on whole (decryption secrets, copyable custom block) has no time, its block type as
    origlen, its body as data and no interface."""

    ts_ns: int | None
    origlen: int
    data: bytes
    interface: tuple[int, int, int]  # (linktype, snaplen, timestamp units per second)
    options: tuple[tuple[int, bytes], ...] = ()


@dataclass
class PcapngContent:
    interfaces: list[tuple[int, int, int]]
    records: list[OutRecord]


def _walk_options(body: bytes) -> list[tuple[int, bytes]]:
    """A little-endian option list as (code, value) pairs, up to opt_endofopt."""
    options, pos = [], 0
    while pos + 4 <= len(body):
        code, length = struct.unpack_from("<HH", body, pos)
        if code == 0:
            break
        options.append((code, body[pos + 4:pos + 4 + length]))
        pos += 4 + length + (-length % 4)
    return options


PASSED_ON_BLOCKS = (0x0000000A, 0x00000BAD)   # decryption secrets, copyable custom block


def walk_pcapng(path: Path) -> PcapngContent:
    """An independent reading of a pcapng output: its interfaces and packets, in order.

    Both mergers write one little-endian section of IDBs and EPBs (an SPB is written as an
    EPB at time 0), and pass decryption secrets and copyable custom blocks on. Timestamps are read as wiretap reads them: units * 10^9 // units per
    second (exact for every resolution these tests use).
    """
    buf = path.read_bytes()
    assert buf[:4] == b"\x0a\x0d\x0d\x0a" and buf[8:12] == b"\x4d\x3c\x2b\x1a", \
        f"{path}: not a little-endian pcapng file"
    interfaces: list[tuple[int, int, int]] = []
    records: list[OutRecord] = []
    pos = 0
    while pos < len(buf):
        block_type, total = struct.unpack_from("<II", buf, pos)
        assert total >= 12 and pos + total <= len(buf), f"{path}: bad block at {pos}"
        assert struct.unpack_from("<I", buf, pos + total - 4)[0] == total
        body = buf[pos + 8:pos + total - 4]
        if block_type == 0x0A0D0D0A:
            assert pos == 0, f"{path}: a second section at {pos}"
        elif block_type == 1:  # IDB
            linktype, _, snaplen = struct.unpack_from("<HHI", body)
            options = dict(_walk_options(body[8:]))
            assert 14 not in options, "if_tsoffset is applied on reading, never written"
            tsresol = options[9][0] if 9 in options else None
            interfaces.append((linktype, snaplen, units_per_second(tsresol)))
        elif block_type == 6:  # EPB
            iface, high, low, caplen, origlen = struct.unpack_from("<IIIII", body)
            interface = interfaces[iface]
            ts_ns = ((high << 32) | low) * NS_PER_S // interface[2]
            options = tuple(_walk_options(body[20 + caplen + (-caplen % 4):]))
            records.append(OutRecord(ts_ns, origlen, body[20:20 + caplen], interface, options))
        elif block_type in PASSED_ON_BLOCKS:
            records.append(OutRecord(None, block_type, body, ()))
        else:
            assert block_type not in (2, 3), f"{path}: a packet block other than an EPB"
        pos += total
    return PcapngContent(interfaces, records)


def read_with_srp(path: Path) -> PcapngContent:
    """The same file as our reader reports it."""
    reader = open_capture(path)
    raw = []
    while (batch := reader.read_batch(1 << 20)) is not None:
        raw.extend(batch)
    assert reader.damage is None, f"{path}: {reader.damage}"
    interfaces = [(i.linktype, i.snaplen, i.ts_units) for i in reader.interfaces]
    records = [OutRecord(ts, origlen, bytes(data), interfaces[iface], _srp_options(options))
               if iface != BLOCK else OutRecord(None, origlen, bytes(data), ())
               for ts, iface, origlen, data, options in raw]
    return PcapngContent(interfaces, records)


def _srp_options(encoded) -> tuple[tuple[int, bytes], ...]:
    return tuple(_walk_options(bytes(encoded))) if encoded else ()


def pcapng_content(path: Path) -> PcapngContent:
    """The interfaces and packets of a pcapng output, read by both readers, which must agree."""
    independent, ours = walk_pcapng(path), read_with_srp(path)
    assert ours.interfaces == independent.interfaces, f"readers disagree on {path}"
    assert ours.records == independent.records, f"readers disagree on {path}"
    return independent


def assert_same_records(theirs: Path, ours: Path, *, interfaces: str = "ordered",
                        record_interfaces: bool = True, options_filter=None) -> None:
    """pcapng outputs hold the same packets in the same order and the same interface blocks.

    interfaces: "ordered" compares the interface blocks in order, "unordered" as a multiset
    (mergecap writes an interface described mid-file when it reaches it, we when we read
    it), "ignored" not at all (the packets still name their interface's link type, snaplen
    and units, unless record_interfaces=False); options_filter(options) picks the packet
    options to compare.
    """
    expected, got = pcapng_content(theirs), pcapng_content(ours)
    if not record_interfaces or options_filter is not None:
        def strip(records):
            return [OutRecord(r.ts_ns, r.origlen, r.data,
                              r.interface if record_interfaces else (),
                              options_filter(r.options) if options_filter else r.options)
                    for r in records]
        expected.records, got.records = strip(expected.records), strip(got.records)
    assert len(got.records) == len(expected.records), "packet counts differ"
    for index, (want, have) in enumerate(zip(expected.records, got.records)):
        assert have == want, f"packet {index} differs"
    if interfaces == "ordered":
        assert got.interfaces == expected.interfaces, "interface blocks differ"
    elif interfaces == "unordered":
        assert sorted(got.interfaces) == sorted(expected.interfaces), "interface blocks differ"


# --- building inputs ------------------------------------------------------------


def random_pcap_family_inputs(rng: random.Random, workdir: Path, kinds, *,
                              files: int, max_packets: int) -> list[Path]:
    """`files` single-interface Ethernet files of the given kinds over one shared time span,
    with ties inside and across files and some out-of-order records."""
    spread_ns = rng.choice([NS_PER_S, 5 * NS_PER_S, 60 * NS_PER_S])
    ties, out_of_order = rng.choice([0.0, 0.2, 0.6]), rng.choice([0.0, 0.05, 0.3])
    paths = []
    for index in range(files):
        kind = rng.choice(kinds)
        snaplen = rng.choice([None, None, 96, 1600])
        recs = random_recs(rng, rng.randint(0, max_packets), start_ns=T0, spread_ns=spread_ns,
                           tsresol=KINDS[kind].tsresol, ties=ties, out_of_order=out_of_order,
                           snaplen=snaplen)
        path = workdir / f"in{index}-{kind}.{KINDS[kind].container}"
        write_kind(path, kind, recs, snaplen=snaplen or rng.choice([65535, 262144, 1000]))
        paths.append(path)
    return paths


# Link types wiretap knows: Ethernet, raw IP, 802.11, Linux SLL, radiotap, IPv4, null.
LINKTYPES = [1, 1, 1, 101, 105, 113, 127, 228, 0]
# Resolutions these tests use: 10^-0 .. 10^-9 and 2^-0 .. 2^-30 (finer is a mergecap bug).
TSRESOLS = [None, *range(10), *(0x80 | n for n in range(31))]


def random_iface(rng: random.Random) -> Iface:
    return Iface(linktype=rng.choice(LINKTYPES), snaplen=rng.choice([65535, 262144, 1600, 128]),
                 tsresol=rng.choice(TSRESOLS),
                 tsoffset=rng.choice([None, None, None, -3, 100]),
                 name=rng.choice([None, "eth0", "eth1"]))


def recs_for_interfaces(rng: random.Random, ifaces: list[Iface], count: int, *,
                        spread_ns: int, ties: float, out_of_order: float,
                        spb_rate: float = 0.0) -> list[Rec]:
    """Records spread over `ifaces` at their own resolutions, in timestamp order apart from
    the out-of-order ones; some carry a comment, and a few are SPBs when spb_rate > 0."""
    recs = []
    for number, iface in enumerate(ifaces):
        for rec in random_recs(rng, count, start_ns=T0, spread_ns=spread_ns,
                               tsresol=iface.tsresol, ties=ties, snaplen=iface.snaplen):
            rec.iface = number
            if rng.random() < 0.1:
                rec.comment = f"packet {rng.randrange(1000)}"
            recs.append(rec)
    recs.sort(key=lambda rec: rec.ts_ns)
    recs = recs[:count]
    for index in range(1, len(recs)):
        if rng.random() < out_of_order:
            other = rng.randint(max(0, index - 8), index - 1)
            recs[index], recs[other] = recs[other], recs[index]
    if spb_rate:
        recs = [spb_of(rec, ifaces[0].snaplen) if rng.random() < spb_rate else rec
                for rec in recs]
    return recs


def spb_of(rec: Rec, snaplen: int) -> Rec:
    """A Simple Packet Block with rec's bytes, on interface 0 (no timestamp)."""
    caplen = rec.origlen if snaplen == 0 else min(rec.origlen, snaplen)
    data = (rec.data + bytes(caplen))[:caplen]
    return Rec(None, data, rec.origlen, spb=True)


def write_multi_interface_pcapng(rng: random.Random, path: Path, ifaces: list[Iface], *,
                                 count: int, spread_ns: int, ties: float, out_of_order: float,
                                 byteorder: str) -> None:
    recs = recs_for_interfaces(rng, ifaces, count, spread_ns=spread_ns, ties=ties,
                               out_of_order=out_of_order)
    write_pcapng(path, [Section(list(ifaces), recs)], byteorder=byteorder)


# --- 1. pcap and nsecpcap output, byte for byte -------------------------------

PCAP_VARIANTS = {
    "plain": (),
    "snaplen": ("-s", "SNAP"),
    "concatenate": ("-a",),
    "snaplen+concatenate": ("-a", "-s", "SNAP"),
}


def _flags(variant: str, rng: random.Random) -> list[str]:
    snap = str(rng.choice([1, 14, 60, 64, 100, 1000, 262144, 300000]))
    return [snap if flag == "SNAP" else flag for flag in PCAP_VARIANTS[variant]]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("variant", PCAP_VARIANTS)
@pytest.mark.parametrize("fmt", ["pcap", "nsecpcap"])
def test_pcap_output_is_byte_identical(mergecap, tmp_path, seed, variant, fmt):
    """-F pcap / nsecpcap, with -s N and -a: mergecap's exact bytes.

    Pins: order by (secs, nsecs), equal timestamps taking the file given last first, records
    inside a file never re-sorted; header v2.4, snaplen 262144 or N, little-endian whatever
    the inputs' order; us output truncating ns; caplen cut to N with origlen kept; -a
    concatenating in argument order. Odd seeds mix in single-interface pcapng inputs.
    """
    rng = random.Random(f"pcap-{seed}-{variant}-{fmt}")
    kinds = PCAP_KINDS if seed % 2 == 0 else PCAP_KINDS + PCAPNG_KINDS
    inputs = random_pcap_family_inputs(rng, tmp_path, kinds, files=rng.randint(2, 8),
                                       max_packets=300)
    theirs, ours = merge_both(mergecap, tmp_path, inputs, "-F", fmt, *_flags(variant, rng),
                              suffix=".pcap")
    assert_same_bytes(theirs, ours)


LARGE_CASES = {
    # (kinds, packets per file, SPB rate): about 5 MB a file, 3 files
    "3-files": (["pcap-us-le", "pcap-ns-be", "pcapng-bin20-le"], 4000, 0.0),
    # about 2.5 MB a file, 8 files, SPBs among them
    "8-files-with-spbs": (["pcap-us-le", "pcapng-ns-be", "pcap-ns-le", "pcapng-le",
                           "pcap-us-be", "pcapng-bin20-be", "pcapng-ns-le", "pcap-ns-be"],
                          2000, 0.05),
}


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("case", LARGE_CASES)
def test_large_inputs_across_read_chunks(mergecap, tmp_path, case, fmt):
    """Inputs of several MB, which we read in several chunks each: ties, out-of-order
    records and SPBs that straddle chunk boundaries still come out in mergecap's order."""
    kinds, count, spb_rate = LARGE_CASES[case]
    rng = random.Random(f"large-{case}-{fmt}")
    paths = []
    for index, kind in enumerate(kinds):
        recs = random_recs(rng, count, start_ns=T0, spread_ns=2 * NS_PER_S,
                           tsresol=KINDS[kind].tsresol, ties=0.5, out_of_order=0.05,
                           min_len=1000, max_len=1514)
        path = tmp_path / f"big{index}.{KINDS[kind].container}"
        if KINDS[kind].container == "pcapng" and spb_rate:
            recs = [spb_of(rec, 65535) if rng.random() < spb_rate else rec for rec in recs]
            write_pcapng(path, [Section([Iface(tsresol=KINDS[kind].tsresol)], recs)],
                         byteorder=KINDS[kind].byteorder)
        else:
            write_kind(path, kind, recs)
        paths.append(path)
    theirs, ours = merge_both(mergecap, tmp_path, paths, "-F", fmt, suffix="." + fmt)
    if fmt == "pcap":
        assert_same_bytes(theirs, ours)
    else:
        assert_same_records(theirs, ours)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_many_inputs_with_a_small_read_budget(mergecap, tmp_path, fmt):
    """Many session-like inputs overlapping in time and ending one after another, merged
    with a budget so small that each input is read in many chunks, which grow as other
    inputs are written out whole: still mergecap's order."""
    rng = random.Random(f"sessions-{fmt}")
    paths = []
    for index in range(80):
        kind = rng.choice(PCAP_KINDS)
        start = T0 + rng.randrange(60 * NS_PER_S)
        recs = random_recs(rng, rng.randint(1, 120), start_ns=start,
                           spread_ns=rng.randrange(1, 20) * NS_PER_S,
                           tsresol=KINDS[kind].tsresol, ties=0.2, out_of_order=0.05,
                           min_len=60, max_len=1514)
        paths.append(tmp_path / f"session{index}.pcap")
        write_kind(paths[-1], kind, recs)
    theirs, ours = tmp_path / f"mergecap.{fmt}", tmp_path / f"ours.{fmt}"
    assert run_mergecap(mergecap, theirs, paths, "-F", fmt).returncode == 0
    merge_in_process(paths, ours, fmt, buffer_budget=256 * 1024)
    if fmt == "pcap":
        assert_same_bytes(theirs, ours)
    else:
        assert_same_records(theirs, ours)


# --- 2. pcapng output, record for record -----------------------------------------

INTERFACE_MODES = [None, "all", "any", "none"]  # None: no -I, mergecap's default (all)


def _interface_flags(mode: str | None) -> list[str]:
    return [] if mode is None else ["-I", mode]


def pcapng_scenario(rng: random.Random, workdir: Path, scenario: str) -> list[Path]:
    """Inputs for the pcapng tests.

    - shared: every file describes the same interfaces (so -I all collapses them);
    - mixed: each file its own interfaces, drawn from a small pool so some repeat across
      files, and a pcap file or two among them.
    """
    spread_ns = rng.choice([2 * NS_PER_S, 60 * NS_PER_S])
    ties, out_of_order = rng.choice([0.0, 0.3]), rng.choice([0.0, 0.1])
    pool = [random_iface(rng) for _ in range(4)]
    shared = rng.sample(pool, rng.randint(1, 3))
    paths = []
    for index in range(rng.randint(2, 5)):
        if scenario == "mixed" and rng.random() < 0.3:
            kind = rng.choice(PCAP_KINDS)
            recs = random_recs(rng, rng.randint(0, 60), start_ns=T0, spread_ns=spread_ns,
                               tsresol=KINDS[kind].tsresol, ties=ties)
            paths.append(workdir / f"in{index}-{kind}.pcap")
            write_kind(paths[-1], kind, recs)
            continue
        ifaces = shared if scenario == "shared" else rng.sample(pool, rng.randint(1, 4))
        paths.append(workdir / f"in{index}.pcapng")
        write_multi_interface_pcapng(rng, paths[-1], ifaces, count=rng.randint(0, 80),
                                     spread_ns=spread_ns, ties=ties, out_of_order=out_of_order,
                                     byteorder=rng.choice("<>"))
    return paths


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scenario", ["shared", "mixed"])
@pytest.mark.parametrize("mode", INTERFACE_MODES)
def test_pcapng_output_is_record_identical(mergecap, tmp_path, seed, scenario, mode):
    """pcapng output (the default), -I all/any/none: the same packets in the same order, on
    interfaces with the same link type, snaplen and resolution, and as many interface blocks.

    Inputs: pcapng files with several interfaces of different link types and if_tsresol
    (10^-0..10^-9, 2^-0..2^-30), some with if_tsoffset, both byte orders, mixed with pcap.
    Pins: mergecap's timestamp reading and its (lossy for 2^-n) re-encoding at the interface's
    own resolution, and its -I interface merging.
    """
    rng = random.Random(f"pcapng-{seed}-{scenario}")
    inputs = pcapng_scenario(rng, tmp_path, scenario)
    theirs, ours = merge_both(mergecap, tmp_path, inputs, *_interface_flags(mode))
    assert_same_records(theirs, ours)


@pytest.mark.parametrize("mode", INTERFACE_MODES)
def test_pcapng_snaplen_and_concatenate(mergecap, tmp_path, mode):
    """pcapng output with -s N and -a: records cut to N with origlen kept (the interface
    blocks keep their snaplen), and -a writing the files one after the other."""
    rng = random.Random(f"pcapng-s-a-{mode}")
    inputs = pcapng_scenario(rng, tmp_path, "mixed")
    for flags in (["-s", "60"], ["-a"], ["-a", "-s", "1"]):
        theirs, ours = merge_both(mergecap, tmp_path, inputs, *flags, *_interface_flags(mode))
        assert_same_records(theirs, ours)


# --- interface merging rules (-I), one rule at a time ------------------------------

# (file A's interfaces, file B's interfaces); a None entry makes B a classic pcap file.
FILTER_80, FILTER_81 = (11, b"\x00port 80"), (11, b"\x00port 81")
INTERFACE_CASES = {
    "identical": ([Iface(name="eth0")], [Iface(name="eth0")]),
    "different-names": ([Iface(name="eth0")], [Iface(name="eth1")]),
    "different-snaplens": ([Iface(snaplen=100)], [Iface(snaplen=200)]),
    "name-only-in-one": ([Iface(name="eth0")], [Iface()]),
    "tsresol-6-explicit-vs-absent": ([Iface(tsresol=6)], [Iface()]),
    "named-pcapng-vs-pcap": ([Iface(snaplen=65535, name="eth0")], None),
    "different-tsoffsets": ([Iface(tsoffset=-3)], [Iface(tsoffset=100)]),
    "different-filters": ([Iface(options=[FILTER_80])], [Iface(options=[FILTER_81])]),
    "same-units-other-tsresol-byte": ([Iface(tsresol=0)], [Iface(tsresol=0x80)]),
    "repeated-inside-one-file": ([Iface(name="eth0"), Iface(name="eth1"), Iface(name="eth0")],
                                 [Iface(name="eth1")]),
    "same-set-swapped": ([Iface(name="eth0"), Iface(name="eth1")],
                         [Iface(name="eth1"), Iface(name="eth0")]),
    "same-set-same-order": ([Iface(name="eth0"), Iface(linktype=113, name="any")],
                            [Iface(name="eth0"), Iface(linktype=113, name="any")]),
}


def write_interface_case(rng: random.Random, path: Path, ifaces: list[Iface] | None) -> Path:
    if ifaces is None:
        path = path.with_suffix(".pcap")
        write_kind(path, "pcap-us-le", random_recs(rng, 20, start_ns=T0, spread_ns=NS_PER_S))
    else:
        write_multi_interface_pcapng(rng, path, ifaces, count=20 * len(ifaces),
                                     spread_ns=NS_PER_S, ties=0.2, out_of_order=0.0,
                                     byteorder="<")
    return path


def idb_options(path: Path) -> list[list[tuple[int, bytes]]]:
    """The options of every interface block of a little-endian pcapng file, in order."""
    buf, pos, found = path.read_bytes(), 0, []
    while pos < len(buf):
        block_type, total = struct.unpack_from("<II", buf, pos)
        if block_type == 1:
            found.append(_walk_options(buf[pos + 16:pos + total - 4]))
        pos += total
    return found


@pytest.mark.parametrize("mode", ["all", "any", "none"])
@pytest.mark.parametrize("case", INTERFACE_CASES)
def test_interface_merging_rules(mergecap, tmp_path, case, mode):
    """-I all/any/none decide which interface blocks the output has, as mergecap decides.

    mergecap 4.0.17 (is_duplicate_idb) calls two interfaces equal when link type, units per
    second, precision and snaplen match and, of the options speed, tsresol, comment, name,
    description, hardware and os, those present in BOTH match: an option only one of them
    has does not count, and no other option (filter, tsoffset, ...) is compared. all merges
    only when every file has equal interfaces index by index; any merges across and inside
    files; none never merges. The surviving interface keeps the first one's options.
    """
    rng = random.Random(f"iface-{case}-{mode}")
    first, second = INTERFACE_CASES[case]
    inputs = [write_interface_case(rng, tmp_path / "a.pcapng", first),
              write_interface_case(rng, tmp_path / "b.pcapng", second)]
    theirs, ours = merge_both(mergecap, tmp_path, inputs, "-I", mode)
    assert_same_records(theirs, ours)
    assert idb_options(ours) == idb_options(theirs), "interface blocks' options differ"


def interfaces_mid_file_inputs(rng: random.Random, workdir: Path, case: str) -> list[Path]:
    """Two pcapng files whose second interface is described after their first packets."""
    eth0, eth1, sll = Iface(name="eth0"), Iface(name="eth1", tsresol=9), Iface(113, name="any")
    later = {"same-late-interface": (eth1, eth1), "different-late-interfaces": (eth1, sll),
             "late-copy-of-the-first": (Iface(name="eth0"), eth1)}[case]
    paths = []
    for index, late in enumerate(later):
        first = random_recs(rng, 20, start_ns=T0, spread_ns=NS_PER_S, ties=0.2)
        second = random_recs(rng, 20, start_ns=T0 + NS_PER_S // 2, spread_ns=NS_PER_S,
                             tsresol=late.tsresol, ties=0.2)
        for rec in second:
            rec.iface = 1
        recs = sorted(first[10:] + second, key=lambda rec: rec.ts_ns)
        paths.append(workdir / f"late{index}.pcapng")
        write_pcapng(paths[-1], [Section([eth0], [*first[:10], late, *recs])])
    return paths


@pytest.mark.parametrize("mode", ["all", "any", "none"])
@pytest.mark.parametrize("case", ["same-late-interface", "different-late-interfaces",
                                  "late-copy-of-the-first"])
def test_interfaces_described_mid_file(mergecap, tmp_path, case, mode):
    """An interface described after a file's first packets: with -I any, or -I all once it
    merged the files' first interfaces, mergecap merges it with an equal interface it has
    already written; otherwise it adds it. Only the interface blocks' order may differ
    (mergecap writes one when it reaches it)."""
    inputs = interfaces_mid_file_inputs(random.Random(f"{case}-{mode}"), tmp_path, case)
    theirs, ours = merge_both(mergecap, tmp_path, inputs, "-I", mode)
    assert_same_records(theirs, ours, interfaces="unordered")


# --- 3. records without a timestamp (Simple Packet Blocks) --------------------------


def spb_example_inputs(workdir: Path) -> list[Path]:
    """The notes' example: A = [EPB@5, SPB a, EPB@6], B = [SPB b, EPB@1, SPB c]."""
    def epb(seconds: int, fill: int) -> Rec:
        return Rec(T0 + seconds * NS_PER_S, bytes([fill]) * 60, 60)

    def spb(fill: int) -> Rec:
        return Rec(None, bytes([fill]) * 60, 60, spb=True)

    first = [epb(5, 0x05), spb(0xAA), epb(6, 0x06)]
    second = [spb(0xBB), epb(1, 0x01), spb(0xCC)]
    paths = [workdir / "A.pcapng", workdir / "B.pcapng"]
    for path, recs in zip(paths, (first, second)):
        write_pcapng(path, [Section([Iface()], recs)])
    return paths


def test_records_without_timestamp_example(mergecap, tmp_path):
    """A record with no timestamp leaves as soon as it heads its file (the lowest-numbered
    such file first), ahead of earlier-stamped heads of other files, and is written as an
    EPB at time 0: A=[5, a, 6], B=[b, 1, c] merge to b, 1, c, 5, a, 6."""
    inputs = spb_example_inputs(tmp_path)
    theirs, ours = merge_both(mergecap, tmp_path, inputs)
    fills = [record.data[0] for record in pcapng_content(theirs).records]
    assert fills == [0xBB, 0x01, 0xCC, 0x05, 0xAA, 0x06], "mergecap's order changed"
    assert [r.ts_ns for r in pcapng_content(theirs).records][0] == 0
    assert_same_records(theirs, ours)
    for fmt in ("pcap", "nsecpcap"):
        theirs, ours = merge_both(mergecap, tmp_path, inputs, "-F", fmt, suffix=".pcap")
        assert_same_bytes(theirs, ours)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fmt", ["pcapng", "pcap"])
def test_records_without_timestamp_random(mergecap, tmp_path, seed, fmt):
    """SPBs sprinkled among stamped records (some files start with one, ties and
    out-of-order records around them): mergecap's order, in pcapng and in pcap."""
    rng = random.Random(f"spb-{seed}-{fmt}")
    paths = []
    for index in range(rng.randint(2, 6)):
        if rng.random() < 0.25:
            kind = rng.choice(PCAP_KINDS)
            paths.append(tmp_path / f"in{index}.pcap")
            write_kind(paths[-1], kind, random_recs(rng, rng.randint(0, 40), start_ns=T0,
                                                    spread_ns=NS_PER_S, ties=0.3,
                                                    tsresol=KINDS[kind].tsresol))
            continue
        # 97: SPBs cut to the snaplen end in padding
        iface = Iface(snaplen=rng.choice([65535, 0, 97]), tsresol=rng.choice([None, 9, 0x94]))
        recs = recs_for_interfaces(rng, [iface], rng.randint(0, 40), spread_ns=NS_PER_S,
                                   ties=0.3, out_of_order=0.1, spb_rate=0.3)
        if rng.random() < 0.5:
            recs.insert(0, spb_of(random_recs(rng, 1, start_ns=T0, spread_ns=1)[0],
                                  iface.snaplen))
        if fmt == "pcap":  # pcap output keeps only one link type and no comments matter
            for rec in recs:
                rec.comment = None
        paths.append(tmp_path / f"in{index}.pcapng")
        write_pcapng(paths[-1], [Section([iface], recs)], byteorder=rng.choice("<>"))
    theirs, ours = merge_both(mergecap, tmp_path, paths, "-F", fmt, suffix="." + fmt)
    if fmt == "pcap":
        assert_same_bytes(theirs, ours)
    else:
        assert_same_records(theirs, ours)


# --- 4. link types pcap cannot hold together -----------------------------------------


def mixed_linktype_inputs(workdir: Path, case: str) -> list[Path]:
    rng = random.Random(case)
    recs = lambda: random_recs(rng, 10, start_ns=T0, spread_ns=NS_PER_S)
    if case == "two-pcap-files":
        paths = [workdir / "eth.pcap", workdir / "raw.pcap"]
        write_pcap(paths[0], recs(), linktype=1)
        write_pcap(paths[1], recs(), linktype=101)
    elif case == "pcap-and-pcapng":
        paths = [workdir / "eth.pcap", workdir / "wifi.pcapng"]
        write_pcap(paths[0], recs(), linktype=1)
        write_pcapng(paths[1], [Section([Iface(linktype=105)], recs())])
    else:  # one pcapng file with two link types
        paths = [workdir / "two.pcapng"]
        section_recs = recs()
        for index, rec in enumerate(section_recs):
            rec.iface = index % 2
        write_pcapng(paths[0], [Section([Iface(linktype=1), Iface(linktype=113)],
                                        section_recs)])
    return paths


@pytest.mark.parametrize("fmt", ["pcap", "nsecpcap"])
@pytest.mark.parametrize("case", ["two-pcap-files", "pcap-and-pcapng", "one-pcapng-file"])
def test_mixed_link_types_refused_for_pcap(mergecap, tmp_path, case, fmt):
    """-F pcap/nsecpcap with more than one link type: mergecap exits 2 ("can't be written as
    a pcap file") and writes no file; ours exits 2 with one line on stderr, no traceback,
    no output and no temporary file left behind. pcapng output of the same inputs works."""
    inputs = mixed_linktype_inputs(tmp_path, case)
    outdir = tmp_path / "out"
    outdir.mkdir()
    reference = run_mergecap(mergecap, outdir / "mergecap.pcap", inputs, "-F", fmt)
    assert reference.returncode == 2 and "can't be written as" in reference.stderr
    assert not (outdir / "mergecap.pcap").exists()

    result = run_ours(outdir / "ours.pcap", inputs, "-F", fmt)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in outdir.iterdir()) == [], "ours left a file behind"

    theirs, ours = merge_both(mergecap, tmp_path, inputs)
    assert_same_records(theirs, ours)


# --- 5. the shared corpus ---------------------------------------------------------------

CORPUS_FILES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
                      if p.suffix in (".pcap", ".pcapng")) if CORPUS.is_dir() else []


def _corpus_pairs() -> list[tuple[str, str]]:
    """Each file with the next one, and each little-endian pcapng with its big-endian twin."""
    pairs = list(zip(CORPUS_FILES, CORPUS_FILES[1:] + CORPUS_FILES[:1]))
    pairs += [(name, name.replace("output_le", "output_be")) for name in CORPUS_FILES
              if "output_le" in name]
    return pairs


def section_count(path: Path) -> int:
    """How many section headers a pcapng file holds (0 for pcap)."""
    buf, pos, count, bo = path.read_bytes(), 0, 0, "<"
    if buf[:4] != b"\x0a\x0d\x0d\x0a":
        return 0
    while pos + 12 <= len(buf):
        if buf[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            count += 1
            bo = "<" if buf[pos + 8:pos + 12] == struct.pack("<I", 0x1A2B3C4D) else ">"
        pos += max(12, struct.unpack_from(bo + "I", buf, pos + 4)[0])
    return count


# Packet option codes wiretap 4.0 reads: comment, flags, hash, dropcount, packet id, queue,
# verdict, and the four custom ones. It never keeps a hash, and mangles verdicts.
WIRETAP_PACKET_OPTIONS = {1, 2, 3, 4, 5, 6, 7, 2988, 2989, 19372, 19373}


def options_mergecap_can_carry(options):
    """The packet options left when hash, verdict and unknown standard codes are removed
    (local-use codes, 0x8000 and up, stay: mergecap drops them, and so should we)."""
    return tuple((code, value) for code, value in options if code not in (3, 7)
                 and (code in WIRETAP_PACKET_OPTIONS or code >= 0x8000))


def merge_in_process(inputs, output: Path, fmt: str, **options) -> None:
    """Our merge called directly (the CLI costs 0.1 s a run, too much for the whole corpus)."""
    from srp.capture.merge import merge

    result = merge([str(path) for path in inputs], output, format=fmt, **options)
    assert not result.warnings, result.warnings


def compare_on_corpus(mergecap, corpus: Path, workdir: Path, names, record_property) -> None:
    """mergecap accepts: ours writes the same (records for pcapng, bytes for pcap).
    mergecap refuses: recorded only; ours, run as a command, must end without a traceback.

    pcapng: the packets are compared, not the interface blocks: mergecap 4.0.17 counts as
    a file's own interfaces only those described before any other block, writes an
    interface described later only if a packet follows it, and numbers the interfaces in
    the order it meets them. A file with several sections meets its bug of looking a later
    section's interface ids up among the first section's interfaces, so there the packets
    are compared without their interfaces. Packet options mergecap cannot carry at all
    (hash, verdict, codes it does not know) are left out of the comparison.
    """
    inputs = [corpus / name for name in names]
    several_sections = any(section_count(path) > 1 for path in inputs)
    for fmt, suffix in (("pcapng", ".pcapng"), ("pcap", ".pcap")):
        theirs, ours = workdir / f"mergecap-{fmt}{suffix}", workdir / f"ours-{fmt}{suffix}"
        reference = run_mergecap(mergecap, theirs, inputs, "-F", fmt)
        if reference.returncode != 0:
            record_property(f"mergecap-refuses-{fmt}", reference.stderr.strip())
            result = run_ours(ours, inputs, "-F", fmt)
            assert "Traceback" not in result.stderr
            assert result.returncode in (0, 1, 2), result.stderr
            continue
        merge_in_process(inputs, ours, fmt)
        if fmt == "pcap":
            assert_same_bytes(theirs, ours)
        else:
            assert_same_records(theirs, ours, interfaces="ignored",
                                record_interfaces=not several_sections,
                                options_filter=options_mergecap_can_carry)


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_alone(mergecap, corpus, tmp_path, record_property, name):
    """Each corpus file merged alone: where mergecap accepts it, the same records (pcapng)
    or the same bytes (pcap); where it refuses, ours still ends without a traceback."""
    compare_on_corpus(mergecap, corpus, tmp_path, [name], record_property)


@pytest.mark.parametrize("names", _corpus_pairs(), ids="+".join)
def test_corpus_pairs(mergecap, corpus, tmp_path, record_property, names):
    """Pairs of corpus files, as test_corpus_file_alone."""
    compare_on_corpus(mergecap, corpus, tmp_path, names, record_property)


# --- 6. damaged inputs --------------------------------------------------------------------


def packet_offsets(path: Path) -> list[int]:
    """Where each packet record of a single-section file starts (pcap or pcapng)."""
    buf = path.read_bytes()
    offsets = []
    if struct.unpack_from("<I", buf)[0] == 0x0A0D0D0A:
        bo = "<" if buf[8:12] == struct.pack("<I", 0x1A2B3C4D) else ">"
        pos = 0
        while pos < len(buf):
            block_type, total = struct.unpack_from(bo + "II", buf, pos)
            if block_type in (2, 3, 6):
                offsets.append(pos)
            pos += total
        return offsets
    bo = "<" if buf[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    while pos < len(buf):
        offsets.append(pos)
        pos += 16 + struct.unpack_from(bo + "I", buf, pos + 8)[0]
    return offsets


DAMAGE_KINDS = ["truncate-last", "garbage-tail", "impossible-length"]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("fmt", ["pcapng", "pcap"])
@pytest.mark.parametrize("how", DAMAGE_KINDS)
def test_damaged_input(mergecap, tmp_path, how, fmt, seed):
    """A damaged input: mergecap 4.0.17 gives up (exit 2, a partial output); ours keeps
    going, warns naming the file and the byte offset of the damage, and writes what mergecap
    writes for the same inputs with the damaged file replaced by its good records."""
    rng = random.Random(f"damage-{how}-{fmt}-{seed}")
    kinds = rng.sample(sorted(KINDS), rng.randint(2, 4))
    victim = rng.randrange(len(kinds))
    inputs, repaired = [], []
    (tmp_path / "repaired").mkdir()
    for index, kind in enumerate(kinds):
        recs = random_recs(rng, rng.randint(3, 40), start_ns=T0, spread_ns=NS_PER_S,
                           tsresol=KINDS[kind].tsresol, ties=0.2, out_of_order=0.05)
        path = tmp_path / f"in{index}-{kind}.{KINDS[kind].container}"
        write_kind(path, kind, recs)
        inputs.append(path)
        repaired.append(path if index != victim else tmp_path / "repaired" / path.name)
        if index == victim:
            starts = packet_offsets(path)
            offset = damage(path, how, rng)
            good = recs[:starts.index(offset)] if offset in starts else recs
            write_kind(repaired[-1], kind, good)

    damaged_out, ours = tmp_path / f"damaged.{fmt}", tmp_path / f"ours.{fmt}"
    reference = run_mergecap(mergecap, damaged_out, inputs, "-F", fmt)
    assert reference.returncode == 2, "mergecap 4.0.17 stops at damage"
    assert damaged_out.exists(), "mergecap keeps its partial output"

    result = run_ours(ours, inputs, "-F", fmt)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    victim_path = str(inputs[victim])
    assert any(victim_path in line and re.search(rf"(?<!\d){offset}(?!\d)", line)
               for line in result.stderr.splitlines()), \
        f"no warning naming {victim_path} and offset {offset}: {result.stderr!r}"

    theirs = tmp_path / f"mergecap-repaired.{fmt}"
    assert run_mergecap(mergecap, theirs, repaired, "-F", fmt).returncode == 0
    if fmt == "pcap":
        assert_same_bytes(theirs, ours)
    else:
        assert_same_records(theirs, ours)


# --- options: which are carried over ---------------------------------------------------


def _custom(code: int, text: bytes) -> tuple[int, bytes]:
    return code, struct.pack("<I", 32473) + text  # PEN 32473: the example PEN (RFC 5612)


# Packet (EPB) options, one per case, with what mergecap 4.0.17 does with them. Left out
# on purpose: options mergecap loses only because wiretap cannot hold them (epb_hash,
# unknown codes), where agreeing with it would mean losing data too.
PACKET_OPTIONS = {
    "flags-kept": (2, struct.pack("<I", 1)),
    "dropcount-kept": (4, struct.pack("<Q", 7)),
    "packetid-kept": (5, struct.pack("<Q", 8)),
    "queue-kept": (6, struct.pack("<I", 9)),
    "custom-copyable-string-kept": _custom(2988, b"copy me"),
    "custom-copyable-bytes-kept": _custom(2989, b"\x00\x01copy"),
    "custom-not-copyable-string-dropped": _custom(19372, b"do not copy"),
    "custom-not-copyable-bytes-dropped": _custom(19373, b"\x00do not copy"),
    "local-use-dropped": (0x8001, b"local"),
}

# Interface (IDB) options, likewise (left out: the addresses, if_tzone, if_txspeed,
# if_rxspeed, if_iana_tzname, which wiretap 4.0 cannot hold and so drops).
INTERFACE_OPTIONS = {
    "description-kept": (3, b"uplink"),
    "speed-kept": (8, struct.pack("<Q", 10**9)),
    "filter-kept": (11, b"\x00port 80"),
    "os-kept": (12, b"Linux"),
    "hardware-kept": (15, b"NIC 9000"),
    "custom-copyable-kept": _custom(2988, b"copy me"),
    "custom-not-copyable-dropped": _custom(19372, b"do not copy"),
    "local-use-dropped": (0x8001, b"local"),
}


@pytest.mark.parametrize("case", PACKET_OPTIONS)
def test_packet_options(mergecap, tmp_path, case):
    """A packet's options go to the output as mergecap writes them: comments, flags,
    dropcount, packet id, queue and copyable custom options kept, in order; custom options
    marked not-to-be-copied (19372, 19373) and local-use codes (0x8000 and up) dropped."""
    code, value = PACKET_OPTIONS[case]
    recs = [Rec(T0 + NS_PER_S, b"\x01" * 60, 60, comment="first", options=[(code, value)]),
            Rec(T0 + 2 * NS_PER_S, b"\x02" * 61, 61, options=[(code, value), (1, "second")])]
    path = tmp_path / "options.pcapng"
    write_pcapng(path, [Section([Iface()], recs)])
    theirs, ours = merge_both(mergecap, tmp_path, [path])
    assert_same_records(theirs, ours)


@pytest.mark.parametrize("case", INTERFACE_OPTIONS)
def test_interface_options(mergecap, tmp_path, case):
    """An interface's options go to the output as mergecap writes them: name, description,
    speed, tsresol, filter, os, hardware and copyable custom options kept; custom options
    not to be copied and local-use codes dropped."""
    code, value = INTERFACE_OPTIONS[case]
    path = tmp_path / "iface.pcapng"
    iface = Iface(name="eth0", tsresol=9, options=[(code, value)])
    write_pcapng(path, [Section([iface], random_recs(random.Random(case), 5, start_ns=T0,
                                                     spread_ns=NS_PER_S, tsresol=9))])
    theirs, ours = merge_both(mergecap, tmp_path, [path])
    assert_same_records(theirs, ours)
    assert idb_options(ours) == idb_options(theirs)


# --- classic pcap oddities mergecap reads --------------------------------------------------


def raw_pcap(path: Path, records, *, version=(2, 4), magic=0xA1B2C3D4, snaplen=65535,
             network=1, bo="<") -> Path:
    """A pcap file field by field: records are (secs, fraction, caplen field, origlen
    field, data), written as given, so they may break the rules capgen keeps."""
    with open(path, "wb") as out:
        out.write(struct.pack(bo + "IHHiIII", magic, *version, 0, 0, snaplen, network))
        for secs, fraction, caplen, origlen, data in records:
            out.write(struct.pack(bo + "IIII", secs, fraction, caplen, origlen) + data)
    return path


S = T0 // NS_PER_S
D8, D80 = b"\x11" * 8, b"\x22" * 80
PCAP_ODDITIES = {
    # versions before 2.3 store origlen first; 2.3 either way (swapped when incl > orig)
    "version-2.2": dict(version=(2, 2), records=[(S, 5, 20, 8, D8)]),
    "version-2.3-in-order": dict(version=(2, 3), records=[(S, 5, 8, 20, D8)]),
    "version-2.3-swapped": dict(version=(2, 3), records=[(S, 5, 20, 8, D8)]),
    "version-2.5": dict(version=(2, 5), records=[(S, 5, 8, 8, D8)]),
    "version-3.0": dict(version=(3, 0), records=[(S, 5, 8, 8, D8)]),
    "big-endian": dict(bo=">", records=[(S, 5, 8, 8, D8), (S + 1, 0, 8, 8, D8)]),
    # pcap output only: mergecap forgets the FCS bits, so in pcapng it takes the interface
    # for a plain Ethernet one, where we keep them as if_fcslen.
    "fcs-bits-in-linktype": dict(network=0x24000001, records=[(S, 5, 8, 8, D8)],
                                 formats=("pcap", "nsecpcap")),
    "caplen-over-snaplen": dict(snaplen=10, records=[(S, 5, 80, 80, D80)]),
    "origlen-under-caplen": dict(records=[(S, 5, 80, 4, D80)]),
}


@pytest.mark.parametrize("case", PCAP_ODDITIES)
def test_pcap_oddities(mergecap, tmp_path, case):
    """Classic pcap files that break a rule or use an old layout, merged with an ordinary
    file whose records bracket theirs (S, S + 1 s, S + 1.2 s): mergecap reads them, and our
    output matches its bytes (pcap, nsecpcap) and records (pcapng)."""
    spec = dict(PCAP_ODDITIES[case])
    formats = spec.pop("formats", ("pcap", "nsecpcap", "pcapng"))
    odd = raw_pcap(tmp_path / "odd.pcap", spec.pop("records"), **spec)
    plain = tmp_path / "plain.pcap"
    write_pcap(plain, [Rec(T0, b"\x33" * 8, 8), Rec(T0 + NS_PER_S, b"\x44" * 8, 8),
                       Rec(T0 + 1_200_000_000, b"\x55" * 8, 8)])
    for fmt in formats:
        suffix = ".pcapng" if fmt == "pcapng" else ".pcap"
        theirs, ours = merge_both(mergecap, tmp_path, [odd, plain], "-F", fmt, suffix=suffix)
        if fmt == "pcapng":
            assert_same_records(theirs, ours)
        else:
            assert_same_bytes(theirs, ours)


# --- link types pcap output can hold after all ----------------------------------------------


def test_pcap_output_ignores_an_unused_interface_of_another_link_type(mergecap, tmp_path):
    """-F pcap: mergecap takes a file's link type from the interfaces described before its
    first packet; an interface of another link type described later and never used by a
    packet does not stop the merge (a packet on it would: "has a network type that differs")."""
    path = tmp_path / "late.pcapng"
    recs = random_recs(random.Random(7), 6, start_ns=T0, spread_ns=NS_PER_S)
    write_pcapng(path, [Section([Iface()], [*recs[:3], Iface(linktype=113), *recs[3:]])])
    theirs, ours = merge_both(mergecap, tmp_path, [path], "-F", "pcap", suffix=".pcap")
    assert_same_bytes(theirs, ours)


# --- blocks that are not packets -----------------------------------------------------------


def block_sequence(path: Path) -> list[str]:
    """The packets (named by their bytes) and the other blocks (by type and body) of a
    little-endian pcapng output, in file order; section and interface blocks left out."""
    buf, pos, sequence = path.read_bytes(), 0, []
    while pos < len(buf):
        block_type, total = struct.unpack_from("<II", buf, pos)
        body = buf[pos + 8:pos + total - 4]
        if block_type == 6:
            caplen = struct.unpack_from("<I", body, 12)[0]
            sequence.append(f"packet {body[20:20 + caplen][:4].hex()}..")
        elif block_type not in (0x0A0D0D0A, 1):
            digest = hashlib.sha1(body).hexdigest()[:10]
            sequence.append(f"block {block_type:#x} of {len(body)} bytes, sha1 {digest}")
        pos += total
    return sequence


def decryption_secrets_block() -> RawBlock:
    secrets = b"CLIENT_RANDOM " + b"ab" * 32 + b" " + b"cd" * 48 + b"\n"
    body = struct.pack("<II", 0x544C534B, len(secrets)) + secrets  # TLS key log
    return RawBlock(0x0A, body + bytes(-len(body) % 4))


NON_PACKET_BLOCKS = {
    "decryption-secrets-copied": decryption_secrets_block,
    "custom-copyable-copied": lambda: Custom(32473, b"hello, merge"),
    "custom-not-copyable-dropped": lambda: Custom(32473, b"local only", copyable=False),
    "name-resolution-dropped": lambda: Nrb([("10.0.0.1", ["host.example"])]),
    "interface-statistics-dropped": lambda: Isb(0, 0),
}


@pytest.mark.parametrize("case", NON_PACKET_BLOCKS)
def test_non_packet_blocks(mergecap, tmp_path, case):
    """mergecap copies a Decryption Secrets Block (the TLS keys Wireshark needs to decrypt
    the packets) just before the next packet it writes from that file, and a copyable custom
    block as soon as it heads its file (it has no timestamp, like an SPB); it drops
    do-not-copy custom blocks, name resolution and interface statistics blocks."""
    recs = [Rec(T0 + n * NS_PER_S, bytes([n]) * 60, 60) for n in range(4)]
    with_block = tmp_path / "with-block.pcapng"
    write_pcapng(with_block, [Section([Iface()], [recs[0], NON_PACKET_BLOCKS[case](),
                                                  *recs[1:]])])
    other = tmp_path / "other.pcapng"
    write_pcapng(other, [Section([Iface()], [Rec(T0 + NS_PER_S // 2, b"\x99" * 60, 60)])])
    theirs, ours = merge_both(mergecap, tmp_path, [with_block, other])
    assert block_sequence(ours) == block_sequence(theirs)
