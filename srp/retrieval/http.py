"""The one HTTP client every vendor uses: requests + urllib3 Retry, a timeout on every
request, TLS verified by default, and failures turned into one-line SrpErrors.

requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace `Session.verify` whenever a
request's own `verify` is left unset, which would silently override --ca-bundle. So `verify`
is passed on every single request: a path or False is never replaced; True lets the
environment's bundle apply, which is what a host without --ca-bundle expects.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from srp import __version__
from srp.errors import SrpError, UsageError
from srp.redaction import redact
from srp.summary.printable import printable

RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRY_AFTER = 60.0   # seconds; a server asking for longer is not waited for that long
WORDS_BODY = 4096        # bytes of an answer read for its words
WORDS_LIMIT = 200        # characters of them quoted
MAX_ANSWER = 32 * 1024 * 1024   # bytes of one JSON answer read at most
READ_CHUNK = 64 * 1024
MAX_PAGES = 1000         # a server that never stops paging is cut here


class HttpError(SrpError):
    """The server answered, but not with what was asked for."""

    def __init__(self, message: str, subject: str | None = None, status: int | None = None):
        super().__init__(message, subject)
        self.status = status


class AuthError(HttpError):
    pass


class _CappedRetry(Retry):
    def get_retry_after(self, response):
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, MAX_RETRY_AFTER)


class HttpClient:
    def __init__(self, base_url: str, *, ca_bundle: Path | None = None, insecure: bool = False,
                 timeout: float = 30.0, retries: int = 4, pool_size: int = 8,
                 headers: dict | None = None, retry_methods: Iterable[str] | None = None,
                 tls_options: tuple[str, str] = ("--ca-bundle", "--insecure")):
        ca_option, insecure_option = tls_options   # as the command line names them
        if ca_bundle is not None and insecure:
            raise UsageError(f"{ca_option} and {insecure_option} contradict each other")
        if ca_bundle is not None and not Path(ca_bundle).is_file():
            raise UsageError(f"{ca_option} {ca_bundle}: no such file")
        self.base_url = base_url
        self._ca_option = ca_option
        self.timeout = timeout
        # --ca-bundle, else the bundle the environment names (as requests would take it),
        # else requests' own list.
        self.verify: str | bool = (str(ca_bundle) if ca_bundle else False if insecure else
                                   os.environ.get("REQUESTS_CA_BUNDLE")
                                   or os.environ.get("CURL_CA_BUNDLE") or True)
        if insecure:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            print(f"srp-pcap: WARNING: TLS certificate verification is OFF ({insecure_option}): "
                  f"anyone on the path to {base_url} can read and alter this traffic",
                  file=sys.stderr)
        # A read that timed out is tried once more, not `retries` times: each try waits
        # the whole --timeout.
        retry = _CappedRetry(
            total=retries, connect=retries, read=1, status=retries, other=0,
            backoff_factor=0.5, backoff_max=10, status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset(retry_methods or ("GET", "HEAD", "POST")),
            respect_retry_after_header=True, raise_on_status=False)
        # Every request goes to one appliance: its proxy (HTTPS_PROXY, NO_PROXY, or
        # Windows' settings) is looked up once, for all three sessions.
        proxies = requests.utils.get_environ_proxies(base_url)
        self.session = _session(retry, pool_size, proxies)
        self.session.headers["User-Agent"] = f"srp-pcap/{__version__}"
        self.session.headers.update(headers or {})
        # Requests that must not reach the server twice go through a session whose reads
        # are never retried (a timed-out read may be a server still at work), and a
        # streamed body, which cannot be sent again, through one that does not retry an
        # answer's status either; they share the headers and cookies, so the server sees
        # one client.
        self._sessions = {(True, True): self.session}
        for statuses in (True, False):
            session = _session(retry.new(read=False, status=retries if statuses else 0),
                               pool_size, proxies)
            session.headers, session.cookies = self.session.headers, self.session.cookies
            self._sessions[False, statuses] = session

    def request(self, method: str, path: str, *, timeout: float | None = None,
                retry_reads: bool = True, retry_status: bool = True,
                **kwargs) -> requests.Response:
        """Send a request to base_url + path; a network or TLS failure is an SrpError.

        retry_reads=False: a read that fails (timed out, connection cut after the request
        went out) is never sent again, for a request the server may act on twice.
        retry_status=False (with retry_reads=False): nor is an answer such as 503 retried,
        for a body streamed from a file.

        The body is left unread (streamed): it is read with a cap (json_answer,
        answer_words) or to a file, never whole into memory."""
        url = self.base_url + path
        session = self._sessions[retry_reads, retry_status and retry_reads]
        kwargs.setdefault("stream", True)
        try:
            return session.request(method, url, verify=self.verify,
                                   timeout=timeout or self.timeout, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise SrpError(f"TLS verification of {self.base_url} failed ({_reason(exc)}); "
                           f"give its CA with {self._ca_option}") from None
        except requests.exceptions.Timeout:
            raise SrpError(f"{self.base_url} did not answer within {timeout or self.timeout:g} s"
                           ) from None
        except requests.exceptions.RetryError as exc:
            raise HttpError(f"{self.base_url} kept failing after retries ({_reason(exc)})"
                            ) from None
        except requests.exceptions.RequestException as exc:
            if _timed_out(exc):  # with retries mounted, a read timeout arrives this way
                raise SrpError(f"{self.base_url} did not answer within "
                               f"{timeout or self.timeout:g} s") from None
            raise SrpError(f"cannot reach {self.base_url}: {_reason(exc)}") from None

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()


class _SameOriginSession(requests.Session):
    """Follows a redirect only within the origin (scheme, host and port) it was sent to:
    the credentials a request carries (headers requests would not strip, such as NetMon's
    legacy `token`) never reach another server, and https never falls back to http."""

    def get_redirect_target(self, response):
        target = super().get_redirect_target(response)
        if target is not None:
            there = _origin(urljoin(response.url, target))
            if there != _origin(response.url):
                raise HttpError(f"HTTP {response.status_code}: the server redirected to "
                                f"{one_line(there)}, another origin than "
                                f"{_origin(response.url)}; refused (no credential is sent "
                                f"elsewhere)", status=response.status_code)
        return target


def _origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def _session(retry: Retry, pool_size: int, proxies: dict) -> requests.Session:
    session = _SameOriginSession()
    # The appliance's proxy, looked up once, not again for each of hundreds of downloads.
    # With the environment then left alone, no REQUESTS_CA_BUNDLE or .netrc steps in either.
    session.proxies = proxies
    session.trust_env = False
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def check(response: requests.Response, what: str,
          auth_hint: str = "check the API key or credentials") -> requests.Response:
    """Raise the server's own words as an error unless the answer is a success (a refusal
    of the credentials with `auth_hint`)."""
    if response.ok:
        return response
    words = answer_words(response)
    response.close()      # the rest of an error body is never read
    status = response.status_code
    message = f"HTTP {status} {response.reason or ''}".rstrip()
    if words:
        message += f": {words}"
    if status in (401, 403):
        raise AuthError(f"{message} ({auth_hint})", what, status)
    raise HttpError(message, what, status)


def unexpected_answer(response: requests.Response, what: str, expected: str) -> SrpError:
    """The error for a successful answer that is not what the tool asked for, quoting it."""
    return SrpError(f"{expected}: {answer_words(response) or 'an empty body'}", what)


def answer_words(response: requests.Response) -> str:
    """What a server's answer says, as one short line ('' for an empty body), from at most
    its first WORDS_BODY bytes."""
    return server_words(_head(response), response.headers.get("Content-Type", ""))


def json_answer(response: requests.Response, what: str, expected: str):
    """The answer's JSON, read with a cap (MAX_ANSWER bytes); an answer that is not JSON,
    or nested past any reasonable depth, is the server talking (`expected` says what was
    asked for)."""
    body = read_capped(response, what)
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise unexpected_answer(response, what, expected) from None


def read_capped(response: requests.Response, what: str, limit: int = MAX_ANSWER) -> bytes:
    """The whole body, refused past `limit` bytes. It is kept as the response's content,
    as requests keeps what `.content` reads, so that its words can still be quoted."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                response.close()
                raise SrpError(f"the answer is larger than {limit // (1024 * 1024)} MiB, "
                               f"more than any answer this tool asks for: refused", what)
            chunks.append(chunk)
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            OSError) as exc:
        raise SrpError(f"the answer broke off after {size} bytes ({_reason(exc)})",
                       what) from None
    response._content, response._content_consumed = b"".join(chunks), True
    return response._content


def _head(response: requests.Response) -> bytes:
    """At most WORDS_BODY bytes of the body (what was read already, or the start of the
    stream, whose rest is never read)."""
    head = b""
    try:
        for chunk in response.iter_content(WORDS_BODY):
            head += chunk
            if len(head) >= WORDS_BODY:
                break
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
        pass              # a body that breaks off: its words are what came
    return head[:WORDS_BODY]


def server_words(body: bytes, content_type: str = "") -> str:
    """What an error body says, as one short line: a JSON message field, an HTML page's
    title or text, or the first line of text (of its first WORDS_BODY bytes)."""
    text = body[:WORDS_BODY].decode("utf-8", "replace").strip()
    if not text:
        return ""
    if text[:1] in "{[":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            for field in ("error", "detail", "message", "errors", "file"):
                if field in data:
                    value = data[field]
                    text = value if isinstance(value, str) else json.dumps(value)
                    break
    if "<" in text and ("html" in content_type.lower() or re.search(r"<(html|body|title|h1)",
                                                                     text, re.I)):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
    return one_line(text)


def one_line(text: str | None, limit: int = WORDS_LIMIT) -> str:
    """A server's words as one short line that is safe to print: controls turned into
    spaces, runs of space into one, what is still not printable (bidirectional overrides,
    C1 controls) escaped as the summary escapes packet text, cut to `limit`, secrets
    masked."""
    text = re.sub(r"\s+", " ", re.sub(r"[\x00-\x1f\x7f]+", " ", text or "")).strip()
    text = text[:limit] + ("..." if len(text) > limit else "")
    return redact(printable(text))


def page_numbers(what: str) -> Iterator[int]:
    """0, 1, 2, ... for a loop that asks for one page after another and returns when the
    answers end; a server that never stops paging fails it after MAX_PAGES."""
    yield from range(MAX_PAGES)
    raise SrpError(f"{what}: still paging after {MAX_PAGES} pages")


def _timed_out(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            return False   # refused or unroutable: urllib3 files it under connect timeouts
        if isinstance(cause, (TimeoutError, urllib3.exceptions.TimeoutError,
                              requests.exceptions.Timeout)):
            return True
    return False


def _causes(exc: BaseException):
    """The error and what it wraps (requests wraps urllib3, which wraps ssl/socket errors)."""
    seen = []
    cause: BaseException | None = exc
    while cause is not None and len(seen) < 8 and cause not in seen:
        seen.append(cause)
        inner = getattr(cause, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in cause.args if isinstance(arg, BaseException)), None)
        cause = inner
    return seen


def _reason(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, as one short line."""
    text = str(_causes(exc)[-1])
    text = re.sub(r"<urllib3\.[^>]*>:?\s*", "", text)
    text = re.sub(r"\(Caused by [^)]*\)", "", text)
    return redact(re.sub(r"\s+", " ", text).strip()[:200])
