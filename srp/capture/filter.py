"""A capture copied keeping only the packets whose headers (srp.capture.headers) pass a test."""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

from srp.capture import open_capture
from srp.capture.headers import Packet, decode_packet
from srp.capture.model import BLOCK, DATA, IFACE, Damage
from srp.capture.pcap import PcapReader, PcapWriter
from srp.capture.pcapng import PcapngWriter

_BATCH = 1 << 20


class Filtered(NamedTuple):
    kept: int                # packets written
    read: int                # packets read
    damage: Damage | None    # where the source stopped making sense; the packets before it count


def filter_capture(source: str | os.PathLike, target: str | os.PathLike,
                   keep: Callable[[Packet | None], bool]) -> Filtered:
    """Copy the packets of `source` for which keep(their decoded headers, None when not IP)
    is true into `target`, in the source's format (pcap stays pcap). Streams: memory stays
    bounded whatever the size. Reading stops at damage, as the merge does; non-packet pcapng
    blocks are left out."""
    kept = read = 0
    with open_capture(source) as reader, open(target, "wb") as file:
        if isinstance(reader, PcapReader):
            interface = reader.interfaces[0]
            writer = PcapWriter(file, interface.linktype, interface.snaplen,
                                reader.nanosecond)
        else:
            writer = PcapngWriter(file)
        interface_map: list[int] = []   # the encoder reads it as interfaces are added
        encode = writer.encoder(interface_map, None)
        while (batch := reader.read_batch(_BATCH)) is not None:
            for interface in reader.interfaces[len(interface_map):]:
                writer.add_interface(interface)
                interface_map.append(len(interface_map))
            chosen = []
            for record in batch:
                iface = record[IFACE]
                if iface == BLOCK:
                    continue
                read += 1
                if keep(decode_packet(reader.interfaces[iface].linktype, record[DATA])):
                    chosen.append(record)
            kept += len(chosen)
            writer.write_records(encode(chosen))
        return Filtered(kept, read, reader.damage)
