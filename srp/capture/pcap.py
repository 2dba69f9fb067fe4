"""Classic libpcap files: microsecond and nanosecond magic, either byte order, version 2.x."""

from __future__ import annotations

import struct
from typing import BinaryIO

from srp.capture.magic import PCAP_MAGICS, PCAP_MICRO, PCAP_NANO
from srp.capture.model import Interface, batch_encoder, max_caplen
from srp.capture.source import BatchReader, Window
from srp.errors import CaptureError, UsageError

HEADER_SIZE = 24
RECORD_HEADER_SIZE = 16
# The link-type field's upper bits carry the FCS length (libpcap's LT_FCS_LENGTH_PRESENT
# and LT_FCS_LENGTH); only the low 16 bits name the link type.
LINKTYPE_MASK = 0xFFFF
FCS_PRESENT = 0x04000000
# The interface map's mark for an interface whose packets this file cannot hold.
OTHER_LINKTYPE = -1
IF_TSRESOL = 9    # the pcapng options an interface read from a pcap header may carry
IF_FCSLEN = 13

def is_pcap(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS


class PcapReader(BatchReader):
    format_name = "pcap"

    def __init__(self, window: Window):
        super().__init__(window)
        window.fill(HEADER_SIZE)
        header = window.buf[window.pos:window.pos + HEADER_SIZE]
        if len(header) < HEADER_SIZE:
            raise CaptureError("truncated pcap file header", self.name)
        byte_order, self.nanosecond = PCAP_MAGICS[header[:4]]
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(
            byte_order + "HHiIII", header[4:])
        if major < 2:
            raise CaptureError(f"pcap version {major}.{minor} is not supported", self.name)
        window.pos += HEADER_SIZE
        linktype = network & LINKTYPE_MASK
        options = []
        if self.nanosecond:
            options.append((IF_TSRESOL, b"\x09"))
        if network & FCS_PRESENT:
            # if_fcslen, in bytes: the field counts 16-bit words.
            options.append((IF_FCSLEN, bytes([((network >> 28) & 0xF) * 2])))
        ts_units = 1_000_000_000 if self.nanosecond else 1_000_000
        self.interfaces = [Interface(linktype, snaplen, ts_units, 0, tuple(options))]
        # Writers of versions before 2.3 put the original length before the captured one;
        # 2.3 files come either way (libpcap's and wiretap's reading of them).
        self._lengths_swapped = major == 2 and minor < 3
        self._swap_when_inverted = major == 2 and minor == 3
        self._record_header = struct.Struct(byte_order + "IIII")
        self._byte_order = byte_order
        self._max_caplen = max_caplen(linktype)

    @property
    def record_layout(self) -> tuple[str, bool] | None:
        """(byte order, nanosecond) of the records as they lie in the file, for a writer to
        copy them whole; None when their fields are not in today's order."""
        if self._lengths_swapped or self._swap_when_inverted:
            return None
        return self._byte_order, self.nanosecond

    def read_blobs(self, budget: int, encode=None) -> tuple[list[int], list[bytes]] | None:
        """Like read_batch, as two lists: every record's ts_ns, and its bytes as they lie in
        the file, header included, or, given `encode(ts_ns, origlen, data)`, what that makes
        of it (a writer's packet encoder). No record tuples are built: this is the merge's
        fast path."""
        timestamps: list[int] = []
        blobs: list[bytes] = []

        def parse(window: Window) -> list[int]:
            self._parse_into(window, timestamps, blobs, encode)
            return timestamps

        return (timestamps, blobs) if self._read(budget, parse) is not None else None

    def _parse(self, window: Window) -> list[tuple]:
        records = []
        self._parse_into(window, records, None, None)
        return records

    def _parse_into(self, window: Window, firsts: list, blobs: list | None, encode) -> None:
        """Parse the window's complete records: into `firsts` as record tuples when `blobs`
        is None, else their timestamps into `firsts` and their bytes (or what `encode` makes
        of them) into `blobs`."""
        buf, pos, end = window.buf, window.pos, len(window.buf)
        view = memoryview(buf)
        unpack = self._record_header.unpack_from
        ns_per_frac = 1 if self.nanosecond else 1000
        max_len = self._max_caplen
        append = firsts.append
        add_blob = blobs.append if blobs is not None else None
        swapped, swap_when_inverted = self._lengths_swapped, self._swap_when_inverted
        while pos + RECORD_HEADER_SIZE <= end:
            sec, frac, caplen, origlen = unpack(buf, pos)
            if swapped or (swap_when_inverted and caplen > origlen):
                caplen, origlen = origlen, caplen
            if caplen > max_len:
                self._damage_here(pos, f"record claims an impossible length of {caplen} bytes",
                                  len(firsts))
                break
            data_end = pos + RECORD_HEADER_SIZE + caplen
            if data_end > end:
                break
            ts = sec * 1_000_000_000 + frac * ns_per_frac
            if add_blob is None:
                append((ts, 0, origlen, view[pos + RECORD_HEADER_SIZE:data_end], None))
            else:
                append(ts)
                add_blob(buf[pos:data_end] if encode is None
                         else encode(ts, origlen, view[pos + RECORD_HEADER_SIZE:data_end]))
            pos = data_end
        window.pos = pos

    def _describe_leftover(self, left: int) -> str:
        if left < RECORD_HEADER_SIZE:
            return f"{left} stray bytes after the last record"
        return "truncated record"


class PcapWriter:
    """Writes classic pcap the way mergecap does: version 2.4, zone and sigfigs 0,
    little-endian, the link type without its FCS bits."""

    def __init__(self, file: BinaryIO, linktype: int, snaplen: int, nanosecond: bool):
        self._file = file
        self._nanosecond = nanosecond
        self._linktype = linktype & LINKTYPE_MASK
        magic = PCAP_NANO if nanosecond else PCAP_MICRO
        file.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, self._linktype))

    def copies(self, reader, cut: int | None) -> bool:
        """True when the reader's raw records are already exactly what this file holds."""
        return cut is None and getattr(reader, "record_layout", None) == ("<", self._nanosecond)

    def packet_encoder(self, out_iface: int, cut: int | None):
        """A function turning one packet into its bytes in this file: encode(ts_ns, origlen,
        data, options=None); `out_iface` is 0, or OTHER_LINKTYPE for packets it can't hold."""
        pack = struct.Struct("<IIII").pack
        frac_divisor = 1 if self._nanosecond else 1000
        if out_iface == OTHER_LINKTYPE:
            return self._refuse

        def encode(ts: int | None, origlen: int, data, options=None) -> bytes:
            # Stamps mergecap cannot express wrap as its 32-bit fields do.
            sec, frac = divmod(ts or 0, 1_000_000_000)
            if cut is not None and len(data) > cut:
                data = data[:cut]
            return pack(sec & 0xFFFFFFFF, frac // frac_divisor, len(data), origlen) + data

        return encode

    def _refuse(self, *_packet) -> bytes:
        raise UsageError(f"a packet has a link-layer type other than the file's "
                         f"({self._linktype}), which can't be written as a "
                         f"{'nsecpcap' if self._nanosecond else 'pcap'} file; use -F pcapng")

    def encoder(self, interface_map: list[int], cut: int | None):
        """A function turning records into their bytes in this file."""
        # pcapng-only blocks: pcap cannot hold them
        return batch_encoder(self.packet_encoder, interface_map, cut, lambda _type, _body: b"")

    def add_interface(self, interface: Interface) -> None:
        """Classic pcap has one interface, given in the header."""

    def write_records(self, encoded: list[bytes]) -> None:
        """Write records as this writer's encoders made them."""
        self._file.write(b"".join(encoded))
