"""Merge captures into one, in exactly mergecap's order, in bounded memory.

mergecap repeatedly writes the earliest of the inputs' head records (ties: the file given
last goes first) and never re-sorts records inside a file. That is the same as a stable sort
of all records keyed by each file's running maximum timestamp: an out-of-order record, once
at the head of its file, is earlier than every other head, so it leaves at once, right
after its predecessor, which is where the running maximum puts it. A record with no
timestamp also leaves at once.

So each input is read in chunks, its records encoded for the output and keyed by that running
maximum. In a round, the stream that may still have more and whose last buffered key is the
smallest sets a horizon; every buffered record up to it is final, and all of them are sorted
together in one C-level sort. Only chunks are ever in memory, and inputs given as paths are
opened only while a chunk is read.
"""

from __future__ import annotations

import heapq
import os
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import islice
from operator import le
from pathlib import Path
from typing import BinaryIO, Sequence

from srp.atomic import atomic_output
from srp.capture import open_capture
from srp.capture.model import Interface, same_interface
from srp.capture.pcap import OTHER_LINKTYPE, PcapWriter
from srp.capture.pcapng import PcapngWriter
from srp.errors import UsageError

FORMATS = ("pcapng", "pcap", "nsecpcap")
INTERFACE_MODES = ("all", "any", "none")
DEFAULT_PCAP_SNAPLEN = 262144
# What all inputs' chunks may hold together; each input reads its share at a time, at most
# MAX_CHUNK (larger chunks fall out of the CPU cache before they are written). An input
# that is written out whole frees its share for the inputs still being merged. (Records
# copied out of the chunks take about as much again; 16 MB merged 600 inputs no faster.)
BUFFER_BUDGET = 8 * 1024 * 1024
MIN_CHUNK = 4 * 1024
MAX_CHUNK = 256 * 1024
_WRITE_GROUP = 256   # records joined into one write


@dataclass
class MergeResult:
    output: Path
    format: str
    packets: int = 0
    first_ns: int | None = None     # the earliest and latest packet time written
    last_ns: int | None = None
    warnings: list[str] = field(default_factory=list)


def merge(inputs: Sequence[str | os.PathLike | BinaryIO], output: str | os.PathLike, *,
          format: str = "pcapng", snaplen: int | None = None, concatenate: bool = False,
          interfaces: str = "all", buffer_budget: int = BUFFER_BUDGET,
          names: Sequence[str] | None = None) -> MergeResult:
    """Merge `inputs` into `output`, written whole or not at all; `buffer_budget` bytes of
    input chunks are held at a time (less is slower, never more than that is held).
    `names` says what to call each input in the warnings (by default, its file name).

    Raises CaptureError when an input cannot be read as a capture (nothing is written), and
    UsageError when the inputs cannot be written in `format`. Damage inside an input ends
    that input early; it is reported in the result's warnings.
    """
    if format not in FORMATS:
        raise UsageError(f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}")
    if interfaces not in INTERFACE_MODES:
        raise UsageError(f"unknown interface mode {interfaces!r}; "
                         f"choose one of {', '.join(INTERFACE_MODES)}")
    if snaplen is not None and snaplen <= 0:
        raise UsageError("the snapshot length must be a positive number of bytes")
    if not inputs:
        raise UsageError("no input files")
    readers = []
    try:
        for source in inputs:
            readers.append(open_capture(source))
        return _merge_readers(readers, Path(output), format, snaplen, concatenate, interfaces,
                              buffer_budget, names or [reader.name for reader in readers])
    finally:
        for reader in readers:
            reader.close()


def _merge_readers(readers, output: Path, format: str, snaplen: int | None, concatenate: bool,
                   interfaces: str, budget: int, names: Sequence[str]) -> MergeResult:
    result = MergeResult(output=output, format=format)
    chunk = _chunk_size(budget, len(readers))
    with atomic_output(output, buffering=0) as file:
        table = _InterfaceTable(file, format, snaplen, interfaces, readers)
        streams = [_Stream(index, reader, table, snaplen, index - len(readers))
                   for index, reader in enumerate(readers)]
        sink = _Sink(table.writer)
        if concatenate:
            for stream in streams:
                while stream.refill(chunk):
                    sink.write(stream.blobs)
        else:
            _merge_streams(streams, sink, budget)
        sink.flush()
    stamped = [stream for stream in streams if stream.lowest is not None]
    if stamped:
        result.first_ns = min(stream.lowest for stream in stamped)
        result.last_ns = max(stream.highest for stream in stamped)
    result.packets = sum(reader.records_read - reader.blocks_read for reader in readers)
    blocks = sum(reader.blocks_read for reader in readers)
    if blocks and format != "pcapng":
        result.warnings.append(f"{blocks} pcapng blocks that are not packets (decryption "
                               f"secrets, custom blocks) can't be stored in a {format} file "
                               f"and were left out")
    for reader, name in zip(readers, names):
        if reader.damage is not None:
            result.warnings.append(reader.damage.describe(name))
    return result


def _chunk_size(budget: int, live_inputs: int) -> int:
    return min(MAX_CHUNK, max(MIN_CHUNK, budget // live_inputs))


class _InterfaceTable:
    """Decides the output's interfaces as mergecap's -I modes do, writes the output's header
    and interface blocks, and maps each input's interfaces onto the output's."""

    def __init__(self, file: BinaryIO, format: str, snaplen: int | None, mode: str, readers):
        self._format = format
        self._mode = mode
        self._written: list[Interface] = []    # the output's interfaces, by id
        self._collapsed = 0   # how many leading interfaces all inputs share, when collapsed
        self.maps: list[list[int]] = [[] for _ in readers]
        # The link types of the interfaces each file describes up front.
        self._linktypes = sorted({i.linktype for reader in readers for i in reader.interfaces})
        if format == "pcapng":
            self.writer = PcapngWriter(file)
            first = readers[0].interfaces
            # "all" collapses the files' interfaces only when every file has the same ones.
            self._collapsed = len(first) if mode == "all" and all(
                len(r.interfaces) == len(first)
                and all(map(same_interface, r.interfaces, first)) for r in readers) else 0
            for interface in first[:self._collapsed]:
                self._add(interface)
        else:
            if len(self._linktypes) > 1:
                raise UsageError(
                    f"the inputs have different link-layer types "
                    f"({', '.join(map(str, self._linktypes))}), which can't be written as a "
                    f"{format} file; use -F pcapng")
            self.writer = PcapWriter(file, self._linktypes[0] if self._linktypes else 1,
                                     snaplen or DEFAULT_PCAP_SNAPLEN, format == "nsecpcap")
        for reader, interface_map in zip(readers, self.maps):
            self.extend(reader, interface_map)

    def extend(self, reader, interface_map: list[int]) -> None:
        """Map the reader's interfaces not mapped yet (pcapng may describe one mid-file)."""
        for index in range(len(interface_map), len(reader.interfaces)):
            interface = reader.interfaces[index]
            if self._format != "pcapng":
                # Interfaces described later may have another link type, as long as no
                # packet uses them (mergecap judges by packets too).
                interface_map.append(0 if interface.linktype in self._linktypes
                                     else OTHER_LINKTYPE)
            elif index < self._collapsed:
                interface_map.append(index)
            else:
                # Once "all" has collapsed, later interfaces are merged as "any" merges them.
                merges = self._mode == "any" or self._collapsed
                duplicate = self._find(interface) if merges else None
                interface_map.append(self._add(interface) if duplicate is None else duplicate)

    def _find(self, interface: Interface) -> int | None:
        """The first output interface the given one is a duplicate of."""
        return next((i for i, known in enumerate(self._written)
                     if same_interface(interface, known)), None)

    def _add(self, interface: Interface) -> int:
        self._written.append(interface)
        self.writer.add_interface(interface)
        return len(self._written) - 1


class _Stream:
    """One input: a chunk of its records, encoded for the output, and their merge keys."""

    __slots__ = ("index", "reader", "keys", "blobs", "pos", "final", "lowest", "_encode",
                 "_encode_packet", "_all_stamped", "_table", "_interface_map", "_running")

    def __init__(self, index: int, reader, table: _InterfaceTable, snaplen: int | None,
                 leading_key: int):
        self.index = index
        self.reader = reader
        self.keys: list[int] = []
        self.blobs: list[bytes] = []
        self.pos = 0
        self.final = False
        self._table = table
        self._interface_map = table.maps[index]
        # Classic pcap has a timestamp on every record, and one interface. Its records go
        # from the file's bytes to the output's without record tuples: copied as they are
        # when the output holds them so, else through the writer's packet encoder. Other
        # readers' record tuples go through the writer's batch encoder.
        self._all_stamped = hasattr(reader, "read_blobs")
        self._encode = self._encode_packet = None
        if not self._all_stamped:
            self._encode = table.writer.encoder(self._interface_map, snaplen)
        elif not table.writer.copies(reader, snaplen):
            self._encode_packet = table.writer.packet_encoder(self._interface_map[0], snaplen)
        # Records before the file's first timestamp leave before anything stamped, the
        # first file's first, as mergecap writes unstamped records as soon as it sees them.
        self._running = leading_key
        self.lowest: int | None = None   # the earliest timestamp read

    @property
    def highest(self) -> int:
        return self._running

    def refill(self, budget: int) -> bool:
        """Read the next chunk; False when the input has no more records."""
        reader = self.reader
        self.pos = 0
        if self._all_stamped:
            batch = reader.read_blobs(budget, self._encode_packet)
            timestamps, blobs = batch if batch is not None else (None, None)
        else:
            records = reader.read_batch(budget)
            if records is not None:
                if len(reader.interfaces) > len(self._interface_map):
                    self._table.extend(reader, self._interface_map)
                timestamps = [record[0] for record in records]
                blobs = self._encode(records)
            else:
                timestamps = None
        if timestamps is None:
            self.final = True
            self.keys, self.blobs = [], []
            return False
        if self.lowest is None:
            self.lowest = next((ts for ts in timestamps if ts is not None), None)
        running, lowest = self._running, self.lowest
        if self._all_stamped and timestamps[0] >= running \
                and all(map(le, timestamps, islice(timestamps, 1, None))):
            # Packets in order, as most are, are their own running maximum.
            keys = timestamps
            running = timestamps[-1]
        else:
            keys = []
            append = keys.append
            for ts in timestamps:
                if ts is not None:
                    if ts > running:
                        running = ts
                    elif ts < lowest:
                        lowest = ts
                append(running)
        self._running, self.lowest = running, lowest
        self.keys = keys
        self.blobs = blobs
        self.final = reader.done
        return True


class _Sink:
    """Writes encoded records (as the writer's encoders made them) a few hundred at a time.

    The output file is unbuffered: a joined group still in the CPU cache goes to the file
    several times faster than through another buffer, or joined megabytes at a time.
    """

    def __init__(self, writer):
        self._write = writer.write_records
        self._pending: list = []

    def write(self, blobs: list) -> None:
        pending = self._pending
        pending += blobs
        if len(pending) >= _WRITE_GROUP:
            whole = len(pending) - len(pending) % _WRITE_GROUP
            for start in range(0, whole, _WRITE_GROUP):
                self._write(pending[start:start + _WRITE_GROUP])
            del pending[:whole]

    def flush(self) -> None:
        self._write(self._pending)
        self._pending.clear()


def _merge_streams(streams: list[_Stream], sink: _Sink, budget: int) -> None:
    # heads: every stream with buffered records, by its first buffered key.
    # horizon: every stream that may still have more, by its last buffered key.
    heads, horizon = [], []
    # Streams not yet written out whole; their number only falls, so a chunk sized by it
    # keeps all chunks together within the budget.
    live = len(streams)
    chunk = _chunk_size(budget, live)
    for stream in streams:
        if stream.refill(chunk):
            heads.append((stream.keys[0], -stream.index, stream))
            if not stream.final:
                horizon.append((stream.keys[-1], -stream.index, stream))
        else:
            live -= 1
    heapq.heapify(heads)
    heapq.heapify(horizon)
    finished: list[_Stream] = []
    while heads:
        if horizon:
            limit, limit_rank, limiter = horizon[0]
            limit_index = -limit_rank
        else:
            limit = limit_rank = limiter = limit_index = None
        taken = []
        # Every buffered record that sorts before the limiter's last buffered one is final:
        # on equal keys the later file goes first, so files after the limiter take their
        # equal keys too and files before it leave theirs for a later round.
        while heads and (limiter is None or heads[0][0] < limit
                         or (heads[0][0] == limit and heads[0][1] <= limit_rank)):
            _, rank, stream = heapq.heappop(heads)
            keys = stream.keys
            if limiter is None or stream is limiter:
                end = len(keys)
            elif stream.index > limit_index:
                end = bisect_right(keys, limit, stream.pos)
            else:
                end = bisect_left(keys, limit, stream.pos)
            taken.append((stream, stream.pos, end))
            stream.pos = end
            if end < len(keys):
                heapq.heappush(heads, (keys[end], rank, stream))
            elif stream.final:
                live -= 1
                finished.append(stream)
        _write_sorted(taken, sink)
        for stream in finished:   # written out whole: its last chunk may go
            stream.keys, stream.blobs = [], []
        finished.clear()
        if limiter is not None:
            heapq.heappop(horizon)
            if limiter.refill(_chunk_size(budget, live)):
                heapq.heappush(heads, (limiter.keys[0], -limiter.index, limiter))
                if not limiter.final:
                    heapq.heappush(horizon, (limiter.keys[-1], -limiter.index, limiter))
            else:
                live -= 1


def _write_sorted(taken: list[tuple[_Stream, int, int]], sink: _Sink) -> None:
    if len(taken) == 1:
        stream, start, end = taken[0]
        sink.write(stream.blobs[start:end])
        return
    # Later files first, so that the stable sort puts them first on equal keys.
    taken.sort(key=lambda part: -part[0].index)
    keys, blobs = [], []
    for stream, start, end in taken:
        keys += stream.keys[start:end]
        blobs += stream.blobs[start:end]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    sink.write([blobs[i] for i in order])
