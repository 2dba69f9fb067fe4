"""The operations log an admin reads: one line per run, details with -v.

The plugin runs unattended as a service on every matching alarm; its log is how an admin
sees what it did. The file rotates by size, so leaving the action on never fills a disk,
and every line passes through `redact`, so a secret that slipped into an exception text or
a URL is masked there too.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from srp.redaction import redact

LOG_NAME = "srp-pcap.log"
MAX_LOG_BYTES = 5 * 1024 * 1024
KEPT_LOGS = 5
log = logging.getLogger("srp")


class _Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record)).replace("\n", " | ")


def open_log(path: Path, verbose: bool) -> str | None:
    """Send the `srp` logger (and urllib3's retries with -v) to a rotating file at `path`;
    the reason when it cannot be opened (the run goes on without a log)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_LOG_BYTES, backupCount=KEPT_LOGS, encoding="utf-8", delay=False)
    except OSError as exc:
        return f"cannot write the log {path} ({exc.strerror or exc})"
    handler.setFormatter(_Redacting("%(asctime)s %(levelname)s %(message)s"))
    # A log that fails to write (Windows refuses to rotate a file another run holds open)
    # must not print logging's own traceback on stderr: the run goes on.
    logging.raiseExceptions = False
    level = logging.DEBUG if verbose else logging.INFO
    for name in ("srp", "urllib3") if verbose else ("srp",):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
    log.propagate = False
    return None


def close_log() -> None:
    for name in ("srp", "urllib3"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


def run_line(vendor: str, alarm_id: str | None, exit_code: int, status: str, reason: str,
             seconds: float, capture_bytes: int, pcap: str | None) -> str:
    """The one line a run leaves: what it was for, how it ended, how long, how much."""
    fields = [f"vendor={vendor}", f"alarm={alarm_id or '-'}", f"outcome={status}",
              f"exit={exit_code}", f"duration={seconds:.1f}s", f"bytes={capture_bytes}"]
    if pcap:
        fields.append(f"pcap={pcap}")
    return " ".join(fields) + (f" reason={reason!r}" if reason else "")
