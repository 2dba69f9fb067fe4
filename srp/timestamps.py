"""Times as the project writes them: RFC 3339 in UTC, to the second or to the nanosecond."""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(moment: datetime) -> str:
    """`2026-11-22T10:04:54Z`: an aware time, to the second."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ns_to_rfc3339(ns: int | None, digits: int = 9) -> str | None:
    """`2026-11-22T10:04:54.123456789Z`: nanoseconds since the epoch (a packet's time),
    with `digits` of the fraction (cut, not rounded)."""
    if ns is None:
        return None
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction // 10 ** (9 - digits):0{digits}d}Z"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
