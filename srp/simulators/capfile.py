"""Writing capture files in the flavours appliances hand out: microsecond pcap, nanosecond
pcap and pcapng.

Written with struct, independently of srp.capture, so a simulator's captures test the
project's readers instead of echoing them. Records are streamed to the file one at a time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

PCAP = "pcap"            # classic pcap, microsecond timestamps
PCAP_NS = "pcap-ns"      # classic pcap, nanosecond timestamps
PCAPNG = "pcapng"        # pcapng, one section, one interface, microsecond timestamps
FLAVOURS = (PCAP, PCAP_NS, PCAPNG)

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101       # bare IPv4/IPv6 packets, no link-layer header
SNAPLEN = 262144

_PCAP_MAGIC = {PCAP: 0xA1B2C3D4, PCAP_NS: 0xA1B23C4D}
_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_SHB_USERAPPL = 4
_APPLICATION = b"srp-pcap simulator"


@dataclass(frozen=True)
class WrittenCapture:
    """What was written: enough to cut the file inside its last record later."""

    packets: int
    size: int
    last_record_offset: int   # where the last record starts (the file size when there is none)

    @property
    def mid_last_record(self) -> int:
        """A length that cuts the file in the middle of its last record."""
        return self.last_record_offset + (self.size - self.last_record_offset) // 2


def write_capture(path: str | Path, frames: Iterable[tuple[int, bytes]], *, linktype: int,
                  flavour: str = PCAP, snaplen: int = SNAPLEN) -> WrittenCapture:
    """Write (timestamp in ns since the epoch, frame bytes) pairs as one capture file whose
    header announces `snaplen` (the frames are written whole)."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown capture flavour {flavour!r} (one of {', '.join(FLAVOURS)})")
    encode = _pcapng_record if flavour == PCAPNG else _pcap_record(flavour)
    packets = 0
    with open(path, "wb") as file:
        file.write(_pcapng_header(linktype, snaplen) if flavour == PCAPNG
                   else _pcap_header(flavour, linktype, snaplen))
        last = file.tell()
        for ts_ns, frame in frames:
            last = file.tell()
            file.write(encode(ts_ns, frame))
            packets += 1
        size = file.tell()
    return WrittenCapture(packets, size, last if packets else size)


def _pcap_header(flavour: str, linktype: int, snaplen: int) -> bytes:
    return struct.pack("<IHHiIII", _PCAP_MAGIC[flavour], 2, 4, 0, 0, snaplen, linktype)


def _pcap_record(flavour: str):
    fraction_ns = 1 if flavour == PCAP_NS else 1000

    def encode(ts_ns: int, frame: bytes) -> bytes:
        seconds, rest = divmod(ts_ns, 1_000_000_000)
        return struct.pack("<IIII", seconds, rest // fraction_ns, len(frame), len(frame)) + frame

    return encode


def _block(block_type: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _pcapng_header(linktype: int, snaplen: int) -> bytes:
    section = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)   # length -1: not given
    section += _option(_SHB_USERAPPL, _APPLICATION) + _option(0, b"")
    interface = struct.pack("<HHI", linktype, 0, snaplen)   # no if_tsresol: microseconds
    return _block(_SHB, section) + _block(_IDB, interface)


def _pcapng_record(ts_ns: int, frame: bytes) -> bytes:
    units = ts_ns // 1000
    return _block(_EPB, struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF,
                                    len(frame), len(frame)) + frame)
