"""LogRhythm Network Monitor: find an alarm's sessions with a Lucene query, download each
session's capture (served as a 7z archive).

Every NetMon wire detail lives here. Verified: Bearer API tokens (3.x appliances sent them in
a header named `token`), `GET /api/session/<id>/pcap` answering a 7z archive. Assumed, since
NetMon does not publish it: the session search route and its answer; see SEARCH_PATH and
_session_from below, the one place to adjust when a real appliance differs.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from srp.errors import UsageError
from srp.retrieval.download import ByteBudget, save_body
from srp.retrieval.http import (HttpClient, check, json_answer, page_numbers,
                                unexpected_answer)
from srp.retrieval.inputs import TimeWindow
from srp.retrieval.vendor import Downloaded, Found, NoData, Session, Vendor

SEARCH_PATH = "/api/sessions/search"            # assumed (docs/vendor-contracts.md#netmon)
PCAP_PATH = "/api/session/{id}/pcap"            # verified
PAGE_SIZE = 100
MAX_QUERY_LENGTH = 1024
_SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def lucene_phrase(value: str) -> str:
    """An alarm field's value as one Lucene phrase: matched literally, never parsed as query
    syntax, whatever an attacker put in the domain or host name."""
    value = re.sub(r"[\x00-\x1f\x7f]", "", value).strip()
    if not value:
        raise UsageError("--query is empty")
    if len(value) > MAX_QUERY_LENGTH:
        raise UsageError(f"--query is longer than {MAX_QUERY_LENGTH} characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class NetMon(Vendor):
    name = "netmon"
    secret_options = ("api_key",)
    serves_archives = True   # every session comes as a 7z archive
    no_data = NoData(nothing_found="no NetMon session matched the query in the time window",
                     nothing_captured="the matching NetMon sessions have no captured packets")

    def __init__(self, client: HttpClient, *, api_key: str, query: str,
                 alarm_date: str | None = None, before: float = 60, after: float = 15,
                 search_path: str | None = None):
        super().__init__(client)
        self._api_key = api_key
        self._legacy_auth = False
        self._lucene = lucene_phrase(query)
        self._query = query.strip()
        self._window = TimeWindow.from_options(alarm_date, before, after)
        self._search_path = search_path or SEARCH_PATH

    def request(self) -> dict:
        return {"vendor": self.name, "address": self.client.base_url, "query": self._query,
                "lucene": self._lucene, "window": self._window.as_dict()}

    def window_closes(self) -> datetime:
        return self._window.end

    def _auth(self) -> dict:
        if self._legacy_auth:
            return {"token": self._api_key}
        return {"Authorization": f"Bearer {self._api_key}"}

    def _call(self, method: str, path: str, what: str, **kwargs):
        response = self.client.request(method, path, headers=self._auth(), **kwargs)
        if response.status_code == 401 and not self._legacy_auth:
            # NetMon 3.x took the token in a header of its own; try that once.
            response.close()
            self._legacy_auth = True
            response = self.client.request(method, path, headers=self._auth(), **kwargs)
            if response.status_code == 401:
                self._legacy_auth = False
        return check(response, what)

    def find_sessions(self) -> Found:
        found = Found([], self.no_data)
        what = "NetMon session search"
        seen = 0
        for _page in page_numbers(what):
            body = {"query": self._lucene, **self._window.as_dict(),
                    "offset": seen, "limit": PAGE_SIZE}
            answer = self._call("POST", self._search_path, what, json=body)
            expected = "the answer is not the session list this tool expects"
            data = json_answer(answer, what, expected)
            try:
                # A page is held to the length asked for: the rest comes again next page.
                page = list(data["sessions"])[:PAGE_SIZE]
                total = int(data["total"])
            except (ValueError, KeyError, TypeError, OverflowError):
                raise unexpected_answer(answer, what, expected) from None
            for item in page:
                session = _session_from(item)
                if session is None:
                    found.warnings.append(f"skipped a session whose id is missing or has "
                                          f"unexpected characters: {str(item)[:80]}")
                else:
                    found.sessions.append(session)
            seen += len(page)
            if not page or seen >= total:
                return found

    def fetch(self, session: Session, dest: Path, budget: ByteBudget) -> Downloaded:
        what = self.describe(session)
        path = PCAP_PATH.format(id=quote(session.id, safe=""))
        response = self._call("GET", path, what, stream=True)
        with response:
            return save_body(response, dest, budget, what)


def _session_from(item: dict) -> Session | None:
    """A search result entry as a Session (the field names are the assumed contract); None
    for an entry whose id could not be sent back safely."""
    session_id = str(item.get("id", "")) if isinstance(item, dict) else ""
    if not _SESSION_ID.match(session_id):
        return None
    size = item.get("bytes")
    return Session(
        id=session_id, captured=bool(item.get("captured")),
        size=size if isinstance(size, int) and size >= 0 else None,
        start=str(item.get("start") or ""), end=str(item.get("end") or "") or None,
        endpoints=tuple(str(item[key]) for key in ("srcIp", "dstIp") if item.get(key)),
        details={key: item[key] for key in ("start", "end", "srcIp", "srcPort", "dstIp",
                                             "dstPort", "protocol", "application", "packets",
                                             "bytes") if key in item})
