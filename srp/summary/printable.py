"""Strings an attacker chose (DNS names, HTTP lines, TLS server names), made safe to show.

The summary is read in a console window and in terminals: a control character or an escape
sequence in a packet must not reach them. Bytes are shown as ASCII, anything else as \\xNN;
text keeps printable characters and escapes the rest (controls, bidirectional overrides,
line and paragraph separators).
"""

from __future__ import annotations

ELLIPSIS = "..."


def printable(value: str | bytes, limit: int | None = None) -> str:
    """`value` with every non-printable character escaped, cut to `limit` characters."""
    text = value.decode("ascii", "backslashreplace") if isinstance(value, bytes) else value
    if not text.isprintable():
        text = "".join(char if char.isprintable() else
                       char.encode("unicode_escape").decode("ascii") for char in text)
    return cut(text, limit)


def cut(text: str, limit: int | None) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis where it was cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[:max(0, limit - len(ELLIPSIS))] + ELLIPSIS[:limit]

