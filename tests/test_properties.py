"""Property-based tests (hypothesis): writer -> reader round trips, and readers that never
raise anything but CaptureError on mutated, truncated or padded captures."""

from __future__ import annotations

import io
import random
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    random_recs,
    units_per_second,
    write_kind,
    write_pcap,
    write_pcapng,
)
from srp.capture import open_capture
from srp.capture.merge import merge
from srp.capture.model import BLOCK, Interface
from srp.capture.pcap import PcapWriter
from srp.capture.pcapng import PcapngWriter
from srp.errors import CaptureError, SrpError

T0 = DEFAULT_START_NS
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


# --- helpers --------------------------------------------------------------


def plain(record: tuple) -> tuple:
    """A record tuple with its data and options as bytes (readers may hand out memoryviews
    into their chunk; see srp.capture.model)."""
    ts, iface, origlen, data, options = record
    assert isinstance(data, (bytes, memoryview)), type(data)
    return ts, iface, origlen, bytes(data), None if options is None else bytes(options)


def read_all(source, budget: int = 1 << 20):
    """Open `source` and read it to the end: (reader, every record tuple).

    Fails (not raises) if reading does not end after a number of batches proportional to
    the input, so a reader stuck in a loop is a failure rather than a hang."""
    reader = open_capture(source)
    records = []
    for _ in range(100_000):
        batch = reader.read_batch(budget)
        if batch is None:
            return reader, records
        records.extend(map(plain, batch))
    raise AssertionError("read_batch never returned None")


def read_bytes(payload: bytes, budget: int = 1 << 20):
    return read_all(io.BytesIO(payload), budget)


def written(write, *args) -> bytes:
    """What a writer function writes into a fresh in-memory file."""
    buffer = io.BytesIO()
    write(buffer, *args)
    return buffer.getvalue()


def write_pcap_records(file, records, interface: Interface, nanosecond: bool) -> None:
    writer = PcapWriter(file, interface.linktype, interface.snaplen, nanosecond)
    writer.write_records(writer.encoder([0], None)(records))


def write_pcapng_records(file, records, interfaces) -> None:
    writer = PcapngWriter(file)
    for interface in interfaces:
        writer.add_interface(interface)
    writer.write_records(writer.encoder(list(range(len(interfaces))), None)(records))


def le_options(options) -> bytes | None:
    """A record's options as readers return them: little-endian, ending in opt_endofopt."""
    if not options:
        return None
    out = b""
    for code, value in options:
        out += struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    return out + b"\0\0\0\0"


def floor_to(ts: int, per_second: int) -> int:
    """The timestamp a reader reports after a writer stored ts in units of 1/per_second s."""
    return ts * per_second // NS_PER_S * NS_PER_S // per_second


# --- round trips ------------------------------------------------------------

payloads = st.binary(max_size=120)
origlen_extra = st.one_of(st.just(0), st.integers(0, 70_000), st.integers(0, 2**32 - 1))


@st.composite
def pcap_records(draw):
    """Record tuples a classic pcap file can hold: 32-bit seconds, ns timestamps."""
    records = []
    for _ in range(draw(st.integers(0, 25))):
        data = draw(payloads)
        origlen = min(len(data) + draw(origlen_extra), 2**32 - 1)
        records.append((draw(st.integers(0, 2**32 * NS_PER_S - 1)), 0, origlen, data, None))
    return records


TSRESOLS = [None, 0, 3, 6, 9, 12, 0x80 | 0, 0x80 | 10, 0x80 | 20, 0x80 | 30]
option_codes = st.integers(1, 0xFFFF).filter(lambda code: code != 14)  # 14: if_tsoffset
DO_NOT_COPY, LOCAL_USE = (19372, 19373), 0x8000   # options a reader leaves out


@st.composite
def pcapng_interfaces(draw):
    """1-4 interfaces whose options agree with their ts_units (if_tsresol)."""
    interfaces = []
    for _ in range(draw(st.integers(1, 4))):
        tsresol = draw(st.sampled_from(TSRESOLS))
        options = draw(st.lists(st.tuples(st.sampled_from([1, 2, 3, 4]), st.binary(max_size=20)),
                                max_size=3))
        if tsresol is not None:
            options.insert(draw(st.integers(0, len(options))), (9, bytes([tsresol])))
        interfaces.append(Interface(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 2**32 - 1)),
                                    units_per_second(tsresol), 0, tuple(options)))
    return interfaces


@st.composite
def pcapng_case(draw):
    """(interfaces, records, the options a reader keeps of each record): records name any
    interface and carry optional options, some of the kinds a copy must leave out."""
    interfaces = draw(pcapng_interfaces())
    records, copied = [], []
    for _ in range(draw(st.integers(0, 25))):
        iface = draw(st.integers(0, len(interfaces) - 1))
        # The largest timestamp whose unit count fits the 64-bit field.
        limit = (1 << 64) * NS_PER_S // interfaces[iface].ts_units
        ts = draw(st.integers(0, min(limit, 2**63) - 1))
        data = draw(payloads)
        origlen = min(len(data) + draw(origlen_extra), 2**32 - 1)
        options = draw(st.lists(st.tuples(option_codes, st.binary(max_size=12)), max_size=3))
        records.append((ts, iface, origlen, data, le_options(options)))
        copied.append(le_options([(code, value) for code, value in options
                                  if code not in DO_NOT_COPY and not code & LOCAL_USE]))
    return interfaces, records, copied


@FAST
@given(records=pcap_records(), nanosecond=st.booleans(), linktype=st.integers(0, 0xFFFF))
def test_pcap_round_trip(records, nanosecond, linktype):
    """Records -> PcapWriter (us or ns) -> reader: the same records, timestamps cut to
    microseconds in a microsecond file; the link type and snaplen of the header."""
    interface = Interface(linktype, 262144)
    reader, back = read_bytes(written(write_pcap_records, records, interface, nanosecond))
    step = 1 if nanosecond else 1000
    assert back == [(ts // step * step, 0, origlen, data, None)
                    for ts, _, origlen, data, _ in records]
    assert (reader.interfaces[0].linktype, reader.interfaces[0].snaplen) == (linktype, 262144)
    assert reader.damage is None


@FAST
@given(case=pcapng_case())
def test_pcapng_round_trip(case):
    """Records over several interfaces -> PcapngWriter -> reader: the interfaces exactly,
    and each record with its timestamp floored to its interface's units, its options kept
    but for do-not-copy custom options and local-use ones, which a copy leaves out."""
    interfaces, records, copied = case
    reader, back = read_bytes(written(write_pcapng_records, records, interfaces))
    assert reader.interfaces == interfaces
    assert back == [(floor_to(ts, interfaces[iface].ts_units), iface, origlen, data, options)
                    for (ts, iface, origlen, data, _), options in zip(records, copied)]
    assert reader.damage is None


@FAST
@given(kind=st.sampled_from(sorted(KINDS)), seed=st.integers(0, 2**32),
       n=st.integers(0, 20), snaplen=st.sampled_from([None, 64, 1000]),
       budget=st.sampled_from([1, 100, 1 << 20]))
def test_read_write_read_is_stable(tmp_path, kind, seed, n, snaplen, budget):
    """A capgen file read, written by our writer of its own kind (and always as pcapng),
    and read again gives the same interfaces and records, and writing those again gives
    the same bytes.

    Exception, as in mergecap: with a 2^-n if_tsresol the reader floors units to ns and the
    writer floors ns to units, so each pass may move a timestamp back by one unit; the
    records read back are then exactly the floored ones (checked in pcapng_round_trip)."""
    recs = random_recs(random.Random(seed), n, start_ns=T0, spread_ns=10 * NS_PER_S,
                       tsresol=KINDS[kind].tsresol, snaplen=snaplen)
    path = tmp_path / f"in-{kind}"
    write_kind(path, kind, recs, snaplen=snaplen or 65535)
    first_reader, first = read_all(path, budget)
    assert [r[:4] for r in first] == [(r.ts_ns, 0, r.origlen, r.data) for r in recs]
    units = first_reader.interfaces[0].ts_units

    writers = [lambda f, records, ifaces: write_pcapng_records(f, records, ifaces)]
    if KINDS[kind].container == "pcap":
        nanosecond = KINDS[kind].tsresol == 9
        writers.append(lambda f, records, ifaces: write_pcap_records(f, records, ifaces[0],
                                                                     nanosecond))
    for write in writers:
        once = written(write, first, first_reader.interfaces)
        reader, again = read_bytes(once, budget)
        assert again == [(floor_to(r[0], units),) + r[1:] for r in first]
        assert [(i.linktype, i.ts_units) for i in reader.interfaces] == [
            (i.linktype, i.ts_units) for i in first_reader.interfaces]
        if NS_PER_S % units == 0:  # a decimal resolution: every pass is exact
            assert again == first
            assert written(write, again, reader.interfaces) == once


# --- robustness -------------------------------------------------------------


def _pcap_v22(path: Path) -> None:
    """A version 2.2 pcap (origlen before caplen)."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", capgen.PCAP_MAGIC_US, 2, 2, 0, 0, 60, 1))
        for index in range(3):
            out.write(struct.pack("<IIII", 1_700_000_000, index, 90, 60) + bytes([index]) * 60)


def _small_files(directory: Path) -> dict[str, bytes]:
    """Small captures of every shape the readers know, as bytes."""
    rng = random.Random(1234)
    files = {}
    for kind in ("pcap-us-le", "pcap-ns-be", "pcapng-le", "pcapng-bin20-be"):
        recs = random_recs(rng, 3, start_ns=T0, spread_ns=NS_PER_S, tsresol=KINDS[kind].tsresol,
                           min_len=20, max_len=70)
        write_kind(directory / kind, kind, recs)
        files[kind] = (directory / kind).read_bytes()
    fcs = directory / "fcs.pcap"
    write_pcap(fcs, [Rec(T0, b"\x05" * 30, 34)], linktype=1,
               linktype_fcs_bits=capgen.fcs_linktype_bits(2))
    files["pcap-fcs"] = fcs.read_bytes()
    _pcap_v22(directory / "v22.pcap")
    files["pcap-v22"] = (directory / "v22.pcap").read_bytes()
    rich = directory / "rich.pcapng"
    write_pcapng(rich, [
        Section([Iface(1, 50, 9, tsoffset=-5, name="eth0")], [
            Nrb([("10.0.0.1", ["a"])]),
            Rec(T0, b"\x01" * 40, 44, comment="c"),
            Isb(0, 7),
            Rec(None, b"\x02" * 30, 30, spb=True),
            Rec(T0 + 1000, b"\x03" * 25, 25, obsolete=True),
            Custom(1, b"xy"),
            Iface(105, 0, 0x80 | 20),
            Rec(T0 + NS_PER_S, b"\x04" * 20, 20, iface=1),
            RawBlock(0x12345678, b"??"),
        ], byteorder=">"),
        Section([Iface(228, 100, 3)], [Rec(T0, b"\x06" * 10, 10)], byteorder="<",
                known_length=True),
    ])
    files["pcapng-rich"] = rich.read_bytes()
    return files


_SMALL: dict[str, bytes] = {}


def small_files() -> dict[str, bytes]:
    if not _SMALL:
        with tempfile.TemporaryDirectory() as directory:
            _SMALL.update(_small_files(Path(directory)))
    return _SMALL


def check_read_survives(payload: bytes, budget: int = 1 << 20, stream: bool = False):
    """Read a (possibly broken) capture fully: only CaptureError may escape, and whatever
    is returned is well formed. Returns (reader, records), or None after CaptureError."""
    try:
        source = _ShortReads(payload) if stream else io.BytesIO(payload)
        reader, records = read_all(source, budget)
    except CaptureError:
        return None
    for record in records:
        ts, iface, origlen, data, options = record
        assert ts is None or isinstance(ts, int)
        assert iface == BLOCK or 0 <= iface < len(reader.interfaces)
        assert isinstance(origlen, int) and origlen >= 0
        assert isinstance(data, bytes) and len(data) <= len(payload)
        assert options is None or isinstance(options, bytes)
    if reader.damage is not None:
        assert 0 <= reader.damage.offset <= len(payload)
        assert reader.damage.records_kept == len(records)
    return reader, records


class _ShortReads(io.RawIOBase):
    """An unseekable stream returning at most 5 bytes a read."""

    def __init__(self, payload: bytes):
        self._payload, self._pos = payload, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), 5, len(self._payload) - self._pos)
        buffer[:size] = self._payload[self._pos:self._pos + size]
        self._pos += size
        return size


def _boundaries(payload: bytes) -> set[int]:
    """Offsets where a valid file may end: after the pcap header or any record/block."""
    if payload[:4] == b"\x0a\x0d\x0d\x0a":
        ends, offset, order = set(), 0, "<"
        while offset < len(payload):
            if payload[offset:offset + 4] == b"\x0a\x0d\x0d\x0a":
                order = "<" if payload[offset + 8:offset + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            offset += struct.unpack_from(order + "I", payload, offset + 4)[0]
            ends.add(offset)
        return ends
    order = "<" if payload[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    minor = struct.unpack_from(order + "H", payload, 6)[0]
    ends, offset = {24}, 24
    while offset < len(payload):
        fields = struct.unpack_from(order + "II", payload, offset + 8)
        offset += 16 + (fields[1] if minor < 3 else fields[0])
        ends.add(offset)
    return ends


@pytest.mark.parametrize("name", ["pcap-us-le", "pcap-ns-be", "pcap-v22", "pcapng-le",
                                  "pcapng-bin20-be", "pcapng-rich"])
def test_truncation_at_every_offset(name):
    """Every prefix of a small file: CaptureError, or a prefix of the full file's records,
    with damage reported exactly when the cut is not at a record/block boundary."""
    payload = small_files()[name]
    _, full = read_bytes(payload)
    boundaries = _boundaries(payload)
    for cut in range(len(payload)):
        for budget in (1, 1 << 20):
            outcome = check_read_survives(payload[:cut], budget)
            if outcome is None:
                continue
            reader, records = outcome
            assert records == full[:len(records)], (cut, budget)
            if cut in boundaries:
                assert reader.damage is None, (cut, budget)
            else:
                assert reader.damage is not None and reader.damage.offset <= cut, (cut, budget)


@st.composite
def mutated(draw):
    """A small capture with a few bytes flipped, a slice of garbage inserted, or cut."""
    files = small_files()
    payload = bytearray(files[draw(st.sampled_from(sorted(files)))])
    how = draw(st.sampled_from(["flip", "insert", "flip+cut", "overwrite-length"]))
    if how in ("flip", "flip+cut"):
        for _ in range(draw(st.integers(1, 6))):
            payload[draw(st.integers(0, len(payload) - 1))] ^= draw(st.integers(1, 255))
        if how == "flip+cut":
            del payload[draw(st.integers(0, len(payload))):]
    elif how == "insert":
        at = draw(st.integers(0, len(payload)))
        payload[at:at] = draw(st.binary(min_size=1, max_size=40))
    else:  # a 32-bit field anywhere set to an extreme value
        at = draw(st.integers(0, len(payload) - 4))
        payload[at:at + 4] = draw(st.sampled_from(
            [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\xff\xff\xff\x7f",
             b"\x00\x00\x00\x80", b"\x80\x00\x00\x00", b"\x0c\x00\x00\x00", b"\x00\x00\x00\x0c"]))
    return bytes(payload)


@settings(max_examples=600, deadline=None)
@given(payload=mutated(), budget=st.sampled_from([1, 3, 64, 1 << 20]), stream=st.booleans())
def test_mutated_files_raise_only_capture_error(payload, budget, stream):
    """Reading a mutated capture fully (any budget, BytesIO or a short-read stream) raises
    nothing but CaptureError, terminates, and returns well-formed records."""
    check_read_survives(payload, budget, stream)


@settings(max_examples=80, deadline=None)
@given(payload=mutated(), fmt=st.sampled_from(["pcapng", "pcap", "nsecpcap"]),
       mode=st.sampled_from(["all", "any", "none"]), concatenate=st.booleans())
def test_merging_mutated_files_raises_only_srp_errors(payload, fmt, mode, concatenate):
    """merge() of a mutated capture with an intact one raises nothing but SrpError, and when
    it succeeds its output reads back with no damage."""
    good = small_files()["pcap-us-le"]
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "out"
        try:
            merge([io.BytesIO(payload), io.BytesIO(good)], out, format=fmt, interfaces=mode,
                  concatenate=concatenate)
        except SrpError:
            assert not out.exists()
            return
        reader, _ = read_all(out)
        assert reader.damage is None
