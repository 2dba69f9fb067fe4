"""One retrieval, the same for every vendor: find the sessions, cap them, download them in
parallel, unpack, merge into one capture, write the manifest, and say how it went.

One session failing does not sink the others: the result is "partial" and names it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from srp import __version__
from srp.capture import open_capture
from srp.errors import CaptureError, SrpError, UsageError
from srp.hashing import file_sha256
from srp.oplog import log
from srp.retrieval.download import (ByteBudget, DownloadError, SizeCapReached, TransferBroken,
                                    unpack)
from srp.retrieval.outcome import CaseResult, Outcome, Preview
from srp.retrieval.progress import Progress
from srp.retrieval.store import ResultStore, record_case, write_manifest
from srp.retrieval.vendor import Downloaded, Found, InlinePacket, Session, Vendor
from srp.summary.render import human_size
from srp.timestamps import ns_to_rfc3339, rfc3339, utc_now

LOCK_WAIT = 15 * 60   # seconds a run waits for another run of the same alarm
# Input bytes the merge holds at a time. A retrieval runs beside the SIEM on its Event
# Manager: a quarter of the merge command's budget keeps its memory the same whatever the
# sessions weigh, for a somewhat slower merge (a small part of a retrieval's time).
MERGE_BUDGET = 2 * 1024 * 1024
# How long after a time window ends an appliance may still index sessions of it (NetMon
# updates a session's metadata every 10 minutes): until then a result is not final.
SETTLE = timedelta(minutes=15)
OPEN_WINDOW = "the time window is still open"
PREVIEW_ENDPOINTS = 5        # the busiest hosts a preview names


@dataclass
class Limits:
    max_sessions: int
    max_bytes: int
    concurrency: int


@dataclass
class _Fetched:
    session: Session
    captures: list[Path] = field(default_factory=list)   # non-empty captures only
    kinds: set = field(default_factory=set)               # their (link types, nanosecond)
    empty: int = 0                                         # captures holding no packet
    size: int = 0
    sha256: str | None = None
    error: str | None = None
    skipped: str | None = None                             # why it was not fetched at all
    download: Downloaded | None = None                     # what came, if anything did


# A delivery step (srp.delivery's case step): given the outcome, says what it did.
Deliver = Callable[[Outcome], CaseResult]


def retrieve(vendor: Vendor, pcap_dir: Path, alarm_id: str | None, limits: Limits,
             force: bool = False, deliver: Deliver | None = None) -> Outcome:
    """Reuse the alarm's earlier result if it is final, top it up if it is not (fetching
    only the sessions it lacks), else retrieve; then deliver the capture."""
    request = _request(vendor, alarm_id, limits)
    store = ResultStore(pcap_dir, vendor.name, alarm_id, request)
    # The delivery runs under the lock too: a repeated alarm waits, then finds the capture
    # already delivered.
    with store.lock(LOCK_WAIT):
        earlier = None if force else store.earlier_result()
        if earlier is not None and _is_final(earlier):
            outcome = _reused(vendor.name, earlier)
        else:
            started = utc_now()
            preloading = _preload(vendor)
            try:
                outcome = _retrieve(vendor, store, request, started, limits, earlier)
            finally:
                if preloading is not None:
                    preloading.join()   # never leave an import running at exit
        if deliver is not None:
            deliver_capture(deliver, outcome)
        return outcome


def preview(vendor: Vendor, pcap_dir: Path, alarm_id: str | None, limits: Limits,
            force: bool = False) -> Outcome:
    """What `retrieve` would fetch: the sessions found and capped exactly as it would (only
    those an earlier result lacks; none when it would reuse one), nothing downloaded and
    nothing written."""
    earlier = None if force else ResultStore(pcap_dir, vendor.name, alarm_id,
                                             _request(vendor, alarm_id, limits)
                                             ).earlier_result()
    found = _distinct(vendor, vendor.find_sessions())
    had = _held_sessions(earlier)
    reuse = None
    if earlier is not None and _is_final(earlier):
        reuse = ("nothing fetched (--force fetches again): "
                 + Path(earlier["result"]["pcap"]).name)
        plan, warnings, cuts = [], [], []
    else:
        plan, warnings, cuts = _plan_beyond(found, had, earlier, limits)
    starts = sorted(stamp for s in plan for stamp in (s.start, s.end) if stamp)
    endpoints = Counter(host for s in plan for host in dict.fromkeys(s.endpoints))
    announced = sum(s.size or 0 for s in plan)
    view = Preview(
        planned=len(plan), captured=sum(1 for s in found.sessions if s.captured),
        announced=announced, unsized=sum(1 for s in plan if s.size is None),
        first=starts[0] if starts else None, last=starts[-1] if starts else None,
        endpoints=endpoints.most_common(PREVIEW_ENDPOINTS),
        caps=(f"--max-sessions {limits.max_sessions}, "
              f"--max-bytes {human_size(limits.max_bytes)}"),
        cuts=cuts, reuse=reuse)
    if had and reuse is None:
        warnings.insert(0, f"an earlier result for this alarm holds {vendor.count(len(had))}: "
                           f"only the others would be fetched")
    outcome = Outcome(vendor=vendor.name, status="ok", reason="", found=len(found.sessions),
                      bytes=announced, first=view.first, last=view.last,
                      warnings=found.warnings + warnings, preview=view, about=found.about)
    if reuse:
        outcome.reason = "an earlier result would be reused"
    elif plan:
        outcome.reason = (f"would fetch {vendor.count(len(plan))} of {len(found.sessions)} "
                          f"found")
    elif found.fallback is not None:
        outcome.reason = f"would take {found.fallback.what} alone"
    else:
        no_data = found.no_data
        outcome.status = "no-data"
        outcome.reason = (no_data.nothing_found if not found.sessions else
                          no_data.nothing_captured if not had else
                          "nothing new: the earlier result holds every session found")
    _window_state(vendor, outcome)
    return outcome


def _distinct(vendor: Vendor, found: Found) -> Found:
    """The search's sessions, each id once: an appliance that lists one many times does not
    get it downloaded and merged as many times."""
    sessions, seen = [], set()
    for session in found.sessions:       # the first listing of each, in the search's order
        if session.id not in seen:
            seen.add(session.id)
            sessions.append(session)
    repeats = len(found.sessions) - len(sessions)
    if repeats:
        found.warnings.append(f"the appliance listed the same {vendor.session_noun} more "
                              f"than once ({repeats} repeats): each is fetched once")
        found.sessions = sessions
    return found


def _request(vendor: Vendor, alarm_id: str | None, limits: Limits) -> dict:
    """What identifies a retrieval: the vendor's request, the alarm and the caps."""
    return {**vendor.request(), "alarm_id": alarm_id,
            "max_sessions": limits.max_sessions, "max_bytes": limits.max_bytes}


def deliver_capture(deliver: Deliver, outcome: Outcome) -> None:
    """Hand the capture to the delivery step, and record what it did in the outcome (a
    failed step makes the run partial; the capture stays) and in the manifest."""
    case = deliver(outcome)
    outcome.case = case
    outcome.warnings += case.warnings
    if case.status == "failed" and outcome.status in ("ok", "partial"):
        outcome.status = "partial"
        outcome.reason = f"{outcome.reason}; the case step failed: {case.reason}"
    if outcome.manifest:
        record_case(Path(outcome.manifest), case.as_json())


def _retrieve(vendor: Vendor, store: ResultStore, request: dict, started: datetime,
              limits: Limits, earlier: dict | None = None) -> Outcome:
    """Fetch and merge the sessions found; with an `earlier` result that is not final,
    only those it lacks, merged with its capture into a new one that supersedes it."""
    found = _distinct(vendor, vendor.find_sessions())
    log.debug("%s sessions found", len(found.sessions))
    had = _held_sessions(earlier)
    plan, notes, cuts = _plan_beyond(found, had, earlier, limits)
    warnings = notes + cuts
    if earlier is not None and not plan:
        return _unchanged(vendor, found, earlier, warnings)
    outcome = Outcome(vendor=vendor.name, status="ok", reason="", found=len(found.sessions),
                      warnings=found.warnings + warnings, about=found.about)
    # An earlier capture of no session (a trigger packet alone) is not merged again.
    base = Path(earlier["result"]["pcap"]) if had else None
    with store.workdir() as workdir:
        fetched = _fetch_all(vendor, plan, workdir, limits)
        _merge(vendor, found, store, fetched, outcome, workdir, base, len(had))
    _window_state(vendor, outcome)
    _write_manifest(store, request, started, found.sessions, fetched, outcome, earlier)
    if earlier is not None and outcome.pcap:
        _supersede(earlier, outcome)
    return outcome


def _is_final(manifest: dict) -> bool:
    """A result a later run reuses as it is (a manifest older than top-ups: when ok)."""
    result = manifest["result"]
    return bool(result.get("final", result.get("status") == "ok"))


def _held_sessions(manifest: dict | None) -> dict[str, dict]:
    """The sessions an earlier result's capture holds: id -> its manifest entry."""
    if manifest is None:
        return {}
    return {str(entry["id"]): entry for entry in manifest.get("sessions", [])
            if entry.get("status") == "downloaded"}


def _plan_beyond(found: Found, had: dict, earlier: dict | None, limits: Limits):
    """_plan of the sessions the earlier result (`had`: its sessions) lacks, within the
    caps its capture leaves."""
    if earlier is not None:
        limits = Limits(max(1, limits.max_sessions - len(had)),
                        max(1, limits.max_bytes - int(earlier["result"].get("bytes", 0))),
                        limits.concurrency)
    return _plan([s for s in found.sessions if s.id not in had], limits)


def _window_state(vendor: Vendor, outcome: Outcome) -> None:
    """Whether the result is final: not while the searched window may still gain sessions
    (it ends after now, or less than SETTLE before: appliances index sessions late), nor
    while it is partial."""
    closes = vendor.window_closes()
    open_window = closes is not None and closes + SETTLE > utc_now()
    if open_window and outcome.status in ("ok", "partial", "no-data"):
        outcome.window_closes = rfc3339(closes)
        outcome.warnings.append(
            f"{OPEN_WINDOW}: it closes at {rfc3339(closes)}, and the "
            f"appliance may index sessions until {rfc3339(closes + SETTLE)}; a run for this "
            f"alarm after that fetches what came since")
    outcome.final = outcome.status == "ok" and not outcome.failed and not open_window


def _unchanged(vendor: Vendor, found: Found, earlier: dict, warnings: list[str]) -> Outcome:
    """A top-up with nothing new to fetch: the earlier capture, its manifest brought up to
    date (now final, if its window has closed)."""
    outcome = stored_outcome(vendor.name, earlier, "no new session since the earlier run")
    outcome.reused, outcome.found = False, len(found.sessions)
    outcome.warnings = [w for w in outcome.warnings if not w.startswith(OPEN_WINDOW)]
    outcome.warnings += found.warnings + warnings
    if earlier["result"].get("status") == "partial":
        outcome.status = "partial"
        outcome.reason = "no new session since the earlier run, which was partial"
    _window_state(vendor, outcome)
    manifest = dict(earlier)
    manifest["finished"] = rfc3339(utc_now())
    manifest["result"] = {**outcome.as_json(), "manifest": None}
    write_manifest(Path(outcome.manifest), manifest)
    return outcome


def _supersede(earlier: dict, outcome: Outcome) -> None:
    """Remove the earlier result a top-up replaced, once the new one is complete."""
    for path in (Path(earlier["result"]["pcap"]), Path(earlier["result"]["manifest"])):
        if path.resolve() not in (Path(outcome.pcap).resolve(),
                                  Path(outcome.manifest).resolve()):
            with contextlib.suppress(OSError):
                path.unlink()


def _plan(sessions: list[Session], limits: Limits
          ) -> tuple[list[Session], list[str], list[str]]:
    """The captured sessions to fetch, oldest first, within --max-sessions and --max-bytes;
    a note of those skipped as not captured, and what the caps cut."""
    notes, cuts = [], []
    captured = sorted((s for s in sessions if s.captured), key=lambda s: s.start or "")
    not_captured = len(sessions) - len(captured)
    if not_captured:
        notes.append(f"{not_captured} of {len(sessions)} sessions have no captured packets "
                     f"and were skipped")
    if len(captured) > limits.max_sessions:
        cuts.append(f"cut to the first {limits.max_sessions} of {len(captured)} captured "
                    f"sessions by --max-sessions")
        captured = captured[:limits.max_sessions]
    planned, total = [], 0
    for session in captured:
        total += session.size or 0
        if total > limits.max_bytes and planned:
            rest = sum(s.size or 0 for s in captured[len(planned):])
            cuts.append(f"cut to {len(planned)} of {len(captured)} sessions by --max-bytes "
                        f"({limits.max_bytes} bytes); the rest hold about {rest} bytes more")
            break
        planned.append(session)
    return planned, notes, cuts


def _fetch_all(vendor: Vendor, plan: list[Session], workdir: Path,
               limits: Limits) -> list[_Fetched]:
    budget = ByteBudget(limits.max_bytes)
    progress = Progress(len(plan), budget) if plan and Progress.wanted() else None

    def fetch(item: tuple[int, Session]) -> Future:
        number, session = item
        return unpacker.submit(settle, _download(vendor, number, session, workdir, budget))

    def settle(fetched: _Fetched) -> _Fetched:
        if fetched.download is not None:
            _unpack(fetched, workdir, budget, vendor.describe(fetched.session))
        log.debug("session %s: %s", fetched.session.id,
                  fetched.error or fetched.skipped or f"{fetched.size} bytes")
        if progress is not None:
            progress.session_finished(not (fetched.error or fetched.skipped))
        return fetched

    # Archives are unpacked by one thread of their own: its working memory then stays in one
    # heap, where it is used again, instead of one heap per download thread (glibc keeps what
    # a thread's heap once held), and unpacking is CPU work that one core does anyway. A
    # download thread hands its archive over and goes on to the next download at once.
    with ThreadPoolExecutor(max_workers=max(1, limits.concurrency)) as pool, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="srp-unpack") as unpacker, \
            progress or contextlib.nullcontext():
        settling = list(pool.map(fetch, enumerate(plan)))
        return [future.result() for future in settling]


def _download(vendor: Vendor, number: int, session: Session, workdir: Path,
              budget: ByteBudget) -> _Fetched:
    """One session's download, tried again when the transfer broke off."""
    what = vendor.describe(session)
    for attempt in range(1, vendor.download_attempts + 1):
        fetched = _Fetched(session)   # nothing of a failed try carries over
        try:
            download = vendor.fetch(session, workdir / f"session{number}.download", budget)
        except SrpError as exc:   # an HTTP error, a broken transfer, not a capture, the cap
            if isinstance(exc, TransferBroken) and attempt < vendor.download_attempts:
                time.sleep(min(0.5 * 2 ** attempt, 5))
                continue
            _failed(fetched, exc, what)
        else:
            fetched.download, fetched.size, fetched.sha256 = (download, download.size,
                                                              download.sha256)
        return fetched
    raise AssertionError("a vendor tries every download at least once")


def _unpack(fetched: _Fetched, workdir: Path, budget: ByteBudget, what: str) -> None:
    """Record the captures a session's download holds; none of them when any cannot be
    used (a session is merged whole or not at all)."""
    captures, kinds, empty = [], set(), 0
    try:
        for path in unpack(fetched.download, workdir, budget, what):
            kind = _capture_kind(path, what)
            if kind is None:
                empty += 1
            else:
                captures.append(path)
                kinds.add(kind)
    except SrpError as exc:   # a damaged archive, the cap, a capture that cannot be read
        _failed(fetched, exc, what)
        return
    fetched.captures, fetched.kinds, fetched.empty = captures, kinds, empty


def _failed(fetched: _Fetched, exc: SrpError, what: str) -> None:
    """Record why a session is not merged: skipped at the cap, or failed (in words that
    name the session: the error's subject, else `what`)."""
    if isinstance(exc, SizeCapReached):
        fetched.skipped = str(exc)
    else:
        fetched.error = str(exc) if exc.subject else f"{what}: {exc}"


def _merge(vendor: Vendor, found: Found, store: ResultStore, fetched: list[_Fetched],
           outcome: Outcome, workdir: Path, base: Path | None = None, held: int = 0) -> None:
    """Merge what was fetched (with a top-up, into the earlier capture `base`, which holds
    `held` sessions) into a new capture, and say how it went. When nothing was, the packet
    the search carried (found.fallback) is the capture."""
    from srp.capture.merge import merge

    for done in fetched:   # what the vendor learnt while downloading
        if done.download is not None:
            outcome.warnings += done.download.warnings
    failed = [f for f in fetched if f.error]
    skipped = [f for f in fetched if f.skipped]
    outcome.failed = len(failed)
    outcome.new = sum(1 for f in fetched if not (f.error or f.skipped))
    outcome.downloaded = held + outcome.new
    outcome.errors += [f.error for f in failed]
    if skipped:
        outcome.warnings.append(f"{vendor.count(len(skipped))} not downloaded: "
                                f"{skipped[0].skipped}")
    empty = sum(1 for f in fetched if f.empty and not f.captures)
    if empty:
        outcome.warnings.append(f"{vendor.count(empty)} came as captures holding no packet")
    captures = [path for f in fetched for path in f.captures]
    formats = set().union(*(f.kinds for f in fetched))
    # Warnings name the session a capture came from, not its file in the work folder.
    names = [vendor.describe(f.session) for f in fetched for _path in f.captures]
    if base is not None:
        captures.insert(0, base)
        names.insert(0, f"the earlier capture {base.name}")
        formats.add(_capture_kind(base, names[0]))
    fallback = None
    if not captures and found.fallback is not None:
        fallback = found.fallback
        captures, names = [_write_inline(fallback, workdir)], [fallback.what]
        formats.add(_capture_kind(captures[0], fallback.what))
    if not captures:
        if skipped and not failed:
            outcome.status, outcome.reason = "error", "no session fits within --max-bytes"
        elif failed and outcome.downloaded == 0:
            outcome.status = "error"
            outcome.reason = f"no {vendor.session_noun} could be downloaded"
        else:
            no_data = found.no_data
            outcome.status = "no-data"
            outcome.reason = (no_data.nothing_found if outcome.found == 0 else
                              no_data.only_empty if fetched else no_data.nothing_captured)
        return
    format = _output_format(formats - {None})
    target, _ = store.new_paths("pcapng" if format == "pcapng" else "pcap")
    try:
        result = merge(captures, target, format=format, buffer_budget=MERGE_BUDGET,
                       names=names)
    except UsageError:
        # A session described an interface of another link type after its first
        # packets: only pcapng holds both.
        target, _ = store.new_paths("pcapng")
        result = merge(captures, target, format="pcapng", buffer_budget=MERGE_BUDGET,
                       names=names)
    outcome.warnings += result.warnings
    outcome.pcap = str(target.resolve())
    outcome.sha256 = file_sha256(target)
    outcome.capture = _summary(target, outcome.sha256, outcome.warnings)
    outcome.bytes = target.stat().st_size
    outcome.packets = result.packets
    outcome.first, outcome.last = ns_to_rfc3339(result.first_ns), ns_to_rfc3339(result.last_ns)
    new = f" ({outcome.new} new, with the earlier capture's {held})" if base else ""
    if fallback is not None:
        # Not an error: the analyst has the packet that fired; a later run tries again.
        why = (failed[0].error if failed else skipped[0].skipped if skipped else
               found.no_data.nothing_found if not outcome.found else
               found.no_data.nothing_captured)
        outcome.warnings.insert(0, f"only {fallback.what} was available: {why}")
        outcome.warnings += outcome.errors
        outcome.errors = []
        outcome.reason = f"{fallback.what} alone"
    elif failed or skipped:
        outcome.status = "partial"
        outcome.reason = (f"{outcome.downloaded} of {vendor.count(held + len(fetched))} "
                          f"merged{new}; {len(failed) + len(skipped)} could not be retrieved")
    else:
        outcome.reason = f"{vendor.count(outcome.downloaded)} merged{new}"


def _write_inline(packet: InlinePacket, workdir: Path) -> Path:
    """A one-packet capture of `packet`, in nanosecond pcap (the appliance's time kept)."""
    from srp.capture.pcap import PcapWriter

    path = workdir / "inline.pcap"
    with path.open("wb") as file:
        writer = PcapWriter(file, packet.linktype, max(65535, len(packet.data)),
                            nanosecond=True)
        encode = writer.packet_encoder(0, None)
        writer.write_records([encode(packet.time_ns, packet.original_length, packet.data)])
    return path


def _capture_kind(path: Path, what: str) -> tuple[int, bool] | None:
    """(link type, nanosecond) of a capture's interfaces, or None when it holds no packet;
    a capture that cannot be read is the session's download error."""
    try:
        with open_capture(path) as reader:   # closed at once: Windows cannot delete open files
            if reader.read_batch(4096) is None:
                return None
            nanosecond = any(i.ts_units > 1_000_000 for i in reader.interfaces)
            return tuple(sorted({i.linktype for i in reader.interfaces})), nanosecond
    except CaptureError as exc:
        raise DownloadError(str(exc), what) from None


def _output_format(kinds: set) -> str:
    """Classic pcap when every session shares one link type (nanosecond pcap when any has
    nanosecond stamps), pcapng otherwise."""
    linktypes = {linktype for kind in kinds for linktype in kind[0]}
    if len(linktypes) > 1:
        return "pcapng"
    return "nsecpcap" if any(kind[1] for kind in kinds) else "pcap"


def _write_manifest(store: ResultStore, request: dict, started: datetime,
                    sessions: list[Session], fetched: list[_Fetched], outcome: Outcome,
                    earlier: dict | None = None) -> None:
    """The result's manifest; a top-up's carries the earlier capture's sessions over."""
    by_id = {f.session.id: f for f in fetched}
    held = _held_sessions(earlier)
    manifest_path = (store.new_paths("json")[1] if outcome.pcap is None
                     else Path(outcome.pcap).with_suffix(".json"))
    manifest = {
        "tool": {"name": "srp-pcap", "version": __version__},
        "request": request,
        "started": rfc3339(started),
        "finished": rfc3339(utc_now()),
        "sessions": [held[s.id] if s.id in held else _session_entry(s, by_id.get(s.id))
                     for s in sessions]
                    + [entry for key, entry in held.items()
                       if key not in {s.id for s in sessions}],
        "result": outcome.as_json(),
    }
    manifest["result"]["manifest"] = None
    write_manifest(manifest_path, manifest)
    outcome.manifest = str(manifest_path.resolve())


def _session_entry(session: Session, fetched: _Fetched | None) -> dict:
    entry = {"id": session.id, "captured": session.captured, "start": session.start,
             **session.details}
    if fetched is None:
        entry["status"] = "not captured" if not session.captured else "not fetched (cap)"
    elif fetched.error:
        entry.update(status="failed", error=fetched.error)
    elif fetched.skipped:
        entry.update(status="not fetched (cap)")
    else:
        entry.update(status="downloaded", size=fetched.size, sha256=fetched.sha256)
    if fetched is not None and fetched.download is not None:
        entry.update(fetched.download.details)
    return entry


def _reused(vendor: str, earlier: dict) -> Outcome:
    return stored_outcome(vendor, earlier, f"reused the result of an earlier run "
                                           f"({earlier.get('finished')}); --force fetches again")


def stored_outcome(vendor: str, manifest: dict, reason: str) -> Outcome:
    """The outcome a manifest records, for its capture used again."""
    result = manifest["result"]
    sessions = result.get("sessions", {})
    outcome = Outcome(
        vendor=vendor, status="ok", reused=True, reason=reason,
        pcap=result["pcap"], sha256=result["sha256"], packets=result.get("packets", 0),
        bytes=result.get("bytes", 0), found=sessions.get("found", 0),
        downloaded=sessions.get("downloaded", 0), failed=sessions.get("failed", 0),
        first=result.get("first"), last=result.get("last"),
        warnings=list(result.get("warnings", [])), manifest=result["manifest"],
        final=_is_final(manifest), window_closes=result.get("window_closes"),
        about=dict(result.get("about") or {}))
    outcome.capture = _summary(Path(outcome.pcap), outcome.sha256, outcome.warnings)
    return outcome


def capture_outcome(vendor: str, capture: Path, reason: str) -> Outcome:
    """The outcome of a capture on disk that no manifest describes."""
    if not capture.is_file():
        raise UsageError(f"{capture}: no such file")
    with open_capture(capture):   # a clear error for a file that is not a capture
        pass
    outcome = Outcome(vendor=vendor, status="ok", reason=reason, pcap=str(capture.resolve()),
                      sha256=file_sha256(capture), bytes=capture.stat().st_size)
    outcome.capture = summary = _summary(capture, outcome.sha256, outcome.warnings)
    if summary is not None:
        outcome.packets = summary.packets
        outcome.first, outcome.last = (ns_to_rfc3339(summary.first_ns),
                                       ns_to_rfc3339(summary.last_ns))
    return outcome


def _preload(vendor: Vendor) -> threading.Thread | None:
    """For a vendor that serves archives, import the 7z unpacker on a thread of its own
    while the appliance is searched: over a tenth of a second, which the unpacker would
    otherwise spend when the first archive is in."""
    if not vendor.serves_archives:
        return None
    from srp.retrieval import download

    thread = threading.Thread(target=download.preload, name="preload", daemon=True)
    thread.start()
    return thread


def _summary(capture: Path, sha256: str, warnings: list[str]):
    """The analyst's view of the merged capture; a capture that cannot be summarized is
    still the result, with a warning."""
    from srp.summary import summarize

    try:
        return summarize(capture, sha256=sha256)
    except SrpError as exc:
        warnings.append(f"could not summarize the capture: {exc}")
        return None
