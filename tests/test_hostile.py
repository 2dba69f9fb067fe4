"""A broken, compromised or impersonated appliance (issue 17): what it must not make the
plugin do, through the real command line against hostile variants of the simulators over
HTTPS on loopback.

Covered here: redirects (credentials never leave the origin; https never falls back to
http; a redirect within the origin still works), the appliance's words escaped before they
are printed, a session listed many times fetched once, and bodies read with a cap (an
endless error body, a JSON answer past the cap, JSON nested past any depth).
"""

from __future__ import annotations

import datetime as dt
import itertools
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
from conftest import ALARM_DATE, NOW, assert_result_intact, read_packets, run_against, run_srp

from srp.simulators.https import RequestError
from srp.simulators.netmon import (ANSWER_SESSIONS, PCAP_ROUTE, SEARCH_ROUTE, NetMonHandler,
                                   NetMonSimulator, SessionSpec)

KEY = "hostile-key-77a0c3"
QUERY = "hostile.example"
SESSIONS = [SessionSpec(id=f"h{n}", domain=QUERY, payload_packets=2,
                        start=NOW - dt.timedelta(minutes=10 * n)) for n in (1, 2)]


class Listener:
    """A plain-http server on loopback that records every request it gets: where a
    credential would land if it were sent elsewhere."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    found = Listener()
    yield found
    found.close()


def hostile_netmon(respond):
    """A NetMon simulator whose handler answers with `respond(handler)` first: it returns
    True when it answered the request itself."""

    class Handler(NetMonHandler):
        def respond(self):
            if not respond(self):
                super().respond()

    class Simulator(NetMonSimulator):
        handler_class = Handler

    return Simulator(SESSIONS, api_key=KEY)


def searched(tmp_path, answer):
    """A retrieval from a NetMon whose session search `answer(handler)` answers."""
    with hostile_netmon(lambda handler: handler.route == SEARCH_ROUTE and answer(handler)
                        ) as simulator:
        return netmon(simulator, tmp_path)


def redirect(handler, location: str, status: int = 302) -> bool:
    handler.send_response(status)
    handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()
    return True


def netmon(simulator, pcap_dir, *extra):
    return run_against(simulator, "netmon", "--address", simulator.url, "--api-key", KEY,
                       "--query", QUERY, "--alarm-date", ALARM_DATE, "--alarm-id", "8001",
                       "--pcap-dir", str(pcap_dir), *extra)


# --- redirects ---

@pytest.mark.parametrize("route", ["search", "download"])
def test_a_redirect_to_another_origin_is_refused_and_gets_no_credential(listener, tmp_path,
                                                                        route):
    def respond(handler):
        hit = (handler.route == SEARCH_ROUTE if route == "search"
               else PCAP_ROUTE.fullmatch(handler.route) is not None)
        return redirect(handler, f"{listener.url}/steal", 307) if hit else False

    with hostile_netmon(respond) as simulator:
        run = netmon(simulator, tmp_path)
    assert listener.hits == []
    assert run.code == 1, run.err
    reason = run.report["reason"] if route == "search" else run.report["errors"][0]
    assert f"redirected to {listener.url}" in reason
    assert "another origin" in reason and "refused" in reason
    assert KEY not in run.out + run.err


def test_the_legacy_token_never_follows_a_redirect(listener, tmp_path):
    """NetMon 3.x's bare `token` header is one requests would not strip on its own."""

    def respond(handler):
        if handler.headers.get("Authorization") is not None:
            raise RequestError(401, "unsupported authorization scheme")
        if PCAP_ROUTE.fullmatch(handler.route):
            return redirect(handler, f"{listener.url}/api/session/h1/pcap")
        return False

    with hostile_netmon(respond) as simulator:
        run = netmon(simulator, tmp_path)
    assert listener.hits == []
    assert run.code == 1 and run.report["sessions"]["failed"] == 2, run.err


def test_https_never_falls_back_to_http_on_the_same_host(tmp_path):
    def respond(handler):
        if PCAP_ROUTE.fullmatch(handler.route):
            port = handler.server.server_address[1]
            return redirect(handler, f"http://127.0.0.1:{port}{handler.route}")
        return False

    with hostile_netmon(respond) as simulator:
        run = netmon(simulator, tmp_path)
    assert run.code == 1, run.err
    assert "another origin" in run.report["errors"][0]


def test_a_redirect_within_the_origin_is_followed(tmp_path):
    def respond(handler):
        match = PCAP_ROUTE.fullmatch(handler.route)
        if match and not handler.path.endswith("?moved=1"):
            return redirect(handler, f"{handler.route}?moved=1")
        return False

    with hostile_netmon(respond) as simulator:
        run = netmon(simulator, tmp_path)
        expected = sorted(p for s in SESSIONS
                          for p in read_packets(simulator.capture_path(s.id)))
    assert run.code == 0, run.err
    assert sorted(read_packets(run.report["pcap"])) == expected


# --- the appliance's words ---

def test_the_appliances_words_are_escaped_before_they_are_printed(tmp_path):
    words = "bad \u202equery\u202c \x85 here \x9b31m \x1b[31m red"
    run = searched(tmp_path, lambda handler: handler.send_json(400, {"error": words}) or True)
    assert run.code == 1
    for text in (run.out, run.err):
        assert not {"\u202e", "\x85", "\x9b", "\x1b"} & set(text)
    assert "\\u202equery\\u202c" in run.report["reason"]
    assert "\\x9b31m" in run.report["reason"]


# --- a session listed many times ---

def test_a_session_listed_many_times_is_fetched_once(tmp_path):
    class Handler(NetMonHandler):
        def send_json(self, status, document, headers=None):
            if isinstance(document, dict) and ANSWER_SESSIONS in document:
                document = {**document,
                            ANSWER_SESSIONS: document[ANSWER_SESSIONS] * 3}
            super().send_json(status, document, headers)

    class Simulator(NetMonSimulator):
        handler_class = Handler

    with Simulator(SESSIONS, api_key=KEY) as simulator:
        run = netmon(simulator, tmp_path)
        expected = sorted(p for s in SESSIONS
                          for p in read_packets(simulator.capture_path(s.id)))
    assert run.code == 0, run.err
    gets = [unquote(r.path) for r in run.requests if r.method == "GET"]
    assert sorted(gets) == ["/api/session/h1/pcap", "/api/session/h2/pcap"]
    assert sorted(read_packets(run.report["pcap"])) == expected
    assert any("more than once (4 repeats)" in w for w in run.report["warnings"])


# --- bodies read with a cap ---

def endless(handler, status: int, first: bytes, filler: bytes) -> bool:
    """Answer `status` with a chunked body that never ends (until the client hangs up)."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.sent = 0
    try:
        for chunk in itertools.chain([first], itertools.repeat(filler)):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.sent += len(chunk)
            if handler.sent > 512 * 1024 * 1024:      # a client that reads it all
                break
    except OSError:
        pass
    handler.close_connection = True
    return True


def test_an_endless_error_body_is_quoted_not_read(tmp_path):
    run = searched(tmp_path, lambda handler: endless(
        handler, 500, b'{"error": "the index is on fire"' + b" " * 100, b" " * 65536))
    assert run.code == 1, run.err
    assert "HTTP 500 Internal Server Error: {\"error\": \"the index is on fire\"" in \
        run.report["reason"]
    assert run.seconds < 30


def test_a_json_answer_past_the_cap_is_refused(tmp_path):
    run = searched(tmp_path, lambda handler: endless(
        handler, 200, b'{"total": 1, "sessions": [',
        b'{"id": "padding", "captured": false},' * 2000))
    assert run.code == 1, run.err
    assert "the answer is larger than 32 MiB" in run.report["reason"]
    assert "internal error" not in run.report["reason"]


def test_json_nested_past_any_depth_is_the_server_talking(tmp_path):
    run = searched(tmp_path, lambda handler: handler.send_bytes(
        200, b"[" * 200_000 + b"]" * 200_000, "application/json") or True)
    assert run.code == 1, run.err
    assert run.report["reason"].startswith("NetMon session search: the answer is not the "
                                           "session list this tool expects: [[[[")
    assert "internal error" not in run.report["reason"]


# --- one bad input is one session's failure ---

def corrupt_7z(capture, workdir) -> bytes:
    """A 7z of `capture` whose compressed stream is damaged (its header, at the end, is
    intact): the decompressor itself fails."""
    import py7zr

    archive = workdir / "damaged.7z"
    with py7zr.SevenZipFile(archive, "w") as seven:
        seven.write(capture, "session.pcap")
    data = bytearray(archive.read_bytes())
    for offset in range(40, 40 + 64):           # inside the packed stream, after the start
        data[offset] ^= 0x5A
    return bytes(data)


def test_a_damaged_7z_stream_fails_its_session_and_the_rest_merge(tmp_path):
    bad = {}

    def respond(handler):
        if PCAP_ROUTE.fullmatch(handler.route) and handler.route.endswith("/h1/pcap"):
            handler.send_bytes(200, bad["h1"], "application/x-7z-compressed")
            return True
        return False

    with hostile_netmon(respond) as simulator:
        bad["h1"] = corrupt_7z(simulator.capture_path("h1"), tmp_path)
        run = netmon(simulator, tmp_path / "pcaps")
        expected = sorted(read_packets(simulator.capture_path("h2")))
    assert run.code == 4, run.err
    (error,) = run.report["errors"]
    assert error.startswith("session h1: damaged 7z archive")
    assert "internal error" not in run.out + run.err
    assert sorted(read_packets(run.report["pcap"])) == expected


def far_future_pcapng(seconds: int) -> bytes:
    """A pcapng of one Ethernet frame stamped `seconds` after 1970 in whole-second units
    (if_tsresol 0): 64-bit stamps can name times no calendar date holds."""
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    options = struct.pack("<HHB3x", 9, 1, 0) + struct.pack("<HH", 0, 0)
    idb = struct.pack("<IIHHI", 1, 20 + len(options), 1, 0, 65535) + options + \
        struct.pack("<I", 20 + len(options))
    frame = bytes(12) + b"\x08\x00" + bytes(46)
    epb_length = 32 + len(frame)
    epb = struct.pack("<IIIIIII", 6, epb_length, 0, seconds >> 32, seconds & 0xFFFFFFFF,
                      len(frame), len(frame)) + frame + struct.pack("<I", epb_length)
    return shb + idb + epb


def test_a_packet_time_past_year_9999_leaves_a_result_not_a_crash(tmp_path):
    def respond(handler):
        if PCAP_ROUTE.fullmatch(handler.route) and handler.route.endswith("/h1/pcap"):
            handler.send_bytes(200, far_future_pcapng(10 ** 12), "application/octet-stream")
            return True
        return False

    with hostile_netmon(respond) as simulator:
        run = netmon(simulator, tmp_path)
    assert run.code == 0, run.err
    assert run.report["last"] is None and run.report["first"] is not None
    assert_result_intact(run, tmp_path)
    (tmp_path / "far.pcapng").write_bytes(far_future_pcapng(10 ** 12))
    summary = run_srp("summary", tmp_path / "far.pcapng")
    assert summary.returncode == 0, summary.stderr
    assert "a time out of range" in summary.stdout
