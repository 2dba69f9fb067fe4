"""The capture summary: its figures against captures whose content is known (the traffic
simulator's sessions across link types, the shared corpus, Wireshark's conversation tables),
hostile names made harmless, the text's size, the JSON, damage, and the command's errors."""

from __future__ import annotations

import heapq
import json
import random
import re
import shutil
import string
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capgen import Iface, Rec, Section, write_pcapng
from conftest import not_a_capture, run_srp
from srp.capture import open_capture
from srp.capture.headers import decode_packet
from srp.capture.model import BLOCK
from srp.errors import CaptureError
from srp.simulators import traffic
from srp.simulators.capfile import LINKTYPE_ETHERNET, PCAP, PCAP_NS, PCAPNG, write_capture
from srp.summary import MAX_LINES, WIDTH, render_text, summarize
from srp.summary.headers import HeaderPass
from srp.summary.names import NameReader, dns_question_names, http_request, server_name

START_NS = 1_763_800_000 * 10**9

# Link layers as (link type, the Ethernet frame rewritten onto it); Conversation.frames
# builds Ethernet frames, rewritten here so every layout sees the same traffic.
LINKS = {
    "ethernet": (1, lambda f: f),
    "802.1Q": (1, lambda f: f[:12] + b"\x81\x00\x00\x64" + f[12:]),
    "QinQ": (1, lambda f: f[:12] + b"\x88\xa8\x00\x0a\x81\x00\x00\x64" + f[12:]),
    "linux-sll": (113, lambda f: struct.pack("!HHH8s", 0, 1, 6, f[6:12]) + f[12:]),
    "linux-sll2": (276, lambda f: f[12:14] + b"\0\0" + struct.pack("!IHBB8s", 2, 1, 0, 6, f[6:12])
                   + f[14:]),
    "raw": (101, lambda f: f[14:]),
    "loopback": (0, lambda f: struct.pack("<I", 2 if f[12:14] == b"\x08\x00" else 30) + f[14:]),
}
LINK_NAMES = {1: "Ethernet", 113: "Linux cooked", 276: "Linux cooked v2", 101: "raw IP",
              0: "BSD loopback"}


def _session(domain: str, *, ipv6: bool = False, start_ns: int = START_NS, number: int = 0,
             payload_packets: int = 4) -> traffic.Conversation:
    if ipv6:
        addresses = dict(client_ip=f"2001:db8:1::{number + 10:x}", server_ip="2001:db8:2::10")
    else:
        addresses = dict(client_ip=f"10.1.0.{number + 10}", server_ip="203.0.113.10")
    return traffic.Conversation(domain=domain, start_ns=start_ns, seed=number,
                                payload_packets=payload_packets, **addresses)


def _write(path: Path, sessions, link: str = "ethernet", flavour: str = PCAP_NS) -> Path:
    linktype, relink = LINKS[link]
    frames = heapq.merge(*(session.frames() for session in sessions), key=lambda f: f[0])
    write_capture(path, ((ts, relink(frame)) for ts, frame in frames), linktype=linktype,
                  flavour=flavour)
    return path


def _expected(sessions, link: str = "ethernet") -> dict:
    """What the summary must find, from the sessions' plans and frames (not decoded)."""
    linktype, relink = LINKS[link]
    conversations: Counter = Counter()
    sizes: Counter = Counter()
    requests: Counter = Counter()
    stamps = []
    for session in sessions:
        for planned, (ts, frame) in zip(session.plan(), session.frames()):
            ends = frozenset({(planned.src, planned.sport), (planned.dst, planned.dport)})
            conversations[ends] += 1
            sizes[ends] += len(relink(frame))
            stamps.append(ts)
            if isinstance(planned.payload, bytes) and planned.payload.startswith(b"GET "):
                requests[planned.payload.split(b"\r\n")[0].decode(), session.domain] += 1
    domains = Counter(session.domain for session in sessions)
    return {"linktype": linktype, "conversations": conversations, "sizes": sizes,
            "packets": sum(conversations.values()), "bytes": sum(sizes.values()),
            "first": min(stamps), "last": max(stamps), "domains": domains,
            "requests": requests}


def _found(summary) -> tuple[Counter, Counter]:
    """The summary's conversations as the expectation counts them: packets and bytes."""
    packets, sizes = Counter(), Counter()
    for c in summary.conversations:
        ends = frozenset({(c.address_a, c.port_a), (c.address_b, c.port_b)})
        packets[ends] += c.packets
        sizes[ends] += c.bytes
    return packets, sizes


def _check_figures(summary, expected: dict) -> None:
    assert summary.packets == expected["packets"]
    assert (summary.first_ns, summary.last_ns) == (expected["first"], expected["last"])
    assert summary.link_types == {expected["linktype"]: expected["packets"]}
    assert summary.conversation_count == len(expected["conversations"])
    packets, sizes = _found(summary)
    assert packets == expected["conversations"]
    assert sizes == expected["sizes"]
    assert sum(summary.protocols.values()) == expected["packets"]
    assert dict(summary.dns.top) == dict(expected["domains"])
    assert dict(summary.tls.top) == dict(expected["domains"])
    assert dict(summary.http_hosts.top) == dict(expected["domains"])
    assert {(r.request, r.host): r.count for r in summary.http_requests.top} \
        == dict(expected["requests"])
    assert summary.warnings == []


# --- figures against known traffic ---------------------------------------------------------

@pytest.mark.parametrize("ipv6", [False, True], ids=["IPv4", "IPv6"])
@pytest.mark.parametrize("link", list(LINKS))
def test_figures_match_the_simulated_traffic(tmp_path, link, ipv6):
    sessions = [_session("www.example.com", ipv6=ipv6),
                _session("cdn.example.net", ipv6=ipv6, number=1, start_ns=START_NS + 10**7)]
    path = _write(tmp_path / "sessions.pcap", sessions, link)
    summary = summarize(path)
    _check_figures(summary, _expected(sessions, link))
    assert summary.size == path.stat().st_size
    assert summary.protocols == {"TCP": summary.packets - 4, "UDP": 4}   # DNS: 2 a session
    text = render_text(summary)
    assert f"traffic:  {LINK_NAMES[LINKS[link][0]]}; TCP" in text
    assert "dns:      cdn.example.net (1), www.example.com (1)" in text \
        or "dns:      www.example.com (1), cdn.example.net (1)" in text


@pytest.mark.parametrize("flavour", [PCAP, PCAPNG])
def test_figures_are_the_same_in_microsecond_flavours(tmp_path, flavour):
    sessions = [_session("www.example.com"), _session("www.example.com", number=1,
                                                      start_ns=START_NS + 5 * 10**6)]
    summary = summarize(_write(tmp_path / "sessions", sessions, flavour=flavour))
    expected = _expected(sessions)
    expected["first"] -= expected["first"] % 1000
    expected["last"] -= expected["last"] % 1000
    _check_figures(summary, expected)
    assert summary.dns.top == (("www.example.com", 2),)


def test_many_sessions_rank_and_count(tmp_path):
    rng = random.Random(5)
    domains = [f"site{index}.example.org" for index in range(25)]
    picks = domains + rng.choices(domains[:3], k=9)
    sessions = [_session(domain, number=index, start_ns=START_NS + index * 10**8,
                         payload_packets=index % 5)
                for index, domain in enumerate(picks)]
    summary = summarize(_write(tmp_path / "many.pcap", sessions))
    counts = Counter(picks)
    assert summary.conversation_count == 3 * len(picks)
    assert len(summary.conversations) == 10
    assert summary.dns.distinct == summary.tls.distinct == len(domains)
    assert dict(summary.dns.top) == dict(counts.most_common(10))
    # The largest conversations come first, by bytes.
    sizes = [c.bytes for c in summary.conversations]
    assert sizes == sorted(sizes, reverse=True)
    text = render_text(summary)
    assert "conversations: 102; the 10 largest:" in text
    assert re.search(r"and \d+ more", text)
    _check_text_shape(text)


def test_pcapng_with_several_link_types_and_simple_packets(tmp_path):
    ethernet = list(_session("one.example").frames())
    raw = [(ts + 10**6, frame[14:]) for ts, frame in _session("two.example", number=1).frames()]
    records = [Rec(ts, frame, len(frame), iface=0) for ts, frame in ethernet]
    records += [Rec(ts, frame, len(frame), iface=1) for ts, frame in raw]
    records.append(Rec(None, ethernet[0][1], len(ethernet[0][1]), spb=True))
    path = tmp_path / "mixed.pcapng"
    write_pcapng(path, [Section([Iface(1, tsresol=9), Iface(101, tsresol=9)], records)])
    summary = summarize(path)
    assert summary.packets == len(records)
    assert summary.link_types == {1: len(ethernet) + 1, 101: len(raw)}
    assert summary.first_ns == ethernet[0][0]
    assert summary.last_ns == max(ethernet[-1][0], raw[-1][0])
    assert dict(summary.tls.top) == {"one.example": 1, "two.example": 1}
    assert summary.conversation_count == 6


# --- the shared corpus and Wireshark ------------------------------------------------------

def _corpus_captures(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.suffix in (".pcap", ".pcapng"))


def test_corpus_packet_counts_are_what_the_reader_sees(corpus):
    checked = 0
    for path in _corpus_captures(corpus):
        try:
            with open_capture(path) as reader:
                packets = 0
                while (records := reader.read_batch(65536)) is not None:
                    packets += sum(record[1] != BLOCK for record in records)
                damage = reader.damage
        except CaptureError:
            with pytest.raises(CaptureError):
                summarize(path)
            continue
        summary = summarize(path)
        assert summary.packets == packets, path
        assert sum(summary.link_types.values()) == packets, path
        assert (damage is not None) == any("byte offset" in w for w in summary.warnings), path
        _check_text_shape(render_text(summary))
        checked += 1
    assert checked > 20


def _tshark_conversations(path: Path, kind: str) -> dict:
    """{(endpoints, protocol): (frames, bytes text)} from `tshark -q -z conv,KIND`."""
    done = subprocess.run(["tshark", "-q", "-z", f"conv,{kind}", "-r", str(path)],
                          capture_output=True, text=True, check=True)
    found = {}
    row = re.compile(r"^(\S+)\s+<->\s+(\S+)\s+\d+ \S+ \S+\s+\d+ \S+ \S+\s+(\d+) (\d+) (\S+)")
    for line in done.stdout.splitlines():
        match = row.match(line)
        if match:
            a, b, frames, size, unit = match.groups()
            ends = frozenset(_endpoint(text) for text in (a, b))
            found[ends, kind.upper()] = (int(frames), int(size), unit)
    return found


def _endpoint(text: str) -> tuple[str, int]:
    address, port = text.rsplit(":", 1)
    return address, int(port)


@pytest.mark.parametrize("name", ["http.pcap", "dns_icmp.pcap"])
def test_corpus_conversations_match_tshark(corpus, name):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian: apt-get install tshark)")
    path = corpus / "dpkt-examples" / name
    summary = summarize(path)
    assert summary.conversation_count <= len(summary.conversations)   # all of them shown
    ours = {(frozenset({(c.address_a, c.port_a), (c.address_b, c.port_b)}), c.protocol): c
            for c in summary.conversations if c.protocol in ("TCP", "UDP")}
    theirs = {**_tshark_conversations(path, "tcp"), **_tshark_conversations(path, "udp")}
    assert set(ours) == set(theirs)
    for key, (frames, size, unit) in theirs.items():
        assert ours[key].packets == frames, key
        scale = {"bytes": 1, "kB": 1000, "MB": 1000**2}[unit]   # tshark rounds to its unit
        assert abs(ours[key].bytes - size * scale) < scale, key


# --- names, and hostile ones -----------------------------------------------------------------

def _frames_of(*packets) -> list[tuple[int, bytes]]:
    from scapy.layers.l2 import Ether

    return [(START_NS + index * 1000, bytes(Ether(src="02:00:00:00:00:01",
                                                  dst="02:00:00:00:00:02") / packet))
            for index, packet in enumerate(packets)]


def _tcp(payload: bytes, seq: int = 1000, sport: int = 50000, dport: int = 443):
    from scapy.layers.inet import IP, TCP

    return IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=sport, dport=dport, flags="PA",
                                                    seq=seq) / payload


def _udp(payload: bytes, sport: int = 50001, dport: int = 53):
    from scapy.layers.inet import IP, UDP

    return IP(src="10.0.0.1", dst="10.0.0.9") / UDP(sport=sport, dport=dport) / payload


HOSTILE = "evil\x1b[31m.\x07bell\x00.rtl\u202ehidden.com"


def test_hostile_names_are_neutralized(tmp_path):
    long_name = ".".join(["a" * 63] * 3 + ["b" * 60])
    hello = traffic.client_hello(HOSTILE, random.Random(1), bytes(32))
    request = ("GET /\x1b[2J\x1b]0;pwned\x07 HTTP/1.1\r\nHost: h\x1b[31mx\x00.example\r\n"
               "\r\n").encode()
    frames = _frames_of(_udp(traffic.dns_query(1, HOSTILE, 1)),
                        _udp(traffic.dns_query(2, long_name, 1), sport=50002),
                        _tcp(request, dport=80), _tcp(hello))
    path = tmp_path / "hostile.pcap"
    write_capture(path, frames, linktype=LINKTYPE_ETHERNET)
    summary = summarize(path)
    data = json.dumps(summary.as_json())
    names = [n for n, _ in summary.dns.top + summary.tls.top + summary.http_hosts.top]
    names += [r.request for r in summary.http_requests.top]
    assert len(names) == 5
    for name in names:
        assert name.isascii() and name.isprintable(), name
        assert len(name) <= 200
    assert r"evil\x1b[31m.\x07bell\x00.rtl\xe2\x80\xaehidden.com" in names
    assert any(name.endswith("...") and name.startswith("a" * 63) for name in names)
    assert r"GET /\x1b[2J\x1b]0;pwned\x07 HTTP/1.1" in names
    assert "\\u001b" not in data and "\x1b" not in data
    text = render_text(summary)
    _check_text_shape(text)
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text


def test_a_client_hello_split_over_segments_is_put_together(tmp_path):
    hello = traffic.client_hello("split.example.com", random.Random(2), bytes(32))
    cut = 60    # inside the ClientHello, before its extensions
    frames = _frames_of(_tcp(hello[:cut], seq=5000),
                        _tcp(hello[:cut], seq=5000),              # a retransmission
                        _tcp(hello[cut:], seq=5000 + cut))
    path = tmp_path / "split.pcap"
    write_capture(path, frames, linktype=LINKTYPE_ETHERNET)
    assert summarize(path).tls.top == (("split.example.com", 1),)


def test_server_name_reads_only_what_is_there():
    hello = traffic.client_hello("Www.Example.COM", random.Random(3), bytes(32))
    assert server_name(hello) == "www.example.com"
    assert server_name(hello[:70]) is None
    assert server_name(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00") is None   # not a hello


def _dns_header(questions: int) -> bytes:
    return struct.pack(">HHHHHH", 7, 0x0100, questions, 0, 0, 0)


def test_dns_question_names_read_what_is_there():
    assert dns_question_names(traffic.dns_query(1, "Www.Example.COM", 1)) == ["www.example.com"]
    two = _dns_header(2) + b"\x01a\x02bc\x00\x00\x01\x00\x01" + b"\x01d\xc0\x0c\x00\x1c\x00\x01"
    assert dns_question_names(two) == ["a.bc", "d.a.bc"]     # the second points at the first
    raw = _dns_header(1) + b"\x03a\xffb\x04c.d\x07\x00\x00\x01\x00\x01"
    assert dns_question_names(raw) == [r"a\xffb.c.d\x07"]   # bytes, not text, escaped
    query = traffic.dns_query(1, "cut.example", 1)
    for end in range(len(query) - 1):      # cut anywhere before the question ends: no name
        assert dns_question_names(query[:end]) == []


@pytest.mark.parametrize("name", [
    b"\xc0\x0c",                   # points at itself
    b"\x01a\xc0\x0c",               # points back at its own start: a loop
    b"\x01a\xc0\x20",               # points forward
    b"\x41" + b"a" * 65 + b"\x00",   # a reserved label kind (01)
    b"\x81" + b"a" * 2 + b"\x00",    # a reserved label kind (10)
    b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63
    + b"\x00",                      # 256 bytes: longer than a name may be
])
def test_dns_question_names_refuse_malformed_names(name):
    assert dns_question_names(_dns_header(1) + name + b"\x00\x01\x00\x01") == []


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_dns_question_names_take_any_bytes(message):
    for name in dns_question_names(message):
        assert name.isascii() and name.isprintable()


def test_dns_question_names_agree_with_scapy():
    from scapy.layers.dns import DNS, DNSQR

    for qname in ("a.example.com", "X-Y.example", "\u00e9t\u00e9.example"):
        wire = bytes(DNS(id=3, rd=1, qd=DNSQR(qname=qname)))
        assert dns_question_names(wire) == [
            DNS(wire).qd[0].qname.rstrip(b".").lower().decode("ascii", "backslashreplace")]


def test_http_request_reads_the_line_and_the_host():
    assert http_request(b"GET /a?b=c HTTP/1.1\r\nAccept: */*\r\nhOST:  Www.Example.com \r\n"
                        b"\r\nHost: body.example") == ("GET /a?b=c HTTP/1.1", "www.example.com")
    assert http_request(b"POST /x HTTP/1.0\r\nContent-Length: 900\r\n\r\n{") == (
        "POST /x HTTP/1.0", None)
    assert http_request(b"GET / HTTP/1.1\nHost: bare-newlines.example\n\n") == (
        "GET / HTTP/1.1", "bare-newlines.example")
    assert http_request(b"GET /cut-before-the-host") == ("GET /cut-before-the-host", None)
    assert http_request(b"HTTP/1.1 200 OK\r\n\r\n") is None


def test_each_kind_of_name_has_its_own_budget():
    reader = NameReader(limit=2)
    hello = traffic.client_hello("tls.example", random.Random(1), bytes(32))
    packets = [_udp(traffic.dns_query(n, f"n{n}.example", 1), sport=40000 + n)
               for n in range(5)]
    packets += [_tcp(hello, sport=41000 + n) for n in range(3)]
    packets += [_tcp(b"GET / HTTP/1.1\r\nHost: h%d\r\n\r\n" % n, sport=42000 + n, dport=80)
                for n in range(3)]
    wanted = []
    for _ts, frame in _frames_of(*packets):
        packet = decode_packet(LINKTYPE_ETHERNET, memoryview(frame))
        wanted.append(reader.examine(packet, memoryview(frame)))
    assert wanted == [True] * 10 + [False]   # until every kind is full
    names = reader.names()
    assert (names.dns.distinct, names.tls.top, names.http_hosts.distinct) \
        == (2, (("tls.example", 2),), 2)
    assert names.capped == ("DNS", "HTTP", "TLS")


def test_tls_alone_needs_no_scapy(tmp_path):
    hello = traffic.client_hello("tls-only.example", random.Random(4), bytes(32))
    path = tmp_path / "tls.pcap"
    write_capture(path, _frames_of(_tcp(hello)), linktype=LINKTYPE_ETHERNET)
    code = ("import sys; from srp.summary import summarize; "
            f"s = summarize({str(path)!r}); "
            "print(s.tls.top[0][0], 'scapy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["tls-only.example", "False"]


# --- robustness ------------------------------------------------------------------------------

def _ethernet(ethertype: int) -> bytes:
    return bytes(12) + struct.pack("!H", ethertype)


PREFIXES = [b"", _ethernet(0x0800) + b"\x45", _ethernet(0x0800) + b"\x46\x00\x00\x30",
            _ethernet(0x86DD) + b"\x60", _ethernet(0x8100) + b"\x00\x01\x86\xdd\x60",
            _ethernet(0x8864) + b"\x11\x00\x00\x01\x00\x40\x00\x21",
            _ethernet(0x8847) + b"\x00\x01\x00\x40\x00\x01\x01\x40\x45"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linktype=st.sampled_from([0, 1, 12, 101, 108, 113, 228, 229, 276, 147]),
       prefix=st.sampled_from(PREFIXES), tail=st.binary(max_size=90))
def test_hostile_headers_never_break_the_pass(linktype, prefix, tail):
    data = memoryview(prefix + tail)
    packet = decode_packet(linktype, data)
    if packet is not None:
        assert 0 <= packet.payload_start <= packet.payload_end <= len(data)
    reader = NameReader()
    header_pass = HeaderPass(examine=reader.examine)

    class Interface:
        pass

    interface = Interface()
    interface.linktype = linktype
    header_pass.add([(1, 0, len(data), data, None)] * 3, [interface])
    assert header_pass.packets == 3
    reader.names()
    server_name(bytes(data))


def test_past_the_tracking_limit_packets_are_still_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(HeaderPass, "max_tracked", 6)
    sessions = [_session(f"s{n}.example", number=n, start_ns=START_NS + n * 10**8)
                for n in range(4)]
    summary = summarize(_write(tmp_path / "s.pcap", sessions))
    tracked = sum(c.packets for c in summary.conversations)
    assert summary.packets == _expected(sessions)["packets"] > tracked
    untracked = summary.packets - tracked
    assert summary.protocols["not tracked"] == untracked
    assert any("too many conversations" in w and f"{untracked} packets" in w
               for w in summary.warnings)


# --- the text --------------------------------------------------------------------------------

def _check_text_shape(text: str) -> None:
    lines = text.split("\n")
    assert len(lines) <= MAX_LINES, text
    # Only the capture's path may be longer: it is never cut.
    assert all(len(line) <= WIDTH for line in lines if not line.startswith("capture:")), text
    assert set(text) <= set(string.printable) - set("\t\r\x0b\x0c"), text


def test_everything_at_once_still_fits(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 9)
    deep.mkdir(parents=True)
    sessions = [_session(f"{'x' * 40}-{n}.example.com", number=n, ipv6=n % 2 == 1,
                         start_ns=START_NS + n * 10**8) for n in range(30)]
    summary = summarize(_write(deep / "capture.pcap", sessions))
    text = render_text(
        summary, heading=["srp-pcap netmon: PARTIAL: " + "a long reason " * 12],
        details=["sessions: 40 found, 30 downloaded, 10 failed"],
        errors=[f"session {n}: the appliance answered 503 " * 3 for n in range(10)],
        warnings=[f"session {n}: truncated record at byte offset {n}" for n in range(12)])
    _check_text_shape(text)
    lines = text.split("\n")
    assert lines[0].startswith("srp-pcap netmon: PARTIAL:")
    assert "".join(line[10:] for line in lines if line.startswith(("capture:", " " * 10))
                   ).startswith(str(deep)[:60])
    assert any(line.startswith("sha256:   ") for line in lines)
    assert "errors:" in lines and "warnings:" in lines
    assert any("more (the JSON output has all)" in line for line in lines)


def test_the_text_without_a_capture_is_the_heading_and_problems():
    text = render_text(None, heading=["srp-pcap netmon: NO-DATA: nothing matched"],
                       details=["sessions: 0 found, 0 downloaded, 0 failed"],
                       warnings=["the search was cut at 500 sessions"])
    assert text.split("\n") == ["srp-pcap netmon: NO-DATA: nothing matched",
                                "sessions: 0 found, 0 downloaded, 0 failed", "warnings:",
                                "  - the search was cut at 500 sessions"]


# --- damage and the command line ---------------------------------------------------------------

def test_a_damaged_capture_still_summarizes_with_a_warning(tmp_path):
    sessions = [_session("www.example.com")]
    path = tmp_path / "damaged.pcap"
    linktype, _ = LINKS["ethernet"]
    written = write_capture(path, sessions[0].frames(), linktype=linktype)
    with open(path, "r+b") as file:
        file.truncate(written.mid_last_record)
    done = run_srp("summary", path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"packets:  {written.packets - 1}," in done.stdout
    words = " ".join(done.stdout.split())   # the warning may wrap
    assert "warnings: - " in words and "truncated record at byte offset" in words
    _check_text_shape(done.stdout.rstrip("\n"))


def test_an_empty_capture_is_summarized(tmp_path):
    path = tmp_path / "empty.pcap"
    write_capture(path, [], linktype=LINKTYPE_ETHERNET)
    done = run_srp("summary", path)
    assert done.returncode == 0 and done.stderr == ""
    assert "packets:  0\ntraffic:  no packets\nconversations: none\nnames:    none found" \
        in done.stdout


def test_summary_json_parses(tmp_path):
    path = _write(tmp_path / "one.pcap", [_session("www.example.com")])
    done = run_srp("summary", "--json", path)
    assert done.returncode == 0 and done.stderr == ""
    data = json.loads(done.stdout)
    expected = _expected([_session("www.example.com")])
    assert data["packets"] == expected["packets"] and data["path"] == str(path.resolve())
    assert data["dns"]["top"] == [{"name": "www.example.com", "count": 1}]
    assert data["conversations"]["count"] == 3
    assert len(data["sha256"]) == 64 and data["warnings"] == []


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "directory"])
def test_summary_errors_are_one_line(tmp_path, kind):
    path = not_a_capture(tmp_path, kind)
    done = run_srp("summary", path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("srp-pcap: error: ")
    assert str(path) in done.stderr and "Traceback" not in done.stderr
