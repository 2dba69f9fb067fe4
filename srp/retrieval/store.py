"""Where results go: the merged capture and its JSON manifest in --pcap-dir.

Names come from the vendor, the alarm id and the UTC time, with every run of characters
other than letters, digits, '-' and '_' replaced by one '_', so an alarm id such as
`..\\..\\x` never leaves the folder. A short hash of the request ends each name: the same
alarm retrieved again finds its earlier result by it, and the lock beside it keeps two runs
for one alarm from colliding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from srp.atomic import atomic_output
from srp.errors import SrpError
from srp.hashing import file_sha256
from srp.redaction import redact

LOCK_STALE_AFTER = 6 * 3600   # seconds; a lock this old was left by a run that died
LOCK_POLL = 0.5


def safe_name_part(text: str | None, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", text or "").strip("_-")[:64]
    return cleaned or fallback


_RESULT_NAME = re.compile(r"[A-Za-z0-9_-]+_\d{8}T\d{6}Z_[0-9a-f]{12}\.(?:pcap|pcapng|json)")


def require_free_space(folder: Path, floor: int) -> None:
    """Refuse to start when the results' disk has less than `floor` bytes free: an automatic
    action must never be what fills the Event Manager's disk."""
    free = shutil.disk_usage(folder).free
    if free < floor:
        raise SrpError(f"only {free // (1024 * 1024)} MiB free in {folder}, below the "
                       f"--min-free floor of {floor // (1024 * 1024)} MiB; nothing fetched")


def remove_old_results(folder: Path, keep_days: float) -> int:
    """Delete results (captures and manifests this tool named) and work folders left by
    killed runs that are older than `keep_days`; other files are never touched."""
    cutoff = time.time() - keep_days * 86400
    removed = 0
    for path in folder.iterdir():
        ours = _RESULT_NAME.fullmatch(path.name) or path.name.startswith(".srp-work-")
        with contextlib.suppress(OSError):
            if ours and path.lstat().st_mtime < cutoff:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed += 1
    return removed


def read_result(path: Path) -> dict | None:
    """The manifest at `path` if its capture is there and intact (its SHA-256 the
    manifest's), with its own path as result.manifest; else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pcap = Path(data["result"]["pcap"])
        if not pcap.is_file() or file_sha256(pcap) != data["result"]["sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    data["result"]["manifest"] = str(path)
    return data


def manifest_beside(capture: Path) -> dict | None:
    """The manifest of a capture this tool made, beside it and about it; else None."""
    data = read_result(capture.with_suffix(".json"))
    if data is None or Path(data["result"]["pcap"]).resolve() != capture.resolve():
        return None
    return data


def write_manifest(path: Path, manifest: dict) -> None:
    text = redact(json.dumps(manifest, indent=2, sort_keys=False)) + "\n"
    with atomic_output(path) as file:
        file.write(text.encode("utf-8"))


def record_case(path: Path, case: dict) -> None:
    """Add what the case step did to a result's manifest. The retrieval's own status stays
    as it was: a later run for the alarm reuses the capture and tries the case again."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["result"]["case"] = case
    write_manifest(path, manifest)


class ResultStore:
    def __init__(self, pcap_dir: Path, vendor: str, alarm_id: str | None, request: dict):
        self.dir = Path(pcap_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SrpError(f"--pcap-dir {self.dir}: cannot create it ({exc.strerror})") from None
        self.request = request
        key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:12]
        self._prefix = f"{safe_name_part(vendor, 'capture')}_{safe_name_part(alarm_id, 'manual')}"
        self._key = key

    def new_paths(self, extension: str) -> tuple[Path, Path]:
        """(capture, manifest) paths for a result made now: a second later when a result
        of the same second is there (a top-up never writes over the capture it reads)."""
        moment = datetime.now(timezone.utc)
        while True:
            base = f"{self._prefix}_{moment:%Y%m%dT%H%M%SZ}_{self._key}"
            paths = self.dir / f"{base}.{extension}", self.dir / f"{base}.json"
            if not any(path.exists() for path in paths):
                return paths
            moment += timedelta(seconds=1)

    def earlier_result(self) -> dict | None:
        """The newest earlier result of this same request that has a capture, intact (ok
        or partial: one a later run reuses or tops up)."""
        manifests = sorted(self.dir.glob(f"{self._prefix}_*_{self._key}.json"), reverse=True)
        for manifest in manifests:
            data = read_result(manifest)
            if data is not None and data["result"]["status"] in ("ok", "partial"):
                return data
        return None

    @contextlib.contextmanager
    def lock(self, wait_seconds: float) -> Iterator[None]:
        """Hold this request's lock; a second run for the same alarm waits for the first."""
        lock_path = self.dir / f".{self._prefix}_{self._key}.lock"
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                with contextlib.suppress(OSError):
                    if time.time() - lock_path.stat().st_mtime > LOCK_STALE_AFTER:
                        lock_path.unlink()
                        continue
                if time.monotonic() > deadline:
                    raise SrpError(f"another run for this alarm still holds {lock_path}; "
                                   f"delete it if no run is going on") from None
                time.sleep(LOCK_POLL)
        try:
            os.write(fd, f"{os.getpid()} {datetime.now(timezone.utc).isoformat()}\n".encode())
            os.close(fd)
            yield
        finally:
            with contextlib.suppress(OSError):
                lock_path.unlink()

    @contextlib.contextmanager
    def workdir(self) -> Iterator[Path]:
        """A private folder beside the results for downloads, removed afterwards."""
        path = Path(tempfile.mkdtemp(prefix=".srp-work-", dir=self.dir))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
