"""The capture engine: one module per file format, the merge apart from them."""

from __future__ import annotations

import os
from typing import BinaryIO

from srp.capture.pcap import PcapReader, is_pcap
from srp.capture.pcapng import PcapngReader, is_pcapng
from srp.capture.source import ByteSource, Window
from srp.errors import CaptureError


def open_capture(source: str | os.PathLike | BinaryIO) -> PcapReader | PcapngReader:
    """A reader for a pcap or pcapng file, recognised by its first bytes, never its name."""
    window = Window(ByteSource(source))
    window.fill(4)
    head = window.buf[:4]
    if not head:
        raise CaptureError("empty file, not a capture", window.source.name)
    if is_pcap(head):
        return PcapReader(window)
    if is_pcapng(head):
        return PcapngReader(window)
    raise CaptureError("not a capture file (neither pcap nor pcapng)", window.source.name)
