"""Keeping secrets out of everything the tool writes.

API keys, tokens and passwords are registered as soon as they are read; every message,
warning, log line and manifest passes through `redact` before it leaves the process, so a
secret that ends up inside an exception text or a URL is still never shown.
"""

from __future__ import annotations

import re

MASK = "***"
_secrets: set[str] = set()
_URL_CREDENTIALS = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")


def register_secret(value: str | None) -> None:
    if value and len(value.strip()) >= 3:  # masking tiny strings would garble every message
        _secrets.add(value.strip())
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + "@", text)
