"""What every capture format reads into and writes from.

A record travels as a plain tuple, because the merge handles millions of them and a tuple is
the cheapest object CPython builds:

    (ts_ns, iface, origlen, data, options)

- ts_ns: nanoseconds since the epoch, or None for a record that has no timestamp (pcapng
  Simple Packet Block);
- iface: index into the reader's `interfaces` list (0 for classic pcap);
- origlen: the length of the packet on the wire; the captured length is len(data);
- data: the captured bytes, as a memoryview into the reader's chunk (no copy is made
  until the record is written; bytes(data) keeps it apart from the chunk);
- options: the record's pcapng options re-encoded little-endian (ending with opt_endofopt),
  or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TS, IFACE, ORIGLEN, DATA, OPTIONS = range(5)

# The interface of a record that is a non-packet block passed on whole (pcapng decryption
# secrets, copyable custom blocks): origlen then holds the block type, data its body.
BLOCK = -1

# Link-layer types whose packets may legitimately exceed the standard maximum
# (wiretap's wtap_max_snaplen_for_encap).
_LARGE_SNAPLEN = {
    249: 128 * 1024 * 1024,  # USBPCAP
    231: 128 * 1024 * 1024,  # DBUS
    279: 8 * 1024 * 1024,    # EBHSCR
}
MAX_SNAPLEN_STANDARD = 262144


def max_caplen(linktype: int) -> int:
    """The largest captured length a record of this link type may have before it is damage."""
    return _LARGE_SNAPLEN.get(linktype, MAX_SNAPLEN_STANDARD)


@dataclass(frozen=True)
class Interface:
    """A capture interface: what a pcap header or a pcapng Interface Description Block says.

    `options` is the IDB's option list re-encoded little-endian, in file order, without
    opt_endofopt and without if_tsoffset, which readers add into every timestamp; two
    interfaces are the same interface only if every field matches.
    """

    linktype: int
    snaplen: int
    ts_units: int = 1_000_000           # timestamp units per second (if_tsresol)
    ts_offset: int = 0                  # seconds the reader added to every timestamp
    options: tuple[tuple[int, bytes], ...] = field(default=())


@dataclass(frozen=True)
class Damage:
    """Where and why a reader stopped early; the records before it are good."""

    offset: int
    reason: str
    records_kept: int

    def describe(self, name: str) -> str:
        return (f"{name}: {self.reason} at byte offset {self.offset}; "
                f"kept the {self.records_kept} records before it")


# Options two interfaces must agree on when both carry them (wiretap's idb_merge_mode
# duplicate test): comment, name, description, speed, tsresol, OS, FCS length, hardware.
# wiretap also compares if_fcslen, but inverted (equal values never match): not copied.
_COMPARED_OPTIONS = (1, 2, 3, 8, 9, 12, 13, 15)


def same_interface(a: Interface, b: Interface) -> bool:
    """Whether mergecap's -I any / all would write `a` and `b` as one interface."""
    if (a.linktype, a.ts_units, a.snaplen) != (b.linktype, b.ts_units, b.snaplen):
        return False
    first_a, first_b = _first_values(a.options), _first_values(b.options)
    return all(first_a[code] == first_b[code] for code in _COMPARED_OPTIONS
               if code in first_a and code in first_b)


def _first_values(options) -> dict[int, bytes]:
    values: dict[int, bytes] = {}
    for code, value in options:
        values.setdefault(code, value)
    return values


def batch_encoder(packet_encoder, interface_map: list[int], cut: int | None, encode_block):
    """A writer's function turning a list of record tuples into their bytes: each packet by
    packet_encoder(its output interface, cut), each BLOCK record by encode_block(its block
    type, its body).

    `interface_map` gives the output interface of each of the reader's interfaces; it may
    grow between calls (pcapng describes interfaces mid-file)."""
    encoders = []   # by the reader's interface

    def encode(records: list[tuple]) -> list[bytes]:
        if len(encoders) < len(interface_map):
            encoders.extend(packet_encoder(out, cut) for out in interface_map[len(encoders):])
        return [encoders[iface](ts, origlen, data, options) if iface != BLOCK
                else encode_block(origlen, data)
                for ts, iface, origlen, data, options in records]

    return encode
