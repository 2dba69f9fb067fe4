"""The small interface every capture appliance implements, and what its methods return.

It lives in the retrieval core, which drives it, so that the vendor modules (srp.vendors)
import the core and never the other way round. A vendor returns what it learns (the
sessions it found with their warnings and its "no data" words; each download with its own
details and warnings) instead of writing it anywhere: the core builds the outcome from
those values alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from srp.retrieval.download import ByteBudget
    from srp.retrieval.http import HttpClient


@dataclass
class Session:
    """One capture the appliance can hand over."""

    id: str
    captured: bool = True
    size: int | None = None          # bytes the appliance expects, for planning --max-bytes
    start: str | None = None         # RFC 3339, to fetch in time order
    end: str | None = None           # RFC 3339, where the appliance says
    endpoints: tuple[str, ...] = ()  # the hosts it is between, where the appliance says
    details: dict = field(default_factory=dict)   # metadata for the manifest
    # What the vendor needs to fetch it (an alert to upload, a log's status): its own.
    handle: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class NoData:
    """Why a retrieval has nothing, in the appliance's own terms: the analyst reads the
    sentence that applies."""

    nothing_found: str = "no session matched"
    nothing_captured: str = "none of the sessions has captured packets"
    only_empty: str = "the downloaded captures hold no packet"


@dataclass(frozen=True)
class InlinePacket:
    """A packet the search itself carried (a verbose alert's trigger packet): the capture
    when no session yields one."""

    what: str                        # "the alert's trigger packet", in messages
    time_ns: int
    linktype: int
    data: bytes
    original_length: int


@dataclass
class Found:
    """What a vendor's search found: every session behind the alarm, captured or not."""

    sessions: list[Session]
    no_data: NoData
    warnings: list[str] = field(default_factory=list)
    fallback: InlinePacket | None = None
    # What the appliance says of the alarm itself, for the summary: label -> text
    # ("signature": ..., "matched": ...).
    about: dict[str, str] = field(default_factory=dict)


@dataclass
class Downloaded:
    """One session's body on disk: a capture, or an archive of captures (`kind`)."""

    path: Path
    size: int                        # as the appliance sent it
    sha256: str
    kind: str                        # pcap, pcapng, 7z, gzip (srp.capture.magic)
    details: dict = field(default_factory=dict)   # for the session's manifest entry
    warnings: list[str] = field(default_factory=list)


class Vendor(ABC):
    """One appliance. A vendor builds itself from the command's raw option values and checks
    them in its constructor, the one place its inputs are read; it owns its HTTP client."""

    name: ClassVar[str]
    # The options whose values are secrets: masked in every output before anything is read.
    secret_options: ClassVar[tuple[str, ...]] = ()
    # How often the core tries one session's download when the transfer breaks off;
    # a vendor whose downloads cannot simply be repeated retries inside fetch instead.
    download_attempts: ClassVar[int] = 3
    # Whether the appliance serves sessions as archives (7z, gzip) rather than captures.
    serves_archives: ClassVar[bool] = False
    # What one session is called on this appliance, in messages: "session 12", "flow 9".
    session_noun: ClassVar[str] = "session"

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    @abstractmethod
    def request(self) -> dict:
        """What identifies this retrieval, for the manifest and for reuse; no secrets."""

    @abstractmethod
    def find_sessions(self) -> Found:
        """Every session behind the alarm, captured or not."""

    @abstractmethod
    def fetch(self, session: Session, dest: Path, budget: ByteBudget) -> Downloaded:
        """Download one session's capture (or archive) into `dest`, counting it against
        --max-bytes."""

    def window_closes(self) -> datetime | None:
        """When the time window searched ends, for a search that has one: sessions up to
        then may still be indexed after this run."""
        return None

    def describe(self, session: Session) -> str:
        return f"{self.session_noun} {session.id}"

    def count(self, number: int) -> str:
        """"1 flow", "3 flows"."""
        return f"{number} {self.session_noun}{'' if number == 1 else 's'}"

    def close(self) -> None:
        """Release the appliance's connections."""
        self.client.close()
