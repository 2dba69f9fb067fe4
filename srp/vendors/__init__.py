"""One module per capture appliance behind one small interface.

A vendor module holds every wire detail of its appliance (routes, headers, field names,
status words), so fixing one vendor touches one file. The retrieval core
(srp.retrieval.run) does the rest the same way for all: caps, parallel downloads,
unpacking, merging, the manifest and the outcome.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from srp.retrieval.download import ByteBudget, Downloaded


@dataclass
class Session:
    """One capture the appliance can hand over."""

    id: str
    captured: bool = True
    size: int | None = None          # bytes the appliance expects, for planning --max-bytes
    start: str | None = None         # RFC 3339, to fetch in time order
    details: dict = field(default_factory=dict)   # metadata for the manifest


class Vendor(ABC):
    name: ClassVar[str]
    # How often the core tries one session's download when the transfer breaks off;
    # a vendor whose downloads cannot simply be repeated retries inside fetch instead.
    download_attempts: ClassVar[int] = 3
    # Whether the appliance serves sessions as archives (7z, gzip) rather than captures.
    serves_archives: ClassVar[bool] = False
    # What one session is called on this appliance, in messages: "session 12", "flow 9".
    session_noun: ClassVar[str] = "session"
    # "No data" in the appliance's own terms: the analyst reads the one that applies.
    nothing_found: ClassVar[str] = "no session matched"
    nothing_captured: ClassVar[str] = "none of the sessions has captured packets"
    only_empty: ClassVar[str] = "the downloaded captures hold no packet"

    def __init__(self) -> None:
        self.warnings: list[str] = []   # what the user should know; reach the outcome

    @abstractmethod
    def request(self) -> dict:
        """What identifies this retrieval, for the manifest and for reuse; no secrets."""

    @abstractmethod
    def find_sessions(self) -> list[Session]:
        """Every session behind the alarm, captured or not."""

    @abstractmethod
    def fetch(self, session: Session, dest: Path, budget: ByteBudget) -> Downloaded:
        """Download one session's capture (or archive) into `dest`."""

    def describe(self, session: Session) -> str:
        return f"{self.session_noun} {session.id}"

    def count(self, number: int) -> str:
        """"1 flow", "3 flows"."""
        return f"{number} {self.session_noun}{'' if number == 1 else 's'}"

    def close(self) -> None:
        """Release connections."""
