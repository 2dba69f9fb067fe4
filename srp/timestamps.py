"""Times as the project writes them: RFC 3339 in UTC, to the second or to the nanosecond."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def rfc3339(moment: datetime) -> str:
    """`2026-11-22T10:04:54Z`: an aware time, to the second."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ns_to_rfc3339(ns: int | None, digits: int = 9) -> str | None:
    """`2026-11-22T10:04:54.123456789Z`: nanoseconds since the epoch (a packet's time),
    with `digits` of the fraction (cut, not rounded); None for a time no RFC 3339 date
    can hold (before year 1 or after 9999: a capture's 64-bit stamps can say anything)."""
    if ns is None:
        return None
    seconds, fraction = divmod(ns, 1_000_000_000)
    try:   # not fromtimestamp: Windows refuses times before 1970 there
        stamp = (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    except OverflowError:
        return None
    return f"{stamp}.{fraction // 10 ** (9 - digits):0{digits}d}Z"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
