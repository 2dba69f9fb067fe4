"""Sequential byte reads from a path or a binary file object.

A merge may have thousands of path inputs: they share a small pool of open handles, the
least recently read closed first and reopened at its place when needed again, so any number
of inputs stays far below the open-file limit (1024 by default on Linux). A file object
(a download stream) is read as it is and left to its owner to close.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

from srp.capture.model import Damage
from srp.errors import CaptureError


class _HandlePool:
    LIMIT = 256

    def __init__(self) -> None:
        self._open: OrderedDict[ByteSource, BinaryIO] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, source: ByteSource, position: int, size: int) -> bytes:
        with self._lock:
            file = self._open.pop(source, None)
        if file is None:
            # Unbuffered: the window reads whole chunks, a buffer would only copy them.
            file = open(source.path, "rb", buffering=0)
        try:
            # Wherever the handle is: a window may read bytes again (os.pread is POSIX-only).
            file.seek(position)
            data = file.read(size)
            while len(data) < size:  # a raw read may stop short of the end
                more = file.read(size - len(data))
                if not more:
                    break
                data += more
        except BaseException:
            file.close()
            raise
        with self._lock:
            self._open[source] = file
            evicted = self._open.popitem(last=False)[1] if len(self._open) > self.LIMIT else None
        if evicted is not None:
            evicted.close()
        return data

    def close(self, source: ByteSource) -> None:
        with self._lock:
            file = self._open.pop(source, None)
        if file is not None:
            file.close()


_HANDLES = _HandlePool()


class ByteSource:
    def __init__(self, source: str | os.PathLike | BinaryIO):
        if isinstance(source, (str, os.PathLike)):
            self.path: Path | None = Path(source)
            self.name = str(source)
            self._file: BinaryIO | None = None
            self._position = 0
        else:
            self.path = None
            self.name = str(getattr(source, "name", "<stream>"))
            self._file = source

    def read(self, size: int) -> bytes:
        """Up to `size` bytes from where the last read stopped; fewer only at the end."""
        if self.path is not None:
            try:
                data = _HANDLES.read(self, self._position, size)
            except OSError as exc:
                raise CaptureError(f"cannot read: {exc.strerror or exc}", self.name) from None
            self._position += len(data)
            return data
        chunks = []
        wanted = size
        while wanted > 0:  # streams may return short reads before the end
            chunk = self._file.read(wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        return b"".join(chunks)

    def rewind(self, size: int) -> bool:
        """Step back `size` bytes, so that the next read returns them again; False for a
        file object, which cannot."""
        if self.path is None:
            return False
        self._position -= size
        return True

    def close(self) -> None:
        """Let go of the input's handle (a path's; a file object stays its owner's)."""
        if self.path is not None:
            _HANDLES.close(self)


class Window:
    """A sliding window over a ByteSource: parsers read records straight out of `buf`.

    `buf[pos:]` is the unparsed input; `base` is the file offset of `buf[0]`, so damage can
    be reported at its place in the file.
    """

    def __init__(self, source: ByteSource):
        self.source = source
        self.buf = b""
        self.pos = 0
        self.base = 0
        self.eof = False

    def fill(self, wanted: int) -> None:
        """Make at least `wanted` unparsed bytes available, unless the input ends first."""
        have = len(self.buf) - self.pos
        if have >= wanted or self.eof:
            return
        self.base += self.pos
        if self.source.rewind(have):
            # Reading the unparsed bytes again with the new ones costs less than joining
            # them, which copies the whole chunk once more.
            self.buf = self.source.read(wanted)
            self.eof = len(self.buf) < wanted
        else:
            more = self.source.read(wanted - have)
            self.eof = len(more) < wanted - have
            self.buf = self.buf[self.pos:] + more
        self.pos = 0

    def release(self) -> None:
        """Let go of the bytes parsed so far (records made from them keep what they use). A
        path is read again from the first unparsed byte at the next fill; a file object's
        unparsed bytes stay."""
        if self.pos and self.source.rewind(len(self.buf) - self.pos):
            self.base += self.pos
            self.buf, self.pos, self.eof = b"", 0, False

    def close(self) -> None:
        """Done reading: let go of the source's handle and of the bytes read."""
        self.source.close()
        self.base += self.pos
        self.buf, self.pos, self.eof = b"", 0, True

    @property
    def remaining(self) -> int:
        return len(self.buf) - self.pos

    @property
    def offset(self) -> int:
        """File offset of the first unparsed byte."""
        return self.base + self.pos


class BatchReader:
    """The reading loop every capture format shares; a format supplies `_parse`.

    `_parse(window)` turns the complete records at the front of the window into record
    tuples (see srp.capture.model) and advances `window.pos` past them; it sets
    `self.damage` where the input stops making sense. Reading stops at damage: the
    records before it are kept.
    """

    def __init__(self, window: Window):
        self.name = window.source.name
        self._window = window
        self.damage: Damage | None = None
        self.records_read = 0
        self.blocks_read = 0     # of those, non-packet blocks passed on (model.BLOCK)
        self._done = False

    def close(self) -> None:
        self._window.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def done(self) -> bool:
        """True once every record has been returned."""
        return self._done

    def read_batch(self, budget: int) -> list[tuple] | None:
        """The next records, about `budget` bytes of them; None once the input is done."""
        return self._read(budget, self._parse)

    def _read(self, budget: int, parse) -> list | None:
        if self._done or self.damage is not None:
            self._done = True
            return None
        window = self._window
        window.fill(budget)
        records = parse(window)
        while not records and self.damage is None and not window.eof:
            # One record larger than the budget: widen the window until it fits.
            window.fill(window.remaining + budget)
            records = parse(window)
        self.records_read += len(records)
        if self.damage is None and window.eof and window.remaining:
            self.damage = Damage(window.offset, self._describe_leftover(window.remaining),
                                 self.records_read)
        if self.damage is not None or (window.eof and not window.remaining):
            self._done = True
            self.close()
        else:
            # A merge holds a chunk of every input: what was parsed need not stay too.
            window.release()
        return records if records or not self._done else None

    def _damage_here(self, pos: int, reason: str, records_in_batch: int) -> None:
        self.damage = Damage(self._window.base + pos, reason, self.records_read + records_in_batch)

    def _describe_leftover(self, left: int) -> str:
        return "truncated record"

    def _parse(self, window: Window) -> list[tuple]:
        raise NotImplementedError
