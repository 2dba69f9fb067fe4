"""What is in a capture, for the analyst: its file, packets and time span, the largest
conversations, and the names its traffic carries (DNS, HTTP, TLS).

    summary = summarize(path)          # one pass over the file (headers.py, names.py)
    print(render_text(summary))        # at most 40 lines of 100 characters (render.py)
    json.dumps(summary.as_json())

The file's SHA-256 is computed in a thread beside the pass (hashlib lets go of the GIL), or
not at all when the caller knows it already.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

from srp.capture import open_capture
from srp.capture.headers import LINK_TYPE_NAMES
from srp.hashing import file_sha256
from srp.summary.headers import HeaderPass, link_type_name, protocol_name
from srp.summary.names import CANDIDATES, NameReader, Ranked, TrafficNames
from srp.summary.render import MAX_LINES, WIDTH, render_text
from srp.timestamps import ns_to_rfc3339

__all__ = ["CaptureSummary", "Conversation", "MAX_LINES", "Ranked", "WIDTH", "render_text",
           "summarize"]

READ_BUDGET = 256 * 1024   # bytes per batch: the reader's window is cheapest to slide at this
TOP_CONVERSATIONS = 10
NOT_IP = "not IP"
NOT_DECODED = "not decoded"
NOT_TRACKED = "not tracked"


@dataclass(frozen=True)
class Conversation:
    """Both directions between two endpoints; A is the lower address (and port)."""

    protocol: str
    address_a: str
    port_a: int | None
    address_b: str
    port_b: int | None
    packets: int
    bytes: int
    first_ns: int | None
    last_ns: int | None

    def as_json(self) -> dict:
        return {"protocol": self.protocol,
                "a": {"address": self.address_a, "port": self.port_a},
                "b": {"address": self.address_b, "port": self.port_b},
                "packets": self.packets, "bytes": self.bytes,
                "first": ns_to_rfc3339(self.first_ns), "last": ns_to_rfc3339(self.last_ns)}


@dataclass
class CaptureSummary:
    path: str
    size: int
    sha256: str
    packets: int
    first_ns: int | None
    last_ns: int | None
    link_types: dict[int, int]          # link-layer type -> packets
    protocols: dict[str, int]           # "TCP", "UDP", ..., NOT_TRACKED, NOT_IP, NOT_DECODED
                                        # -> packets
    conversation_count: int
    conversations: list[Conversation]   # the largest by bytes, at most TOP_CONVERSATIONS
    dns: Ranked = field(default_factory=Ranked)             # of names.NameCount
    http_hosts: Ranked = field(default_factory=Ranked)      # of names.NameCount
    http_requests: Ranked = field(default_factory=Ranked)   # of names.RequestCount
    tls: Ranked = field(default_factory=Ranked)             # of names.NameCount
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "path": self.path, "size": self.size, "sha256": self.sha256,
            "packets": self.packets,
            "first": ns_to_rfc3339(self.first_ns), "last": ns_to_rfc3339(self.last_ns),
            "link_types": [{"linktype": linktype, "name": link_type_name(linktype),
                            "packets": packets} for linktype, packets in self.link_types.items()],
            "protocols": self.protocols,
            "conversations": {"count": self.conversation_count,
                              "top": [c.as_json() for c in self.conversations]},
            "dns": _ranked_json(self.dns, ("name", "count")),
            "http": {"hosts": _ranked_json(self.http_hosts, ("name", "count")),
                     "requests": _ranked_json(self.http_requests, ("request", "host", "count"))},
            "tls": _ranked_json(self.tls, ("name", "count")),
            "warnings": self.warnings,
        }


def _ranked_json(ranked: Ranked, keys: tuple[str, ...]) -> dict:
    return {"distinct": ranked.distinct, "top": [dict(zip(keys, item)) for item in ranked.top]}


def summarize(path: str | Path, *, sha256: str | None = None) -> CaptureSummary:
    """Read a pcap or pcapng file once and say what is in it.

    A damaged file is read up to its damage, with a warning. Raises CaptureError when the
    file cannot be read or is not a capture."""
    path = Path(path)
    names = NameReader()
    header_pass = HeaderPass(examine=names.examine)
    with open_capture(path) as reader, ThreadPoolExecutor(1) as hasher, _collector_paused():
        digest = hasher.submit(file_sha256, path) if sha256 is None else None
        while (records := reader.read_batch(READ_BUDGET)) is not None:
            header_pass.add(records, reader.interfaces)
        conversations = header_pass.conversations()
        sha256 = sha256 or digest.result()
    found = names.names()
    largest = heapq.nlargest(TOP_CONVERSATIONS, conversations.items(),
                             key=lambda item: (item[1][1], item[1][0]))
    return CaptureSummary(
        path=str(path.resolve()), size=path.stat().st_size, sha256=sha256,
        packets=header_pass.packets, first_ns=header_pass.first_ns,
        last_ns=header_pass.last_ns, link_types=dict(header_pass.link_types),
        protocols=_protocols(header_pass, conversations),
        conversation_count=len(conversations),
        conversations=[_conversation(key, totals) for key, totals in largest],
        dns=found.dns, http_hosts=found.http_hosts, http_requests=found.http_requests,
        tls=found.tls, warnings=_warnings(path, reader.damage, header_pass, found))


@contextlib.contextmanager
def _collector_paused():
    """The pass keeps a container per conversation and makes no reference cycles: the cyclic
    garbage collector would only scan them again and again (a third of a port scan's time)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _conversation(key: tuple, totals: list) -> Conversation:
    protocol, (address_a, port_a), (address_b, port_b) = key
    packets, size, first, last = totals
    return Conversation(protocol_name(protocol), str(ip_address(address_a)), port_a,
                        str(ip_address(address_b)), port_b, packets, size, first, last)


def _protocols(header_pass: HeaderPass, conversations: dict) -> dict[str, int]:
    by_protocol: Counter[str] = Counter()
    for (protocol, _a, _b), totals in conversations.items():
        by_protocol[protocol_name(protocol)] += totals[0]
    packets = dict(by_protocol.most_common())
    if header_pass.untracked_packets:
        packets[NOT_TRACKED] = header_pass.untracked_packets
    if header_pass.not_ip:
        packets[NOT_IP] = header_pass.not_ip
    undecoded = sum(count for linktype, count in header_pass.link_types.items()
                    if linktype not in LINK_TYPE_NAMES)
    if undecoded:
        packets[NOT_DECODED] = undecoded
    return packets


def _warnings(path: Path, damage, header_pass: HeaderPass, names: TrafficNames) -> list[str]:
    warnings = []
    if damage is not None:
        warnings.append(damage.describe(str(path)))
    for linktype, count in header_pass.link_types.items():
        if linktype not in LINK_TYPE_NAMES:
            warnings.append(f"{count} packets of {link_type_name(linktype)} are not decoded "
                            f"(not in the conversations or names)")
    if header_pass.untracked_packets:
        warnings.append(f"too many conversations to track (a scan?): {header_pass.max_tracked} "
                        f"keys tracked; {header_pass.untracked_packets} packets "
                        f"({header_pass.untracked_bytes} bytes) with keys seen after that are "
                        f"counted, but not in the conversations")
    if names.capped:
        kinds = ", ".join(names.capped[:-1]) + (" and " if len(names.capped) > 1 else "")
        warnings.append(f"{kinds}{names.capped[-1]} names are counted in the first "
                        f"{CANDIDATES} packets of each kind only (the capture has more)")
    return warnings
