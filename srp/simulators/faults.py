"""Faults a simulator can be switched into, while it runs, to show how clients cope.

A fault has a name the simulator gives meaning to, and may be limited to requests about some
sessions, or to the first N requests it applies to (a burst that then clears).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterable


@dataclass
class Fault:
    name: str
    sessions: frozenset[str] | None = None   # only requests about these session ids
    first: int | None = None                 # only the first N requests it applies to
    retry_after: int = 1                     # "503": seconds announced in Retry-After
    after_bytes: int = 2048                  # "reset": body bytes sent before the reset
    latency_ms: int = 200                    # "slow": added to each request
    fired: int = field(default=0, init=False)   # requests it has applied to so far

    def __post_init__(self):
        if self.sessions is not None:
            self.sessions = frozenset(self.sessions)
        if self.first is not None and self.first < 0:
            raise ValueError("first must be 0 or more")

    def applies_to(self, session_id: str | None) -> bool:
        if self.first is not None and self.fired >= self.first:
            return False
        return self.sessions is None or session_id in self.sessions


class FaultSwitch:
    """The faults in force, safe to change from a test while requests are being served."""

    def __init__(self, known_names: Iterable[str], faults: Iterable[Fault | str] = ()):
        self.known_names = tuple(known_names)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.set(*faults)

    def set(self, *faults: Fault | str) -> None:
        """Replace the faults in force; a bare name is that fault, unlimited."""
        chosen = [Fault(fault) if isinstance(fault, str) else fault for fault in faults]
        for fault in chosen:
            if fault.name not in self.known_names:
                raise ValueError(f"unknown fault {fault.name!r} "
                                 f"(one of {', '.join(self.known_names)})")
        with self._lock:
            self._faults = chosen

    def clear(self) -> None:
        self.set()

    def fire(self, name: str, session_id: str | None = None) -> Fault | None:
        """The first fault called `name` that applies to this request, counted as applied;
        None when no such fault is in force."""
        with self._lock:
            for fault in self._faults:
                if fault.name == name and fault.applies_to(session_id):
                    fault.fired += 1
                    return fault
        return None
