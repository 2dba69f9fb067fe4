"""What a retrieval ends with, the same for every vendor: a status and its exit code, the
`--json` object, and the short plain-text summary the Web Console shows the analyst."""

from __future__ import annotations

from dataclasses import dataclass, field

from srp.errors import EXIT_ERROR, EXIT_NO_DATA, EXIT_OK, EXIT_PARTIAL
from srp.redaction import redact
from srp.summary import render_text
from srp.summary.render import human_size

EXIT_CODES = {"ok": EXIT_OK, "no-data": EXIT_NO_DATA, "partial": EXIT_PARTIAL,
              "error": EXIT_ERROR}


@dataclass
class CaseResult:
    """What the case step (srp.delivery) did with the capture: attached (as file evidence),
    noted (too large: a note with its place on the Event Manager instead), skipped (no
    capture to attach) or failed."""

    status: str
    reason: str                      # one sentence: why this status
    id: str | None = None            # the case's GUID, number and name, once known
    number: int | None = None
    name: str | None = None
    evidence: list[int] = field(default_factory=list)   # the numbers this run added
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"id": self.id, "number": self.number, "name": self.name,
                "status": self.status, "evidence": self.evidence,
                "reason": redact(self.reason)}

    def line(self) -> str:
        """The summary's case line: what happened first, the case's name last (a long one
        is what the summary's width cuts)."""
        where = f"case {self.number}, " if self.number is not None else ""
        what = self.reason if self.status in ("attached", "noted") else \
            f"{self.status}: {self.reason}"
        name = f': "{self.name}"' if self.name else ""
        return f"case:     {where}{what}{name}"


@dataclass
class Preview:
    """What a retrieval would fetch, found and capped as it would be, fetching nothing."""

    planned: int                     # sessions it would download
    captured: int                    # of those found, the ones with packets
    announced: int                   # bytes the appliance announces for the planned ones
    unsized: int                     # planned sessions whose size it does not announce
    first: str | None                # the planned sessions' time span, as announced
    last: str | None
    endpoints: list[tuple[str, int]]   # the busiest hosts: (host, sessions), most first
    caps: str                        # the caps it applied, as the options say them
    cuts: list[str] = field(default_factory=list)   # what they would cut
    reuse: str | None = None         # when an earlier result would be reused instead

    def lines(self, found: int) -> list[str]:
        size = ("the appliance announces no sizes" if self.unsized == self.planned else
                f"about {human_size(self.announced)} announced"
                + (f" ({self.unsized} without a size)" if self.unsized else ""))
        lines = [f"sessions: {found} found, {self.captured} captured, {self.planned} to fetch",
                 f"size:     {size}" if self.planned else "size:     nothing to fetch"]
        if self.first:
            lines.append(f"span:     {self.first} to {self.last}")
        if self.endpoints:
            lines.append("busiest:  " + ", ".join(f"{host} ({count})"
                                                  for host, count in self.endpoints))
        lines.append(f"caps:     {self.caps}" + ("" if self.cuts else ": nothing cut"))
        lines += [f"          {cut}" for cut in self.cuts]
        if self.reuse:
            lines.append(f"reuse:    {self.reuse}")
        return lines


@dataclass
class Outcome:
    vendor: str
    status: str                      # ok, no-data, partial, error
    reason: str                      # one sentence: why this status
    pcap: str | None = None
    sha256: str | None = None
    packets: int = 0
    bytes: int = 0
    found: int = 0                   # sessions the appliance reported
    downloaded: int = 0
    failed: int = 0
    first: str | None = None         # first and last packet time, RFC 3339 UTC
    last: str | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    manifest: str | None = None
    reused: bool = False
    new: int = 0                     # sessions this run downloaded (a top-up: the new ones)
    # A result is final unless its window is still open or it is partial: a later run for
    # the alarm reuses a final one, and tops up one that is not.
    final: bool = False
    window_closes: str | None = None  # RFC 3339 UTC, while the window is still open
    case: CaseResult | None = None   # with --case: what the case step did
    preview: Preview | None = None   # with --preview: what a retrieval would fetch
    about: dict[str, str] = field(default_factory=dict)   # the appliance on the alarm
    capture: object = field(default=None, repr=False)   # the capture's CaptureSummary

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def as_json(self) -> dict:
        return {
            "status": self.status, "reason": redact(self.reason), "vendor": self.vendor,
            "pcap": self.pcap, "sha256": self.sha256, "packets": self.packets,
            "bytes": self.bytes,
            "sessions": {"found": self.found, "downloaded": self.downloaded,
                         "failed": self.failed,
                         **({"planned": self.preview.planned} if self.preview else {})},
            "first": self.first, "last": self.last,
            "warnings": [redact(w) for w in self.warnings],
            "errors": [redact(e) for e in self.errors],
            "manifest": self.manifest, "reused": self.reused, "new": self.new,
            "final": self.final, "window_closes": self.window_closes,
            "case": self.case.as_json() if self.case is not None else None,
            "preview": self.preview is not None, "about": dict(self.about),
            "summary": self.capture.as_json() if self.capture is not None else None,
        }

    def text(self) -> str:
        """At most 40 lines readable in a fixed-width box with no terminal: how it went, the
        file, and what the traffic in it is (with --preview: what would be fetched)."""
        if self.preview is not None:
            return redact(render_text(
                None, heading=[f"srp-pcap {self.vendor}: PREVIEW: {self.reason}"],
                details=[*self.preview.lines(self.found), *self._about_lines()],
                errors=self.errors,
                warnings=self.warnings))
        return redact(render_text(
            self.capture,
            heading=[f"srp-pcap {self.vendor}: {self.status.upper()}: {self.reason}"],
            details=[f"sessions: {self.found} found, {self.downloaded} downloaded, "
                     f"{self.failed} failed",
                     *([self.case.line()] if self.case is not None else []),
                     *self._about_lines()],
            errors=self.errors, warnings=self.warnings))

    def _about_lines(self) -> list[str]:
        return [f"{label + ':':<9} {text}" for label, text in self.about.items()]
