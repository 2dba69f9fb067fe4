"""What a file is, from its first bytes: the one table of magic numbers. The format modules
read their own entries; a download is told apart by them (a capture, an archive of captures,
or neither: the server talking). A file's name or Content-Type is never trusted."""

from __future__ import annotations

import struct

PCAP_MICRO = 0xA1B2C3D4
PCAP_NANO = 0xA1B23C4D
# Classic pcap's first four bytes: (struct byte order, nanosecond time stamps).
PCAP_MAGICS = {struct.pack(order + "I", magic): (order, magic == PCAP_NANO)
               for magic in (PCAP_MICRO, PCAP_NANO) for order in "<>"}
# A pcapng file opens with a section header block, whose type reads alike in both orders.
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
ARCHIVE_MAGICS = {b"7z\xbc\xaf\x27\x1c": "7z", b"\x1f\x8b": "gzip"}

CAPTURE_KINDS = ("pcap", "pcapng")
SNIFF_BYTES = 8   # enough of a body to tell every kind


def sniff(head: bytes) -> str | None:
    """'pcap', 'pcapng', '7z' or 'gzip' from a body's first bytes; None for anything else."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return next((kind for magic, kind in ARCHIVE_MAGICS.items() if head.startswith(magic)),
                None)
