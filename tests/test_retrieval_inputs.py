"""What LogRhythm passes on a retrieval's command line, read in-process: appliance
addresses, alarm dates, sizes, the time window, the query value as a Lucene phrase, alarm ids
as file name parts, and the redaction of secrets. Every value may carry stray spaces, and
alarm fields are chosen by whoever caused the alarm."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from srp import redaction
from srp.errors import UsageError
from srp.retrieval.http import server_words
from srp.retrieval.inputs import TimeWindow, parse_address, parse_alarm_date, parse_size
from srp.retrieval.outcome import Outcome
from srp.retrieval.store import ResultStore, safe_name_part
from srp.simulators import lucene
from srp.vendors.netmon import lucene_phrase

UTC = timezone.utc
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# --- parse_address ---

@pytest.mark.parametrize("text, expected", [
    ("netmon.example", "https://netmon.example"),
    ("netmon.example:8443", "https://netmon.example:8443"),
    ("https://netmon.example:8443", "https://netmon.example:8443"),
    ("https://netmon.example", "https://netmon.example"),
    ("https://netmon.example/", "https://netmon.example"),
    ("HTTPS://NetMon.Example:443", "https://netmon.example:443"),
    ("192.0.2.5", "https://192.0.2.5"),
    ("192.0.2.5:443", "https://192.0.2.5:443"),
    ("[::1]:443", "https://[::1]:443"),
    ("[2001:db8::7]", "https://[2001:db8::7]"),
    ("https://[::1]:8443", "https://[::1]:8443"),
    ("  netmon.example:8443  ", "https://netmon.example:8443"),
    ("\tnetmon.example\n", "https://netmon.example"),
    (" https://netmon.example:8443/ ", "https://netmon.example:8443"),
])
def test_parse_address_accepts(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text, complaint", [
    ("http://netmon.example", "https"),
    ("http://netmon.example:80", "https"),
    ("ftp://netmon.example", "https"),
    ("https://admin:hunter2-pw@netmon.example", "credentials"),
    ("admin:hunter2-pw@netmon.example", "credentials"),
    ("https://admin@netmon.example", "credentials"),
    ("https://netmon.example/api", "path"),
    ("netmon.example/api/sessions", "path"),
    ("https://netmon.example/?q=1", "path"),
    ("https://netmon.example#frag", "path"),
    ("https://netmon.example/../../etc", "path"),
    ("", "empty"),
    ("   ", "empty"),
])
def test_parse_address_refuses(text, complaint):
    with pytest.raises(UsageError, match=complaint) as refused:
        parse_address(text)
    assert "hunter2-pw" not in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("text", [
    "netmon.example:99999", "netmon.example:abc", "netmon.example:-1", "netmon.example:0",
    "bad_host.example", "-bad.example", "a..b", "net mon.example", "::1", "https://",
    "https:///", "netmon.example:8443:1", "[::1", "x" * 300 + ".example",
])
def test_parse_address_refuses_what_is_not_a_host_and_port(text):
    with pytest.raises(UsageError):
        parse_address(text)


def test_parse_address_names_the_option():
    with pytest.raises(UsageError, match="--sensor"):
        parse_address("http://x", "--sensor")


# --- parse_alarm_date ---

@pytest.mark.parametrize("text, expected", [
    # ISO 8601, as LogRhythm's AlarmDate and .NET "o" write it
    ("2024-05-01T12:00:00Z", NOON),
    ("2024-05-01T12:00:00z", NOON),
    ("2024-05-01T12:00:00.000Z", NOON),
    ("2024-05-01T12:00:00.1234567Z", NOON + timedelta(microseconds=123456)),
    ("2024-05-01T12:00:00.5Z", NOON + timedelta(microseconds=500000)),
    ("2024-05-01T14:00:00+02:00", NOON),
    ("2024-05-01T07:00:00-05:00", NOON),
    ("2024-05-01T07:00:00-0500", NOON),
    ("2024-05-01T17:30:00+05:30", NOON),
    ("2024-05-01T14:00:00.1234567+02:00", NOON + timedelta(microseconds=123456)),
    ("2024-05-01T12:00:00", NOON),                 # no zone: UTC
    ("2024-05-01 12:00:00", NOON),
    ("2024-05-01T12:00Z", NOON),
    # .NET format strings: "M/d/yyyy h:mm:ss tt" and "MM/dd/yyyy HH:mm:ss", in UTC
    ("5/1/2024 12:00:00 PM", NOON),
    ("5/1/2024 1:05:09 AM", datetime(2024, 5, 1, 1, 5, 9, tzinfo=UTC)),
    ("5/1/2024 12:00:00 AM", datetime(2024, 5, 1, 0, 0, tzinfo=UTC)),
    ("12/31/2024 11:59:59 PM", datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("05/01/2024 12:00:00", NOON),
    ("05/01/2024 23:59:59", datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)),
    ("1/5/2024 12:00:00 PM", datetime(2024, 1, 5, 12, 0, tzinfo=UTC)),   # month first
    # epoch seconds and milliseconds
    ("1714564800", NOON),
    ("1714564800000", NOON),
    ("1714564800.5", NOON + timedelta(milliseconds=500)),
    # RFC 1123 (.NET "r")
    ("Wed, 01 May 2024 12:00:00 GMT", NOON),
    ("Wed, 01 May 2024 14:00:00 +0200", NOON),
    # stray spaces
    ("  2024-05-01T12:00:00Z \t", NOON),
    (" 5/1/2024 12:00:00 PM ", NOON),
])
def test_parse_alarm_date(text, expected):
    parsed = parse_alarm_date(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", [
    "", "   ", "yesterday", "now", "2024-13-01T00:00:00Z", "2024-05-32T00:00:00Z",
    "2024-05-01T24:00:00Z", "2024-05-01T12:00:00+25:00", "13/13/2024 10:00:00", "1/2",
    "12345", "0", "99999999999999", "2024-05-01T12:00:00Z; rm -rf /", "%s%s%n",
    "2024-05-01T12:00:00Z\n2024-05-02T12:00:00Z",
])
def test_parse_alarm_date_refuses_garbage_with_a_usage_error(text):
    with pytest.raises(UsageError, match="--alarm-date") as refused:
        parse_alarm_date(text)
    assert "\n" not in str(refused.value)


# --- the time window ---

def test_time_window_around_the_alarm():
    window = TimeWindow.around(NOON, 60, 15)
    assert (window.start, window.end) == (NOON - timedelta(hours=1), NOON + timedelta(minutes=15))
    assert window.as_dict() == {"from": "2024-05-01T11:00:00Z", "to": "2024-05-01T12:15:00Z"}


def test_time_window_without_an_alarm_date_is_the_recent_past():
    window = TimeWindow.around(None, 30, 15, now=NOON)
    assert (window.start, window.end) == (NOON - timedelta(minutes=30), NOON)


def test_time_window_in_fractional_minutes_and_other_zones():
    moment = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    window = TimeWindow.around(moment, 0.5, 0)
    assert window.as_dict() == {"from": "2024-05-01T11:59:30Z", "to": "2024-05-01T12:00:00Z"}


def test_time_window_refuses_negative_minutes():
    with pytest.raises(UsageError):
        TimeWindow.around(NOON, -1, 15)


# --- parse_size ---

@pytest.mark.parametrize("text, expected", [
    ("500000", 500000), ("1", 1), ("1B", 1), ("200M", 200 * 1024 ** 2),
    ("2G", 2 * 1024 ** 3), ("2GB", 2 * 1024 ** 3), ("2g", 2 * 1024 ** 3),
    ("1.5K", 1536), ("1kb", 1024), ("10 MiB", 10 * 1024 ** 2), ("1T", 1024 ** 4),
    ("  2G ", 2 * 1024 ** 3),
])
def test_parse_size(text, expected):
    assert parse_size(text, "--max-bytes") == expected


@pytest.mark.parametrize("text", ["", " ", "0", "0K", "0.0001K", "-1", "-1M", "abc", "2X",
                                  "1e3", "M", "2 G B", "1,000"])
def test_parse_size_refuses(text):
    with pytest.raises(UsageError, match="--max-bytes"):
        parse_size(text, "--max-bytes")


# --- lucene_phrase: the alarm field's value as one literal phrase ---

SPECIALS = ["+", "-", "&&", "||", "!", "(", ")", "{", "}", "[", "]", "^", '"', "~", "*",
            "?", ":", "\\", "/"]


def _unquote_phrase(phrase: str) -> str:
    """The literal a Lucene phrase stands for; fails if it is not exactly one phrase."""
    assert phrase.startswith('"') and phrase.endswith('"') and len(phrase) >= 2, phrase
    inner, out, index = phrase[1:-1], [], 0
    while index < len(inner):
        char = inner[index]
        if char == "\\":
            assert index + 1 < len(inner), f"dangling backslash in {phrase!r}"
            out.append(inner[index + 1])
            index += 2
            continue
        assert char != '"', f"an unescaped quote ends the phrase early: {phrase!r}"
        out.append(char)
        index += 1
    return "".join(out)


@pytest.mark.parametrize("special", SPECIALS)
def test_lucene_phrase_escapes_every_special_character(special):
    for value in (f"a{special}b", special, f"{special}{special}x", f"x {special} OR y"):
        phrase = lucene_phrase(value)
        assert _unquote_phrase(phrase) == value
        query = lucene.parse(phrase)   # one phrase, whatever it holds
        assert query.matches({"host": value}, ("host",))
        assert query.matches({"host": f"www.{value}.example"}, ("host",))
        assert not query.matches({"host": "ab"}, ("host",))
        assert not query.matches({"host": "x OR y"}, ("host",))


def test_lucene_phrase_of_every_special_at_once():
    value = 'a+b-c&&d||e!f(g)h{i}j[k]l^m"n~o*p?q:r\\s/t'
    phrase = lucene_phrase(value)
    assert _unquote_phrase(phrase) == value
    assert lucene.parse(phrase).matches({"host": value}, ("host",))
    assert not lucene.parse(phrase).matches({"host": "abcdefghijklmnopqrst"}, ("host",))


@pytest.mark.parametrize("value", ["* OR x", "*", "x OR *", 'x" OR "*', "x\\\" OR *",
                                   "host:*", "(a OR b) AND *", "a\\", '\\"* OR x'])
def test_lucene_phrase_never_matches_everything(value):
    query = lucene.parse(lucene_phrase(value))
    assert not query.matches({"host": "www.example.com", "srcip": "10.0.0.1"},
                             ("host", "srcip"))
    assert query.matches({"host": f"[{value}]"}, ("host",))


def test_lucene_phrase_trims_and_drops_control_characters():
    assert lucene_phrase("  www.example.com \t") == '"www.example.com"'
    assert lucene_phrase("www.exa\x00mple.com\r\n") == '"www.example.com"'


@pytest.mark.parametrize("value", ["", "   ", "\x00\x01", "x" * 5000])
def test_lucene_phrase_refuses_empty_and_huge_values(value):
    with pytest.raises(UsageError, match="--query"):
        lucene_phrase(value)


# --- safe_name_part and the result names ---

SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                   *(f"LPT{i}" for i in range(10))}


@pytest.mark.parametrize("alarm_id, expected", [
    ("..\\..\\x", "x"), ("../../etc/x", "etc_x"), ("/etc/passwd", "etc_passwd"),
    ("C:\\Windows\\System32", "C_Windows_System32"), ("12345", "12345"),
    ("alarm 42", "alarm_42"), ("a-b_c", "a-b_c"), ("..", "manual"), ("....", "manual"),
    ("", "manual"), (None, "manual"), ("ü", "manual"), ("x\x00y", "x_y"),
    ("\\\\server\\share", "server_share"), ("nul.txt", "nul_txt"),
])
def test_safe_name_part(alarm_id, expected):
    assert safe_name_part(alarm_id, "manual") == expected


@pytest.mark.parametrize("alarm_id", ["..\\..\\x", "../../etc/x", "/etc/passwd", "CON", "nul",
                                      "LPT1", "a" * 10000, "..", "x/" * 200, "\x00",
                                      "C:\\x", "~root", "$(reboot)", "a\nb"])
def test_result_names_stay_in_the_folder_and_are_portable(tmp_path, alarm_id):
    assert SAFE.match(safe_name_part(alarm_id, "manual"))
    assert len(safe_name_part(alarm_id, "manual")) <= 64
    store = ResultStore(tmp_path, "netmon", alarm_id, {"query": "x"})
    for path in store.new_paths("pcapng"):
        assert path.parent == tmp_path
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.(pcapng|json)", path.name), path.name
        assert path.name.split(".")[0].upper() not in WINDOWS_DEVICES
        assert len(path.name) < 128
    assert sorted(tmp_path.iterdir()) == []   # naming creates nothing


def test_the_same_request_gets_the_same_name_key_and_another_a_different_one(tmp_path):
    one = ResultStore(tmp_path, "netmon", "7", {"query": "a"}).new_paths("pcap")[0].name
    same = ResultStore(tmp_path, "netmon", "7", {"query": "a"}).new_paths("pcap")[0].name
    other = ResultStore(tmp_path, "netmon", "7", {"query": "b"}).new_paths("pcap")[0].name
    key = lambda name: Path(name).stem.rsplit("_", 1)[1]  # noqa: E731
    assert key(one) == key(same) != key(other)


# --- redaction ---

@pytest.fixture
def secrets(monkeypatch):
    """A fresh set of registered secrets for each test."""
    monkeypatch.setattr(redaction, "_secrets", set())
    return redaction


def test_registered_secrets_are_masked_everywhere_in_a_text(secrets):
    secrets.register_secret("Tk-9f8e7d6c5b")
    text = "401 for Bearer Tk-9f8e7d6c5b (token=Tk-9f8e7d6c5b)"
    assert secrets.redact(text) == "401 for Bearer *** (token=***)"


def test_a_secret_read_with_stray_spaces_is_masked_with_and_without_them(secrets):
    secrets.register_secret("  Tk-spaces-42 ")
    assert "Tk-spaces-42" not in secrets.redact("key Tk-spaces-42 and '  Tk-spaces-42 '")


def test_longer_secrets_are_masked_before_their_prefixes(secrets):
    secrets.register_secret("abcd")
    secrets.register_secret("abcdef-long")
    assert secrets.redact("x abcdef-long y abcd") == "x *** y ***"


def test_tiny_values_are_not_registered(secrets):
    secrets.register_secret("ab")
    secrets.register_secret(None)
    secrets.register_secret("")
    assert secrets.redact("about a tab") == "about a tab"


@pytest.mark.parametrize("text, expected", [
    ("https://admin:pa55word@netmon.example/x", "https://***@netmon.example/x"),
    ("proxy http://u:p%40ss@10.0.0.1:3128 refused", "proxy http://***@10.0.0.1:3128 refused"),
    ("HTTPS://Admin:Secret@host", "HTTPS://***@host"),
    ("two https://a:b@h1 and https://c:d@h2", "two https://***@h1 and https://***@h2"),
    ("https://netmon.example:8443/api", "https://netmon.example:8443/api"),
])
def test_url_credentials_are_masked(secrets, text, expected):
    assert secrets.redact(text) == expected


def test_outcome_and_server_words_are_redacted(secrets):
    secrets.register_secret("Tk-outcome-77")
    outcome = Outcome(vendor="netmon", status="error", reason="refused Tk-outcome-77",
                      errors=["HTTP 401 for key Tk-outcome-77"],
                      warnings=["via https://u:pw-xyz@proxy"])
    rendered = str(outcome.as_json()) + outcome.text()
    assert "Tk-outcome-77" not in rendered and "pw-xyz" not in rendered
    said = server_words(b'{"error": "token Tk-outcome-77 is revoked"}', "application/json")
    assert said == "token *** is revoked"
    page = b"<html><head><title>Denied for Tk-outcome-77</title></head></html>"
    assert server_words(page, "text/html") == "Denied for ***"
