"""Progress on stderr for a run started by hand: sessions done and bytes so far.

Only when stderr is a terminal: under the SmartResponse service, in the Web Console, or in a
pipe, nothing is drawn (a carriage-return animation would end up as garbage in the text the
analyst reads).
"""

from __future__ import annotations

import sys
import threading

from srp.retrieval.download import ByteBudget

TICK = 0.5   # seconds between redraws


class Progress:
    """Counts finished sessions; a background thread redraws one status line."""

    def __init__(self, total: int, budget: ByteBudget, stream=None):
        self.total = total
        self.done = 0
        self.failed = 0
        self._budget = budget
        self._stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def wanted(stream=None) -> bool:
        stream = stream if stream is not None else sys.stderr
        try:
            return stream is not None and stream.isatty()
        except (AttributeError, ValueError):   # no console at all, or a closed stream
            return False

    def session_finished(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += not ok

    def line(self) -> str:
        with self._lock:
            done, failed = self.done, self.failed
        megabytes = self._budget.used / (1024 * 1024)
        failures = f", {failed} failed" if failed else ""
        return f"sessions {done}/{self.total}{failures}, {megabytes:.1f} MiB"

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._draw, name="progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        self._write(self.line() + "\n")

    def _draw(self) -> None:
        while not self._stopped.wait(TICK):
            self._write(self.line())

    def _write(self, text: str) -> None:
        try:
            self._stream.write("\r\x1b[K" + text)
            self._stream.flush()
        except (OSError, ValueError):
            self._stopped.set()
