"""The summary as plain text for the LogRhythm Web Console's small fixed-width window.

At most MAX_LINES lines of at most WIDTH characters, with no terminal needed: no colour, no
escape sequences, every line made printable. Sections, in order: the caller's heading (a
retrieval's status line), the capture file, the caller's details (sessions), errors and
warnings, the traffic and its largest conversations, the names it carries. Errors and
warnings get the lines the rest leaves (at least a few); when the whole is still too long,
it is cut from the end, where the names are.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Iterable

from srp.summary.headers import link_type_name
from srp.summary.printable import cut, printable
from srp.timestamps import ns_to_rfc3339

if TYPE_CHECKING:
    from srp.summary import CaptureSummary, Conversation
    from srp.summary.names import Ranked

WIDTH = 100
MAX_LINES = 40
_INDENT = " " * 10                   # values start after "packets:  " and the like
_HEADING_LINES = 3                   # a long status line wraps to at most this many
_PROBLEM_LINES = 5                   # errors and warnings get at least this many lines
_ITEM_LINES = 2                      # one error or warning wraps to at most this many
_NAME_LINES = {"dns:": 3, "http:": 2, "tls sni:": 3}
_REQUEST_LINES = 4
_SHOWN_NAME = 60                     # characters of one name in a list of names
_ROW = "  {:<9} {:>11} {:>11}  {}"    # protocol, packets, bytes, endpoints


def render_text(summary: CaptureSummary | None, *, heading: Iterable[str] = (),
                details: Iterable[str] = (), errors: Iterable[str] = (),
                warnings: Iterable[str] = (), width: int = WIDTH,
                max_lines: int = MAX_LINES) -> str:
    """The summary of a capture (None: no capture was made) between the caller's lines.

    `warnings` come after the capture's own; `errors` before them."""
    top = [line for text in heading for line in _wrap(text, width, "", "  ", _HEADING_LINES)]
    if summary is not None:
        top += _capture_lines(summary, width)
    top += [printable(line, width) for line in details]
    body = _traffic_lines(summary, width) if summary is not None else []
    problems = _problem_lines(list(errors), [*(summary.warnings if summary else ()), *warnings],
                              width, max(max_lines - len(top) - len(body), _PROBLEM_LINES))
    lines = top + problems + body
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [f"... {len(lines) - max_lines + 1} more lines "
                                         f"(srp-pcap summary FILE --json shows everything)"]
    return "\n".join(lines)


def human_size(size: int) -> str:
    """Bytes below 1 KiB, then KiB, MiB or GiB with one decimal."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def human_duration(ns: int) -> str:
    seconds = ns / 1e9
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours:02d} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def _wrap(text: str, width: int, first: str, later: str, max_lines: int) -> list[str]:
    return textwrap.wrap(printable(text), width, initial_indent=first, subsequent_indent=later,
                         break_on_hyphens=False, max_lines=max_lines, placeholder=" ...") \
        or [first.rstrip()]


def _moment(ns: int) -> str:
    return ns_to_rfc3339(ns) or "a time out of range"


def _capture_lines(summary: CaptureSummary, width: int) -> list[str]:
    # The path is never cut or wrapped, however long: the analyst copies it whole.
    lines = [f"capture:  {printable(summary.path)}"]
    packets = f"packets:  {summary.packets}"
    if summary.first_ns is not None:
        packets += (f", {_moment(summary.first_ns)} to {_moment(summary.last_ns)} "
                    f"({human_duration(summary.last_ns - summary.first_ns)})")
    lines += [f"size:     {human_size(summary.size)} ({summary.size} bytes)",
              f"sha256:   {summary.sha256}", cut(packets, width)]
    return lines


def _problem_lines(errors: list[str], warnings: list[str], width: int, budget: int) -> list[str]:
    """Errors, then warnings, each wrapped; past `budget` lines, how many were left out."""
    lines = []
    for title, items in (("errors:", errors), ("warnings:", warnings)):
        if items:
            lines.append(title)
        for index, item in enumerate(items):
            wrapped = _wrap(item, width, "  - ", "    ", _ITEM_LINES)
            last = index == len(items) - 1
            if len(lines) + len(wrapped) + (not last) > budget:   # a line for "and N more"
                lines.append(f"  ... and {len(items) - index} more (the JSON output has all)")
                break
            lines += wrapped
    return lines


def _traffic_lines(summary: CaptureSummary, width: int) -> list[str]:
    links = ", ".join(link_type_name(linktype) for linktype in summary.link_types)
    protocols = ", ".join(f"{name} {count}" for name, count in summary.protocols.items())
    lines = [cut(f"traffic:  {links or 'no packets'}" + (f"; {protocols}" if protocols else ""),
                 width)]
    lines += _conversation_lines(summary, width)
    lines += _name_lines(summary, width)
    return lines


def _conversation_lines(summary: CaptureSummary, width: int) -> list[str]:
    count = summary.conversation_count
    if not count:
        return ["conversations: none"]
    shown = len(summary.conversations)
    lines = [f"conversations: {count}" + (f"; the {shown} largest:" if shown < count else ""),
             _ROW.format("proto", "packets", "bytes", "endpoints").rstrip()]
    for conversation in summary.conversations:
        lines += _conversation_row(conversation, width)
    return lines


def _conversation_row(conversation: Conversation, width: int) -> list[str]:
    a = _endpoint(conversation.address_a, conversation.port_a)
    b = _endpoint(conversation.address_b, conversation.port_b)
    row = _ROW.format(conversation.protocol, conversation.packets,
                      human_size(conversation.bytes), f"{a} <-> {b}")
    if len(row) <= width:
        return [row]
    # Two long IPv6 endpoints: B goes on a line of its own, under A.
    first = _ROW.format(conversation.protocol, conversation.packets,
                        human_size(conversation.bytes), f"{a} <->")
    return [cut(first, width), cut(" " * (len(first) - len(a) - 4) + b, width)]


def _endpoint(address: str, port: int | None) -> str:
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _name_lines(summary: CaptureSummary, width: int) -> list[str]:
    kinds = (("dns:", summary.dns), ("http:", summary.http_hosts), ("tls sni:", summary.tls))
    if not any(ranked.distinct for _label, ranked in kinds) and not summary.http_requests.top:
        return ["names:    none found (DNS queries, HTTP requests, TLS server names)"]
    lines = []
    for label, ranked in kinds:
        if ranked.distinct:
            lines += _ranked_lines(label, ranked, width, _NAME_LINES[label])
        if label == "http:":
            lines += _request_lines(summary.http_requests, width)
    return lines


def _ranked_lines(label: str, ranked: Ranked, width: int, max_lines: int) -> list[str]:
    """As many of the names as fit on `max_lines` lines, and how many more there are."""
    first = f"{label:<{len(_INDENT)}}"
    lines: list[str] = []
    for shown in range(1, len(ranked.top) + 1):
        items = [f"{cut(name, _SHOWN_NAME)} ({count})" for name, count in ranked.top[:shown]]
        more = ranked.distinct - shown
        text = ", ".join(items) + (f", and {more} more" if more else "")
        wrapped = textwrap.wrap(text, width, initial_indent=first, subsequent_indent=_INDENT,
                                break_on_hyphens=False)
        if len(wrapped) > max_lines and lines:
            break
        lines = wrapped[:max_lines]
    return lines


def _request_lines(requests: Ranked, width: int) -> list[str]:
    lines = []
    for request, host, count in requests.top[:_REQUEST_LINES]:
        # A long request line is cut, not its host and count.
        tail = (f", Host: {cut(host, _SHOWN_NAME)}" if host else "") + f" ({count})"
        lines.append(cut(_INDENT + cut(request, width - len(_INDENT) - len(tail)) + tail, width))
    if requests.distinct > len(lines):
        lines.append(f"{_INDENT}and {requests.distinct - len(lines)} more requests")
    return lines
