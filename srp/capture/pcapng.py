"""pcapng files: several sections, either byte order, Interface Description, Enhanced,
Simple and the obsolete Packet blocks. Every other block (name resolution, statistics,
decryption secrets, custom, unknown) is stepped over by its length."""

from __future__ import annotations

import struct
from itertools import chain
from typing import BinaryIO

from srp import __version__
from srp.capture.magic import PCAPNG_MAGIC
from srp.capture.model import BLOCK, Interface, batch_encoder, max_caplen
from srp.capture.source import BatchReader, Window
from srp.errors import CaptureError

SHB = 0x0A0D0D0A
IDB = 0x00000001
OBSOLETE_PB = 0x00000002
SPB = 0x00000003
EPB = 0x00000006
DSB = 0x0000000A
CUSTOM_COPYABLE = 0x00000BAD
# Two kinds of block that are not packets go into the output too, as records whose interface
# is BLOCK: decryption secrets (so TLS in the merge stays decryptable) and custom blocks their
# writer marked copyable.
BYTE_ORDER_MAGIC = 0x1A2B3C4D
_LE_MAGIC = struct.pack("<I", BYTE_ORDER_MAGIC)
_BE_MAGIC = struct.pack(">I", BYTE_ORDER_MAGIC)

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_TSRESOL = 9
IF_TSOFFSET = 14
SHB_USERAPPL = 4
_END_OF_OPTIONS = b"\x00\x00\x00\x00"
_PAD = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")   # indexed by length % 4

# Option values whose bytes depend on the section's byte order, by option code: their
# struct format. Everything else (strings, addresses, hashes) is bytes as they are.
_IDB_NUMBERS = {8: "Q", 10: "I", 14: "q", 16: "Q", 17: "Q"}   # speed, tzone, tsoffset, tx/rx
_PACKET_NUMBERS = {2: "I", 4: "Q", 5: "Q", 6: "I"}             # flags, drops, packet id, queue
_CUSTOM_OPTIONS = {2988, 2989}          # copyable custom options: start with a 32-bit PEN
# Options a copy must leave out (the pcapng spec; mergecap does): custom options marked
# do-not-copy, and every local-use code.
_DO_NOT_COPY = {19372, 19373}
_LOCAL_USE = 0x8000
_EPB_VERDICT = 7                                                # types 1 and 2 carry a u64

# Per byte order: a u32, a block's type and length, an EPB's and an obsolete PB's fields.
_UNPACKERS = {
    order: tuple(struct.Struct(order + fmt).unpack_from for fmt in ("I", "II", "IIIII", "HHIIII"))
    for order in "<>"
}

# The shortest each block can be; anything shorter is damage.
_MIN_LENGTH = {SHB: 28, IDB: 20, EPB: 32, OBSOLETE_PB: 32, SPB: 16}

# A block longer than this is damage, unless an interface of the section allows
# larger packets; it bounds the memory one corrupt length field can claim.
_BLOCK_LIMIT = 16 * 1024 * 1024


def is_pcapng(head: bytes) -> bool:
    return head[:4] == PCAPNG_MAGIC


def _parse_options(body: bytes, order: str, numbers: dict[int, str]) -> list[tuple[int, bytes]]:
    """An option list as (code, value) pairs, every value re-encoded little-endian."""
    options = []
    pos, end = 0, len(body)
    while pos + 4 <= end:
        code, length = struct.unpack_from(order + "HH", body, pos)
        if code == OPT_ENDOFOPT:
            break
        value = body[pos + 4:pos + 4 + length]
        if len(value) < length:
            break  # an option running past its block: keep what came before it
        pos += 4 + length + (-length & 3)
        if code in _DO_NOT_COPY or code & _LOCAL_USE:
            continue
        if order == ">":
            value = _to_little_endian(code, value, numbers)
        options.append((code, value))
    return options


def _to_little_endian(code: int, value: bytes, numbers: dict[int, str]) -> bytes:
    fmt = numbers.get(code)
    if fmt and len(value) == struct.calcsize(fmt):
        return struct.pack("<" + fmt, *struct.unpack(">" + fmt, value))
    if code in _CUSTOM_OPTIONS and len(value) >= 4:
        return value[3::-1] + value[4:]
    if (code == _EPB_VERDICT and numbers is _PACKET_NUMBERS and len(value) == 9
            and value[0] in (1, 2)):
        return value[:1] + value[:0:-1]
    return value


def encode_options(options) -> bytes:
    """A little-endian option list with its opt_endofopt, or nothing for no options."""
    if not options:
        return b""
    parts = []
    for code, value in options:
        parts.append(struct.pack("<HH", code, len(value)) + value + _PAD[len(value) % 4])
    parts.append(_END_OF_OPTIONS)
    return b"".join(parts)


def timestamp_units(options) -> int:
    """Units per second from if_tsresol: 10^-v, or 2^-v when the high bit is set."""
    for code, value in options:
        if code == IF_TSRESOL and len(value) >= 1:
            exponent = value[0] & 0x7F
            return 2 ** exponent if value[0] & 0x80 else 10 ** exponent
    return 1_000_000


def _timestamp_offset(options) -> int:
    for code, value in options:
        if code == IF_TSOFFSET and len(value) == 8:
            return struct.unpack("<q", value)[0]
    return 0


class PcapngReader(BatchReader):
    format_name = "pcapng"

    def __init__(self, window: Window):
        super().__init__(window)
        self.interfaces: list[Interface] = []
        # Per interface of the current section: (global index, ns multiplier, divisor,
        # offset in ns, largest caplen, snaplen).
        self._section: list[tuple] = []
        self._order = "<"
        self._block_limit = _BLOCK_LIMIT
        self._at_packet = False
        self._secrets: list[bytes] = []   # decryption secrets waiting for their packet
        self._read_header_blocks()

    def _read_header_blocks(self) -> None:
        """Read the section header and the interfaces described before the first packet,
        so the merge knows every file's interfaces before it writes any."""
        window = self._window
        window.fill(32)
        if len(window.buf) < 28 or window.buf[8:12] not in (_LE_MAGIC, _BE_MAGIC):
            raise CaptureError("not a valid pcapng file (bad section header)", self.name)
        major = struct.unpack_from(("<" if window.buf[8:12] == _LE_MAGIC else ">") + "H",
                                   window.buf, 12)[0]
        if major != 1:
            raise CaptureError(f"pcapng version {major} is not supported", self.name)
        budget = 64 * 1024
        window.fill(budget)
        while not self._at_packet and self.damage is None:
            before = window.pos
            self._parse(window, header_only=True)
            if window.pos == before and not self._at_packet and self.damage is None:
                if window.eof:
                    break  # what is left over is reported by the first read_batch
                window.fill(window.remaining + budget)

    def _start_section(self, buf: bytes, pos: int) -> int | None:
        """Switch to the byte order of the section header at `pos`; its length, or None."""
        magic = buf[pos + 8:pos + 12]
        if magic == _LE_MAGIC:
            self._order = "<"
        elif magic == _BE_MAGIC:
            self._order = ">"
        else:
            return None
        self._section = []
        return struct.unpack_from(self._order + "I", buf, pos + 4)[0]

    def _add_interface(self, body: bytes) -> None:
        order = self._order
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
        options = _parse_options(body[8:], order, _IDB_NUMBERS)
        units = timestamp_units(options)
        offset = _timestamp_offset(options)
        offset_ns = offset * 1_000_000_000
        # The offset goes into every timestamp read, so the interface written out has none.
        options = tuple(option for option in options if option[0] != IF_TSOFFSET)
        interface = Interface(linktype, snaplen, units, offset, options)
        if 1_000_000_000 % units == 0:
            multiplier, divisor = 1_000_000_000 // units, 1
        else:
            multiplier, divisor = 1_000_000_000, units
        largest = max_caplen(linktype)
        self._block_limit = max(self._block_limit, largest + 4096)
        self._section.append((len(self.interfaces), multiplier, divisor, offset_ns, largest,
                              snaplen))
        self.interfaces.append(interface)

    def _release_secrets(self, append, ts: int | None) -> None:
        for body in self._secrets:
            append((ts, BLOCK, DSB, body, None))
        self._secrets.clear()

    def _passed_on_body(self, block_type: int, body: bytes) -> bytes:
        """A block copied to the output, its byte-order-dependent fields made little-endian."""
        if self._order == "<":
            return body
        if block_type == DSB and len(body) >= 8:
            secrets_type, length = struct.unpack_from(">II", body)
            end = 8 + length + (-length & 3)
            options = _parse_options(body[end:], ">", {})
            return struct.pack("<II", secrets_type, length) + body[8:end] + encode_options(options)
        return body[3::-1] + body[4:]   # a custom block: only its PEN has a byte order

    def _packet_options(self, raw: bytes) -> bytes | None:
        if not raw:
            return None
        return encode_options(_parse_options(raw, self._order, _PACKET_NUMBERS)) or None

    def _parse(self, window: Window, header_only: bool = False) -> list[tuple]:
        buf, pos, end = window.buf, window.pos, len(window.buf)
        view = memoryview(buf)
        order = self._order
        u32, block_header, enhanced, obsolete = _UNPACKERS[order]
        section = self._section
        records = []
        append = records.append
        while pos + 12 <= end:
            block_type, length = block_header(buf, pos)
            if block_type == SHB:
                if header_only and window.base + pos > 0:
                    self._at_packet = True   # a later section: its interfaces come when read
                    break
                length = self._start_section(buf, pos)
                if length is None:
                    self._damage_here(pos, "section header with a bad byte-order magic",
                                      len(records))
                    break
                order = self._order
                u32, block_header, enhanced, obsolete = _UNPACKERS[order]
                section = self._section
            elif header_only and block_type != IDB:
                # A file's own interfaces are those described right after its first
                # section header, as mergecap counts them; later ones come as they are read.
                self._at_packet = True
                break
            if length < _MIN_LENGTH.get(block_type, 12) or length % 4 \
                    or length > self._block_limit:
                self._damage_here(pos, f"block claims an impossible length of {length} bytes",
                                  len(records))
                break
            block_end = pos + length
            if block_end > end:
                break
            if u32(buf, block_end - 4)[0] != length:
                self._damage_here(pos, "block's trailing length does not match its header",
                                  len(records))
                break
            if block_type == EPB or block_type == OBSOLETE_PB:
                if block_type == EPB:
                    iface_id, high, low, caplen, origlen = enhanced(buf, pos + 8)
                else:
                    iface_id, _drops, high, low, caplen, origlen = obsolete(buf, pos + 8)
                if iface_id >= len(section):
                    self._damage_here(pos, f"packet names interface {iface_id}, which the "
                                           f"section does not describe", len(records))
                    break
                index, multiplier, divisor, offset_ns, largest, _snaplen = section[iface_id]
                data_end = pos + 28 + caplen
                if caplen > largest or data_end > block_end - 4:
                    self._damage_here(pos, f"packet claims an impossible length of {caplen} "
                                           f"bytes", len(records))
                    break
                options_start = data_end + (-caplen & 3)
                ts = (((high << 32) | low) * multiplier) // divisor + offset_ns
                if self._secrets:
                    self._release_secrets(append, ts)
                append((ts, index, origlen, view[pos + 28:data_end],
                        self._packet_options(buf[options_start:block_end - 4])
                        if options_start < block_end - 4 else None))
            elif block_type == SPB:
                if not section:
                    self._damage_here(pos, "simple packet before any interface", len(records))
                    break
                index, _m, _d, _o, _largest, snaplen = section[0]
                origlen = u32(buf, pos + 8)[0]
                caplen = min(origlen, length - 16, snaplen or origlen)
                if self._secrets:
                    self._release_secrets(append, None)
                append((None, index, origlen, view[pos + 12:pos + 12 + caplen], None))
            elif block_type == SHB and struct.unpack_from(order + "H", buf, pos + 12)[0] != 1:
                self._damage_here(pos, "section header of an unsupported pcapng version",
                                  len(records))
                break
            elif block_type == IDB:
                self._add_interface(buf[pos + 8:block_end - 4])
                section = self._section
            elif block_type == CUSTOM_COPYABLE:
                append((None, BLOCK, block_type, self._passed_on_body(
                    block_type, buf[pos + 8:block_end - 4]), None))
                self.blocks_read += 1
            elif block_type == DSB:
                # Secrets go out right before the next packet of their file, as mergecap
                # writes them: they take that packet's timestamp when it is read.
                self._secrets.append(self._passed_on_body(block_type, buf[pos + 8:block_end - 4]))
                self.blocks_read += 1
            pos = block_end
        window.pos = pos
        return records

    def _describe_leftover(self, left: int) -> str:
        if left < 12:
            return f"{left} stray bytes after the last block"
        return "truncated block"


class PcapngWriter:
    """One section naming srp-pcap, interface blocks as the merge adds them, and every
    record as an Enhanced Packet Block, little-endian."""

    def __init__(self, file: BinaryIO):
        self._file = file
        # Per output interface, units = ns * multiplier // divisor for its if_tsresol.
        self._clocks: list[tuple[int, int]] = []
        options = encode_options([(SHB_USERAPPL, f"srp-pcap {__version__}".encode())])
        body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + options
        file.write(struct.pack("<II", SHB, 28 + len(options)) + body
                   + struct.pack("<I", 28 + len(options)))

    def add_interface(self, interface: Interface) -> None:
        options = encode_options(interface.options)
        length = 20 + len(options)
        self._file.write(struct.pack("<IIHHI", IDB, length, interface.linktype, 0,
                                     interface.snaplen) + options + struct.pack("<I", length))
        units = interface.ts_units
        self._clocks.append((1, 1_000_000_000 // units) if 1_000_000_000 % units == 0
                            else (units, 1_000_000_000))

    def copies(self, reader, cut: int | None) -> bool:
        """Records always get new blocks here: interface ids and options are rewritten."""
        return False

    def packet_encoder(self, out_iface: int, cut: int | None):
        """A function turning one packet of output interface `out_iface` into an Enhanced
        Packet Block: encode(ts_ns, origlen, data, options=None).

        A block is made as a tuple of its pieces, joined only when write_records writes a
        group of them: one copy of the packet's bytes instead of two."""
        head = struct.Struct("<IIIIIII").pack
        # The block's padding and trailing length in one pack, by caplen % 4.
        tails = [struct.Struct(f"<{pad}xI").pack for pad in (0, 3, 2, 1)]
        u32 = tails[0]
        multiplier, divisor = self._clocks[out_iface]

        def encode(ts: int | None, origlen: int, data, options: bytes | None = None) -> tuple:
            # As wiretap writes it: floor(ts * units / 1e9), wrapping at 64 bits. (Most
            # clocks divide a second evenly; multiplying a big int by 1 is not free.)
            units = ((ts or 0) // divisor if multiplier == 1
                     else (ts or 0) * multiplier // divisor) & 0xFFFFFFFFFFFFFFFF
            if cut is not None and len(data) > cut:
                data = data[:cut]
            caplen = len(data)
            if options:
                length = 32 + caplen + (-caplen & 3) + len(options)
                return (head(EPB, length, out_iface, units >> 32, units & 0xFFFFFFFF, caplen,
                             origlen), data, _PAD[caplen & 3], options, u32(length))
            length = 32 + caplen + (-caplen & 3)
            return (head(EPB, length, out_iface, units >> 32, units & 0xFFFFFFFF, caplen,
                         origlen), data, tails[caplen & 3](length))

        return encode

    def encoder(self, interface_map: list[int], cut: int | None):
        """A function turning records into blocks; `interface_map` gives the output
        interface of each of the reader's interfaces."""
        u32 = struct.Struct("<I").pack
        type_and_length = struct.Struct("<II").pack

        def encode_block(block_type: int, body) -> tuple:   # passed on as it is
            length = 12 + len(body)
            return type_and_length(block_type, length), body, u32(length)

        return batch_encoder(self.packet_encoder, interface_map, cut, encode_block)

    def write_records(self, encoded: list[tuple]) -> None:
        """Write records as this writer's encoders made them."""
        self._file.write(b"".join(chain.from_iterable(encoded)))
