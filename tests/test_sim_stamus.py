"""The Stamus simulator over real HTTPS on loopback: Token auth, alerts_tail (both result
shapes, paging, qfilter, the time window), the filestore_pcap steps (multipart upload with
its refusals, synchronous extract, status, retrieve, one-shot download), the capture it
extracts, every fault, and `simulate stamus` run as a user runs it.

REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE may be set here and would override Session.verify: every
request passes verify= itself.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from conftest import NOW, read_packets, simulator_serving

from srp.simulators.cli import simulate
from srp.simulators.faults import Fault
from srp.simulators.https import MASK
from srp.simulators.stamus import (
    ALERTS_ROUTE,
    FAULTS,
    UPLOAD_ROUTE,
    AlertSpec,
    StamusSimulator,
    default_alerts,
)

SIG = 2029743
HOUR_MS = 3600 * 1000
NOW_MS = int(NOW.timestamp() * 1000)


def _alert(flow_id: int, es_id: str, minutes_before: float, **fields) -> AlertSpec:
    return AlertSpec(signature_id=fields.pop("signature_id", SIG), flow_id=flow_id,
                     es_id=es_id, timestamp=NOW - dt.timedelta(minutes=minutes_before),
                     **fields)


CATALOGUE = [
    _alert(123, "alertA", 50, src_port=50000),
    _alert(1234, "alertB", 40, src_port=50010),
    _alert(1234, "alertB2", 39, src_port=50010),          # a second alert of flow 1234
    _alert(555, "alertC", 30, captured=False, src_port=50020),
    _alert(777, "alertD", 20, signature_id=2013028, host="probe-2", src_port=50030),
    _alert(999, "alertLate", -600, src_port=50040),       # ten hours after NOW
]


@pytest.fixture(scope="module")
def stamus():
    with StamusSimulator(CATALOGUE, token="the-token") as simulator:
        yield simulator


def token(simulator) -> dict:
    return {"Authorization": f"Token {simulator.token}"}


def alerts_tail(simulator, headers=None, **params) -> requests.Response:
    return requests.get(simulator.url + ALERTS_ROUTE, params=params, timeout=20,
                        headers=token(simulator) if headers is None else headers,
                        verify=str(simulator.ca_bundle))


def found(simulator, qfilter: str, **params) -> list[str]:
    answer = alerts_tail(simulator, qfilter=qfilter, from_date=NOW_MS - 2 * HOUR_MS,
                         to_date=NOW_MS, **params)
    assert answer.status_code == 200, answer.text
    return [result["_id"] for result in answer.json()["results"]]


def upload(simulator, document=None, raw: bytes | None = None, **kwargs) -> requests.Response:
    body = raw if raw is not None else json.dumps(document).encode()
    kwargs.setdefault("files", {"file": ("alert.json", body, "application/json")})
    return requests.post(simulator.url + UPLOAD_ROUTE, params={"host": "probe-1"},
                         headers=token(simulator), verify=str(simulator.ca_bundle),
                         timeout=20, **kwargs)


def step(simulator, name: str, action: str, method: str = "GET", **kwargs):
    return requests.request(method, f"{simulator.url}/rest/rules/filestore_pcap/{name}/"
                            f"{action}/", params={"host": "probe-1"}, headers=token(simulator),
                            verify=str(simulator.ca_bundle), timeout=20, **kwargs)


def listed(simulator, es_id: str) -> dict:
    """The alert as alerts_tail answers it."""
    answer = alerts_tail(simulator, from_date=NOW_MS - 2 * HOUR_MS, to_date=NOW_MS,
                         page_size=100)
    return next(result for result in answer.json()["results"] if result["_id"] == es_id)


def extract(simulator, es_id: str) -> requests.Response:
    assert upload(simulator, listed(simulator, es_id)).json() == {"upload": "done",
                                                                  "filename": es_id}
    return step(simulator, es_id, "extract_pcap", "POST")


# --- auth ---

@pytest.mark.parametrize("headers, words", [
    ({}, "not provided"), ({"Authorization": "Token wrong"}, "Invalid token"),
    ({"Authorization": "Bearer the-token"}, "not provided"),
])
def test_token_auth_refuses_with_drf_words(stamus, headers, words):
    answer = alerts_tail(stamus, headers=headers)
    assert answer.status_code == 401 and words in answer.json()["detail"]
    assert "the-token" not in answer.text
    assert alerts_tail(stamus, headers={"Authorization": "token the-token"}).status_code == 200


def test_the_request_log_masks_the_token(stamus):
    alerts_tail(stamus)
    assert stamus.requests[-1].headers["Authorization"] == MASK
    assert all("the-token" not in json.dumps(entry.headers) for entry in stamus.requests)


# --- alerts_tail ---

def test_alerts_tail_answers_flat_alerts_newest_first(stamus):
    answer = alerts_tail(stamus, from_date=NOW_MS - 2 * HOUR_MS, to_date=NOW_MS).json()
    assert set(answer) == {"count", "next", "previous", "results"}
    assert answer["count"] == 5 and answer["next"] is None and answer["previous"] is None
    first = answer["results"][0]
    assert first["_id"] == "alertD" and first["host"] == "probe-2"
    assert first["alert"]["signature_id"] == 2013028 and first["flow_id"] == 777
    assert first["timestamp"] == "2024-05-01T11:40:00.000000+0000"
    assert {"src_ip", "src_port", "dest_ip", "dest_port", "proto", "app_proto"} <= set(first)
    assert [r["_id"] for r in answer["results"]] == ["alertD", "alertC", "alertB2", "alertB",
                                                     "alertA"]
    stored = {r["_id"]: "capture_file" in r for r in answer["results"]}
    assert stored == {"alertD": True, "alertC": False, "alertB2": True, "alertB": True,
                      "alertA": True}


def test_alerts_tail_can_answer_id_and_source(stamus):
    stamus.shape = "source"
    result = alerts_tail(stamus, qfilter="flow_id:123", from_date=0).json()["results"][0]
    assert set(result) == {"_id", "_index", "_source"} and result["_id"] == "alertA"
    assert result["_source"]["flow_id"] == 123 and "_id" not in result["_source"]


def test_qfilter_matches_numbers_whole(stamus):
    assert found(stamus, f"alert.signature_id:{SIG}") == ["alertC", "alertB2", "alertB",
                                                          "alertA"]
    assert found(stamus, "flow_id:123") == ["alertA"]           # not 1234
    assert found(stamus, f"alert.signature_id:{SIG} AND flow_id:1234") == ["alertB2", "alertB"]
    assert found(stamus, "flow_id:12") == []
    assert found(stamus, "flow_id:123 OR flow_id:777") == ["alertD", "alertA"]


def test_the_time_window_is_epoch_ms_and_defaults_to_30_days(stamus):
    assert found(stamus, "flow_id:999") == []
    late = NOW_MS + 600 * 60 * 1000
    assert alerts_tail(stamus, qfilter="flow_id:999", from_date=late,
                       to_date=late).json()["count"] == 1
    assert alerts_tail(stamus, qfilter="flow_id:123",
                       to_date=NOW_MS - 49 * 60 * 1000).json()["count"] == 1
    assert alerts_tail(stamus, qfilter="flow_id:123", from_date=NOW_MS - 49 * 60 * 1000,
                       to_date=NOW_MS).json()["count"] == 0
    assert alerts_tail(stamus, from_date="yesterday").status_code == 400


def test_paging_with_next_and_previous_links():
    alerts = default_alerts(40, now=NOW)
    with StamusSimulator(alerts, token="t") as simulator:
        first = alerts_tail(simulator, from_date=0, to_date=NOW_MS).json()
        assert first["count"] == len(alerts) > 30 and len(first["results"]) == 30
        assert first["previous"] is None
        second = requests.get(first["next"], headers=token(simulator), timeout=20,
                              verify=str(simulator.ca_bundle)).json()
        assert second["next"] is None and "page=1" in second["previous"]
        ids = [r["_id"] for r in first["results"] + second["results"]]
        assert sorted(ids) == sorted(spec.es_id for spec in alerts)
        assert alerts_tail(simulator, from_date=0, to_date=NOW_MS, page=3).status_code == 404
        simulator.max_page_size = 7
        assert len(alerts_tail(simulator, from_date=0, to_date=NOW_MS, page_size=100
                               ).json()["results"]) == 7


def test_an_unparsable_qfilter_is_an_es_failure(stamus):
    answer = alerts_tail(stamus, qfilter="flow_id:(1")
    assert answer.status_code == 500 and answer.json()["detail"].startswith("ES failure")


# --- the filestore_pcap steps ---

def test_upload_extract_status_retrieve_download_once(stamus, tmp_path):
    assert step(stamus, "alertA", "status").json() == {"status": "unknown"}
    assert extract(stamus, "alertA").json() == {"extraction": "done", "filename": "alertA"}
    assert step(stamus, "alertA", "status").json() == {"status": "available"}
    assert step(stamus, "alertA", "retrieve").json() == {"retrieve": "done"}
    answer = step(stamus, "alertA", "download")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="alertA.pcap"'
    magic, _, _, _, _, snaplen, linktype = struct.unpack("<IHHiIII", answer.content[:24])
    assert (magic, snaplen, linktype) == (0xA1B2C3D4, 65536, 1)
    assert answer.content == stamus.flow_capture(123).read_bytes()
    # One-shot: the file is gone once served.
    again = step(stamus, "alertA", "download")
    assert again.status_code == 404
    assert again.json() == {"detail": 'Unknown filename "alertA.pcap"'}
    assert step(stamus, "alertA", "status").json() == {"status": "unknown"}


def test_the_extracted_capture_is_the_alerts_flow_alone(stamus, tmp_path):
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    (tmp_path / "flow.pcap").write_bytes(stamus.flow_capture(1234).read_bytes())
    packets = rdpcap(str(tmp_path / "flow.pcap"))
    assert {frozenset((p[TCP].sport, p[TCP].dport)) for p in packets} == {
        frozenset((50010, 80))}
    assert packets[0][TCP].flags == "S" and any(p[TCP].flags == "FA" for p in packets)
    assert any(b"Host: alert.example" in bytes(p[TCP].payload) for p in packets)
    timestamps = [ts for ts, _ in read_packets(tmp_path / "flow.pcap")]
    assert timestamps == sorted(timestamps)
    assert timestamps[0] >= int((NOW - dt.timedelta(minutes=40)).timestamp()) * 10**9


def test_both_shapes_upload(stamus):
    stamus.shape = "source"
    assert extract(stamus, "alertB").json()["extraction"] == "done"
    assert step(stamus, "alertB", "download").content[:4] == bytes.fromhex("d4c3b2a1")


def test_upload_refusals_in_their_real_shapes(stamus):
    no_file = upload(stamus, files={"other": ("x.json", b"{}", "application/json")})
    assert no_file.status_code == 400 and no_file.json() == {"file": ["This field is required."]}
    not_multipart = requests.post(stamus.url + UPLOAD_ROUTE, json={"_id": "x"},
                                  headers=token(stamus), verify=str(stamus.ca_bundle),
                                  timeout=20)
    assert not_multipart.status_code == 400 and "file" in not_multipart.json()
    without_id = upload(stamus, {"flow_id": 123, "capture_file": "/x"})
    assert without_id.status_code == 500
    assert without_id.headers["Content-Type"].startswith("text/html")
    assert b"Server Error (500)" in without_id.content
    assert upload(stamus, raw=b"not json").status_code == 500
    for hostile in ("../../etc/cron.d/x", "a b", "x.json", ""):
        refused = upload(stamus, {"_id": hostile, "flow_id": 123})
        assert refused.status_code == 400 and "file" in refused.json()


def test_extract_without_upload_or_capture_file_is_a_500_page(stamus):
    answer = step(stamus, "neverUploaded", "extract_pcap", "POST")
    assert answer.status_code == 500 and b"Server Error (500)" in answer.content
    assert upload(stamus, listed(stamus, "alertC")).status_code == 200   # not stored
    assert step(stamus, "alertC", "extract_pcap", "POST").status_code == 500
    assert stamus.uncaptured_requests == ["555"]


def test_an_extraction_needs_a_new_upload(stamus):
    assert extract(stamus, "alertA").status_code == 200
    assert step(stamus, "alertA", "extract_pcap", "POST").status_code == 500


def test_unknown_routes_and_methods(stamus):
    assert step(stamus, "alertA", "download", "POST").status_code == 405
    assert step(stamus, "alertA", "nothing").status_code == 404
    assert step(stamus, "..%2F..%2Fetc", "download").status_code == 404


# --- faults ---

def test_cut_resets_the_download_midway_and_the_file_is_gone(stamus):
    stamus.set_faults(Fault("cut", sessions={"123"}, after_bytes=100))
    assert extract(stamus, "alertA").status_code == 200
    received = bytearray()
    with pytest.raises((requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ConnectionError)):
        with step(stamus, "alertA", "download", stream=True) as answer:
            for chunk in answer.iter_content(64):
                received += chunk
    assert 0 < len(received) <= 100
    assert step(stamus, "alertA", "download").status_code == 404


def test_no_alert_and_no_capture_file(stamus):
    stamus.set_faults(Fault("no-alert", sessions={"123"}))
    assert found(stamus, f"alert.signature_id:{SIG}") == ["alertC", "alertB2", "alertB"]
    stamus.set_faults("no-capture-file")
    answer = alerts_tail(stamus, from_date=0, to_date=NOW_MS).json()
    assert answer["count"] == 5
    assert not any("capture_file" in result for result in answer["results"])


def test_header_only_extracts_a_bare_header(stamus):
    stamus.set_faults("header-only")
    assert extract(stamus, "alertA").status_code == 200
    body = step(stamus, "alertA", "download").content
    assert len(body) == 24 and struct.unpack("<I", body[16:20]) == (65536,)


def test_slow_extract_and_html_500(stamus):
    stamus.set_faults(Fault("slow-extract", latency_ms=500))
    started = time.monotonic()
    assert extract(stamus, "alertA").status_code == 200
    assert time.monotonic() - started >= 0.5
    stamus.set_faults("html-500")
    answer = extract(stamus, "alertB")
    assert answer.status_code == 500 and answer.headers["Content-Type"].startswith("text/html")


def test_401_fault_refuses_the_right_token(stamus):
    stamus.set_faults("401")
    assert alerts_tail(stamus).status_code == 401
    assert step(stamus, "alertA", "status").status_code == 401


def test_default_catalogue_is_deterministic():
    alerts = default_alerts(8, now=NOW)
    assert alerts == default_alerts(8, now=NOW)
    flows = {spec.flow_id for spec in alerts}
    assert len(flows) == 8 and len(alerts) > 8             # some flows alerted twice
    assert {spec.host for spec in alerts} == {"probe-1", "probe-2"}
    assert sum(not spec.captured for spec in alerts) >= 2
    assert all(re.fullmatch(r"[0-9A-Za-z_-]{20}", spec.es_id) for spec in alerts)


# --- `simulate stamus` as a user runs it ---

def test_simulate_stamus_serves_until_ctrl_c(tmp_path):
    with simulator_serving("stamus", "--alerts", "3", "--token", "cli-token", "--shape",
                           "source", "--cert-dir", str(tmp_path)) as served:
        assert (f"--address {served.url} --token cli-token --ca-bundle {served.ca_bundle}"
                in served.printed)
        answer = requests.get(served.url + ALERTS_ROUTE, timeout=10, verify=served.ca_bundle,
                              headers={"Authorization": "Token cli-token"})
        assert answer.json()["count"] >= 3 and "_source" in answer.json()["results"][0]
    assert Path(served.ca_bundle).parent == tmp_path


def test_simulate_stamus_help_lists_every_fault():
    help_text = CliRunner().invoke(simulate, ["stamus", "--help"]).output
    unwrapped = re.sub(r"-\s+", "-", " ".join(help_text.split()))   # click wraps at hyphens
    assert all(name in unwrapped for name in FAULTS)
    refused = CliRunner().invoke(simulate, ["stamus", "--fault", "teapot"])
    assert refused.exit_code == 2 and "teapot" in refused.output
