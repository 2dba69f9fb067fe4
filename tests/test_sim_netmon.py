"""The NetMon simulator over real HTTPS on loopback: certificate, auth, the assumed search
contract (paging, time window, the Lucene subset), the session archives and what they hold,
every fault, the request log, and `simulate netmon` run as a user runs it.

REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE may be set here and would override Session.verify: every
request passes verify= itself.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import py7zr
import pytest
import requests
from click.testing import CliRunner
from conftest import NOW, simulator_serving

from srp.capture import open_capture
from srp.simulators.capfile import LINKTYPE_RAW, PCAP_NS, PCAPNG
from srp.simulators.cli import simulate
from srp.simulators.faults import Fault
from srp.simulators.https import MASK
from srp.simulators.netmon import (
    FAULTS,
    SEARCH_ROUTE,
    NetMonSimulator,
    SessionSpec,
    default_sessions,
    format_rfc3339,
    parse_rfc3339,
)
from srp.simulators.traffic import Conversation

ODD_DOMAIN = "odd (1) * OR x.example"
QUOTE_DOMAIN = 'q"uo\\te.example'
PAGE = 5
CONTRACT_FIELDS = {"id", "captured", "start", "end", "srcIp", "srcPort", "dstIp", "dstPort",
                   "protocol", "application", "bytes", "packets"}
SEVEN_ZIP_MAGIC = bytes.fromhex("377abcaf271c")


def _special(session_id: str, minutes_ago: float, **fields) -> SessionSpec:
    return SessionSpec(id=session_id, start=NOW - dt.timedelta(minutes=minutes_ago),
                       **{"domain": "special.example", **fields})


SPECIAL_SESSIONS = [
    _special("odd", 30, domain=ODD_DOMAIN),
    _special("quote", 29, domain=QUOTE_DOMAIN),
    _special("pcapng", 28, flavour=PCAPNG),
    _special("nanosecond", 27, flavour=PCAP_NS),
    _special("raw-ip", 26, linktype=LINKTYPE_RAW),
    _special("bare", 25, archived=False),
    _special("hostile-member", 24, member_name="../../escaped.pcap"),
    _special("big", 23, payload_packets=120),
    _special("v6", 22, client_ip="2001:db8::10", server_ip="2001:db8:1::10"),
    _special("slash/id", 21),
    _special("later", -600),   # ten hours after NOW: outside any window near NOW
]


@pytest.fixture(scope="module")
def netmon():
    with NetMonSimulator(default_sessions(now=NOW) + SPECIAL_SESSIONS, api_key="the-key",
                         max_page_size=PAGE) as simulator:
        yield simulator


def bearer(simulator) -> dict:
    return {"Authorization": f"Bearer {simulator.api_key}"}


def search(simulator, query: str, headers: dict | None = None, **fields) -> requests.Response:
    body = {"query": query, **fields}
    return requests.post(simulator.url + SEARCH_ROUTE, json=body, timeout=20,
                         headers=bearer(simulator) if headers is None else headers,
                         verify=str(simulator.ca_bundle))


def pcap_url(simulator, session_id: str) -> str:
    return f"{simulator.url}/api/session/{requests.utils.quote(session_id, safe='')}/pcap"


def download(simulator, session_id: str, **kwargs) -> requests.Response:
    kwargs.setdefault("headers", bearer(simulator))
    return requests.get(pcap_url(simulator, session_id), timeout=20,
                        verify=str(simulator.ca_bundle), **kwargs)


def found_ids(simulator, query: str, **fields) -> list[str]:
    """Every session id the search finds, paging to the end."""
    ids, offset = [], 0
    while True:
        answer = search(simulator, query, offset=offset, limit=100, **fields)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        ids += [session["id"] for session in page["sessions"]]
        offset += len(page["sessions"])
        if offset >= page["total"] or not page["sessions"]:
            assert len(ids) == page["total"]
            return ids


def unpack(archive: bytes, directory: Path) -> Path:
    """The single capture a session archive holds, extracted into `directory`."""
    with py7zr.SevenZipFile(io.BytesIO(archive)) as seven_zip:
        names = seven_zip.getnames()
        assert len(names) == 1
        seven_zip.extractall(path=directory)
    return directory / names[0]


def read_records(path: Path):
    reader = open_capture(path)
    records = []
    while (batch := reader.read_batch(1 << 16)) is not None:
        records += [(ts, origlen, bytes(data)) for ts, _, origlen, data, _ in batch]
    return reader, records


# --- HTTPS and the certificate ---

def test_certificate_is_trusted_for_every_loopback_name(netmon):
    for host in ("127.0.0.1", "localhost"):
        answer = requests.post(f"https://{host}:{netmon.port}{SEARCH_ROUTE}", timeout=10,
                               json={"query": "*"}, headers=bearer(netmon),
                               verify=str(netmon.ca_bundle))
        assert answer.status_code == 200
    assert netmon.url == f"https://127.0.0.1:{netmon.port}"
    assert netmon.key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert b"PRIVATE" not in netmon.ca_bundle.read_bytes()
    assert os.stat(netmon.key_file).st_mode & 0o077 == 0


def test_a_client_that_does_not_trust_the_certificate_is_refused(netmon, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(Path(requests.certs.where()).read_bytes())
    with pytest.raises(requests.exceptions.SSLError):
        search_url = netmon.url + SEARCH_ROUTE
        requests.post(search_url, json={"query": "*"}, verify=str(other), timeout=10)


# --- Authentication ---

def test_bearer_and_legacy_token_headers_are_both_accepted(netmon):
    assert search(netmon, "*").status_code == 200
    assert search(netmon, "*", headers={"token": netmon.api_key}).status_code == 200
    assert search(netmon, "*", headers={"Authorization": f"bearer {netmon.api_key}"}
                  ).status_code == 200


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-key"}, {"token": "wrong-key"},
    {"Authorization": "Basic dGhlLWtleQ=="}, {"Authorization": "the-key"},
])
def test_missing_or_wrong_credentials_get_401_json_without_the_key(netmon, headers):
    answer = search(netmon, "*", headers=headers)
    assert answer.status_code == 401
    assert set(answer.json()) == {"error"}
    assert "wrong-key" not in answer.text and netmon.api_key not in answer.text
    assert download(netmon, netmon.sessions[0].spec.id, headers=headers).status_code == 401


def test_the_request_log_masks_credentials(netmon):
    search(netmon, "*", headers={"token": netmon.api_key})
    search(netmon, "*")
    logged = netmon.requests[-2:]
    assert logged[0].headers["token"] == MASK
    assert logged[1].headers["Authorization"] == MASK
    assert all(netmon.api_key not in str(entry.headers) for entry in netmon.requests)
    assert logged[1].json()["query"] == "*" and logged[1].status == 200


# --- The search contract ---

def test_search_pages_through_every_session_in_time_order(netmon):
    first = search(netmon, "*", limit=100).json()
    assert first["total"] == len(netmon.sessions)
    assert len(first["sessions"]) == PAGE   # the appliance caps the page, whatever is asked
    pages = [search(netmon, "*", offset=offset, limit=3).json()
             for offset in range(0, first["total"], 3)]
    sessions = [session for page in pages for session in page["sessions"]]
    assert all(page["total"] == first["total"] for page in pages)
    assert [session["id"] for session in sessions] == [s.spec.id for s in netmon.sessions]
    assert [session["start"] for session in sessions] == sorted(s["start"] for s in sessions)
    past_the_end = search(netmon, "*", offset=first["total"]).json()
    assert past_the_end == {"total": first["total"], "sessions": []}


def test_answer_fields_are_exactly_the_contract(netmon):
    for session in search(netmon, "*").json()["sessions"]:
        assert set(session) == CONTRACT_FIELDS
        assert isinstance(session["captured"], bool)
        assert all(isinstance(session[name], int) and not isinstance(session[name], bool)
                   for name in ("srcPort", "dstPort", "bytes", "packets"))
        assert parse_rfc3339(session["start"]) <= parse_rfc3339(session["end"])
        assert session["start"].endswith("Z")


def test_default_catalogue_has_three_domains_and_two_sessions_not_captured():
    specs = default_sessions(now=NOW)
    assert len(specs) == 12 and len({spec.domain for spec in specs}) == 3
    assert sum(not spec.captured for spec in specs) == 2
    assert all(NOW - dt.timedelta(hours=1) <= spec.start < NOW for spec in specs)
    assert default_sessions(now=NOW) == specs   # deterministic


def test_time_window_keeps_the_sessions_that_overlap_it(netmon):
    window_from, window_to = NOW - dt.timedelta(minutes=40), NOW - dt.timedelta(minutes=25)
    low, high = (parse_rfc3339(moment.isoformat()) for moment in (window_from, window_to))
    expected = [s.spec.id for s in netmon.sessions if s.end_ns >= low and s.start_ns <= high]
    assert 0 < len(expected) < len(netmon.sessions)
    found = found_ids(netmon, "*", **{"from": window_from.isoformat().replace("+00:00", "Z"),
                                      "to": window_to.isoformat()})
    assert found == expected
    assert found_ids(netmon, "*", **{"from": format_rfc3339(high)})[-1] == "later"
    assert "later" not in found_ids(netmon, "*", to=format_rfc3339(high))


@pytest.mark.parametrize("fields, complaint", [
    ({"from": "2024-05-01 12:00"}, "from"),
    ({"from": "2024-05-01T12:00:00"}, "from"),                   # no offset: not RFC 3339
    ({"to": 1714564800}, "to"),
    ({"from": "2024-05-01T12:00:00Z", "to": "2024-05-01T11:00:00Z"}, "after"),
    ({"offset": -1}, "offset"),
    ({"limit": 0}, "limit"),
    ({"limit": True}, "limit"),
    ({"query": ""}, "query"),
])
def test_bad_search_bodies_get_400(netmon, fields, complaint):
    fields = dict(fields)
    answer = search(netmon, fields.pop("query", "*"), **fields)
    assert answer.status_code == 400
    assert complaint in answer.json()["error"]


def test_a_body_that_is_not_json_gets_400(netmon):
    answer = requests.post(netmon.url + SEARCH_ROUTE, data=b"{not json", headers=bearer(netmon),
                           verify=str(netmon.ca_bundle), timeout=10)
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]


def test_unknown_routes_and_methods(netmon):
    assert requests.get(netmon.url + "/api/nothing", headers=bearer(netmon), timeout=10,
                        verify=str(netmon.ca_bundle)).status_code == 404
    wrong_method = requests.get(netmon.url + SEARCH_ROUTE, headers=bearer(netmon), timeout=10,
                                verify=str(netmon.ca_bundle))
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert download(netmon, "no-such-session").status_code == 404


# --- The Lucene subset: escaped literals match literally, unescaped syntax does not ---

@pytest.mark.parametrize("query, expected", [
    (r"odd\ \(1\)\ \*\ OR\ x.example", ["odd"]),           # escaped: a literal
    ('"odd (1) * OR x.example"', ["odd"]),                 # phrase: a literal
    ('"* OR x"', ["odd"]),                                 # contained literally
    (r"\*\ OR\ x", ["odd"]),
    (r'"q\"uo\\te.example"', ["quote"]),                   # phrase escapes \" and \\
    (r"q\"uo\\te.example", ["quote"]),
    ("ODD*", ["odd"]),                                     # wildcard, case-insensitive
    ("host:special.example AND captured:true AND srcip:10.1.0.10",
     ["pcapng", "nanosecond", "raw-ip", "bare", "hostile-member", "big", "slash/id", "later"]),
    ("host:\"q\\\"uo\" OR host:odd", ["odd", "quote"]),
    ("(host:odd OR host:nowhere) AND application:http", ["odd"]),
    ("destip:2001\\:db8\\:1\\:\\:10", ["v6"]),
    ("nowhere.example", []),
    ("unknownfield:odd", []),
])
def test_query_matching(netmon, query, expected):
    assert sorted(found_ids(netmon, query)) == sorted(expected)


def test_an_unescaped_hostile_value_matches_everything(netmon):
    assert found_ids(netmon, "* OR x") == [session.spec.id for session in netmon.sessions]


def test_captured_field_selects_the_sessions_with_packets(netmon):
    not_captured = found_ids(netmon, "captured:false")
    assert len(not_captured) == 2
    assert not_captured == [s.spec.id for s in netmon.sessions if not s.spec.captured]


@pytest.mark.parametrize("query", [
    '"unclosed', "(a OR b", "a OR b)", "a AND", "OR a", "()", "trailing\\", 'in"side',
    "a:b:c", ":a", "a:", "-a", "NOT a", "a^2", "a~", "[a TO b]", "a/b", "!a",
])
def test_unparsable_queries_get_400(netmon, query):
    answer = search(netmon, query)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("cannot parse query")


# --- Session archives and the captures inside ---

def test_archive_holds_a_capture_with_the_announced_packets(netmon, tmp_path):
    from scapy.layers.dns import DNS
    from scapy.layers.http import HTTPRequest
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    session = next(s for s in netmon.sessions if s.spec.captured)
    answer = download(netmon, session.spec.id)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/x-7z-compressed"
    assert answer.content.startswith(SEVEN_ZIP_MAGIC)
    capture = unpack(answer.content, tmp_path)
    reader, records = read_records(capture)
    meta = session.answer()
    assert reader.damage is None
    assert len(records) == meta["packets"]
    assert sum(origlen for _, origlen, _ in records) == meta["bytes"]
    assert records[0][0] == session.start_ns // 1000 * 1000   # microsecond pcap
    assert capture.read_bytes() == netmon.capture_path(session.spec.id).read_bytes()

    packets = rdpcap(str(capture))
    domain = session.spec.domain.encode()
    assert any(p.haslayer(TCP) and p[TCP].flags == "S" for p in packets)
    assert any(p.haslayer(TCP) and p[TCP].flags == "FA" for p in packets)
    assert [p[HTTPRequest].Host for p in packets if p.haslayer(HTTPRequest)] == [domain]
    assert {p[DNS].qd[0].qname for p in packets if p.haslayer(DNS)} == {domain + b"."}
    hellos = [bytes(p[TCP].payload) for p in packets
              if p.haslayer(TCP) and p[TCP].dport == 443 and bytes(p[TCP].payload)[:1] == b"\x16"]
    assert len(hellos) == 1
    server_name = (struct.pack(">HHHBH", 0, len(domain) + 5, len(domain) + 3, 0, len(domain))
                   + domain)
    assert server_name in hellos[0]


@pytest.mark.parametrize("session_id, format_name, linktype, ns_units", [
    ("pcapng", "pcapng", 1, 1_000_000),
    ("nanosecond", "pcap", 1, 1_000_000_000),
    ("raw-ip", "pcap", LINKTYPE_RAW, 1_000_000),
    ("v6", "pcap", 1, 1_000_000),
])
def test_capture_flavours(netmon, tmp_path, session_id, format_name, linktype, ns_units):
    reader, records = read_records(unpack(download(netmon, session_id).content, tmp_path))
    interface = reader.interfaces[0]
    assert (reader.format_name, interface.linktype, interface.ts_units) == (
        format_name, linktype, ns_units)
    assert len(records) == netmon.session(session_id).summary.packets
    if session_id == "nanosecond":
        assert records[0][0] == netmon.session(session_id).start_ns


def test_a_session_not_archived_is_a_bare_capture_labelled_as_7z(netmon):
    answer = download(netmon, "bare")
    assert answer.headers["Content-Type"] == "application/x-7z-compressed"
    assert answer.content[:4] == bytes.fromhex("d4c3b2a1")


def test_member_names_come_from_the_catalogue(netmon):
    answer = download(netmon, "hostile-member")
    with py7zr.SevenZipFile(io.BytesIO(answer.content)) as seven_zip:
        assert seven_zip.getnames() == ["../../escaped.pcap"]
    with py7zr.SevenZipFile(io.BytesIO(download(netmon, "slash/id").content)) as seven_zip:
        assert seven_zip.getnames() == ["slash/id.pcap"]


def test_not_captured_sessions_answer_404_and_are_logged(netmon):
    missing = next(s.spec.id for s in netmon.sessions if not s.spec.captured)
    answer = download(netmon, missing)
    assert answer.status_code == 404 and "error" in answer.json()
    assert netmon.uncaptured_requests == [missing]


def test_concurrent_first_downloads_of_one_session_get_the_same_bytes():
    with NetMonSimulator(default_sessions(2, now=NOW)) as simulator:
        session_id = simulator.sessions[0].spec.id
        with ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda _: download(simulator, session_id).content, range(8)))
        assert len(set(bodies)) == 1 and bodies[0].startswith(SEVEN_ZIP_MAGIC)
        store = simulator.store.directory
    assert not store.exists()   # the cache goes with the simulator


def test_traffic_is_deterministic_and_its_summary_exact(tmp_path):
    conversation = Conversation("a.example", 1_714_564_800_000_000_000, payload_packets=3,
                                seed=7)
    written = conversation.write(tmp_path / "one.pcap")
    conversation.write(tmp_path / "two.pcap")
    assert (tmp_path / "one.pcap").read_bytes() == (tmp_path / "two.pcap").read_bytes()
    frames = list(conversation.frames())
    summary = conversation.summary()
    assert summary.packets == written.packets == len(frames)
    assert summary.wire_bytes == sum(len(frame) for _, frame in frames)
    assert (summary.first_ns, summary.last_ns) == (frames[0][0], frames[-1][0])
    assert [ts for ts, _ in frames] == sorted(ts for ts, _ in frames)
    other = Conversation("a.example", 1_714_564_800_000_000_000, payload_packets=3, seed=8)
    assert list(other.frames()) != frames


# --- Faults ---

def test_503_burst_with_retry_after_then_recovery(netmon):
    netmon.set_faults(Fault("503", first=2, retry_after=7))
    answers = [search(netmon, "*") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert "error" in answers[0].json()


def test_reset_breaks_the_download_midway(netmon):
    session_id = "big"
    netmon.set_faults(Fault("reset", after_bytes=4000))
    received = bytearray()
    with pytest.raises((requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ConnectionError)):
        with download(netmon, session_id, stream=True) as answer:
            announced = int(answer.headers["Content-Length"])
            for chunk in answer.iter_content(1024):
                received += chunk
    assert len(received) <= 4000 < announced
    netmon.clear_faults()
    assert len(download(netmon, session_id).content) == announced


def test_401_fault_rejects_the_right_key(netmon):
    netmon.set_faults("401")
    assert search(netmon, "*").status_code == 401
    assert download(netmon, "pcapng").status_code == 401


def test_html_page_instead_of_json_or_capture(netmon):
    netmon.set_faults("html")
    for answer in (search(netmon, "*"), download(netmon, "pcapng")):
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/html")
        assert answer.content.startswith(b"<!DOCTYPE html>")


def test_faults_can_be_limited_to_sessions(netmon):
    netmon.set_faults(Fault("html", sessions={"pcapng"}))
    assert search(netmon, "*").headers["Content-Type"] == "application/json"
    assert download(netmon, "pcapng").content.startswith(b"<!DOCTYPE html>")
    assert download(netmon, "raw-ip").content.startswith(SEVEN_ZIP_MAGIC)


def test_truncated_archive_holds_a_capture_cut_mid_record(netmon, tmp_path):
    netmon.set_faults(Fault("truncated", sessions={"pcapng"}))
    reader, records = read_records(unpack(download(netmon, "pcapng").content, tmp_path))
    assert reader.damage is not None
    assert len(records) == netmon.session("pcapng").summary.packets - 1
    netmon.clear_faults()
    reader, records = read_records(unpack(download(netmon, "pcapng").content, tmp_path / "whole"))
    assert reader.damage is None


def test_slow_adds_latency_to_the_chosen_requests(netmon):
    netmon.set_faults(Fault("slow", latency_ms=400, sessions={"raw-ip"}))
    started = time.monotonic()
    download(netmon, "pcapng")
    fast = time.monotonic() - started
    started = time.monotonic()
    download(netmon, "raw-ip")
    assert time.monotonic() - started >= 0.4 > fast


def test_not_7z_garbage_is_random_bytes_with_status_200(netmon):
    netmon.set_faults(Fault("not-7z-garbage", first=1))
    answer = download(netmon, "pcapng")
    assert answer.status_code == 200 and len(answer.content) == 4096
    assert not answer.content.startswith(SEVEN_ZIP_MAGIC)
    with pytest.raises(py7zr.exceptions.Bad7zFile):
        py7zr.SevenZipFile(io.BytesIO(answer.content))
    assert download(netmon, "pcapng").content.startswith(SEVEN_ZIP_MAGIC)   # burst of one


# --- `simulate netmon` as a user runs it ---

def test_simulate_netmon_serves_until_ctrl_c(tmp_path):
    with simulator_serving("netmon", "--sessions", "3", "--api-key", "cli-key",
                           "--cert-dir", str(tmp_path)) as served:
        assert (f"--address {served.url} --api-key cli-key --ca-bundle {served.ca_bundle}"
                in served.printed)
        answer = requests.post(served.url + SEARCH_ROUTE, json={"query": "*"}, timeout=10,
                               headers={"token": "cli-key"}, verify=served.ca_bundle)
        assert answer.json()["total"] == 3
    assert Path(served.ca_bundle).parent == tmp_path and Path(served.ca_bundle).exists()


def test_simulate_netmon_help_lists_every_fault():
    help_text = CliRunner().invoke(simulate, ["netmon", "--help"]).output
    assert all(name in help_text for name in FAULTS)
    refused = CliRunner().invoke(simulate, ["netmon", "--fault", "teapot"])
    assert refused.exit_code == 2 and "teapot" in refused.output
