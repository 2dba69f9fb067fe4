"""The HTTPS plumbing every vendor simulator shares.

- write_self_signed_certificate(): a certificate for the loopback names, written as PEM so a
  client can trust it directly (`--ca-bundle`, requests' `verify=`);
- HTTPSServer: a threaded HTTPS server on a background thread, a context manager, with a
  log of every request (secrets masked) for tests to assert on, and an optional latency;
- VendorSimulator: the HTTPSServer an appliance simulator is, with faults to switch on and
  off while it runs and a work folder for its files;
- SimulatorHandler: the request handler base a vendor simulator routes in, with helpers to
  answer JSON, errors, bytes, a file streamed in chunks, or to break the connection.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from srp.simulators.faults import Fault, FaultSwitch

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
CERT_FILE = "simulator-cert.pem"
KEY_FILE = "simulator-key.pem"
# Masked in the request log: tests may print it, and a key must never be echoed anywhere.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "token", "cookie",
                            "x-api-key"})
MASK = "<redacted>"
MAX_REQUEST_BODY = 1024 * 1024
STREAM_CHUNK = 64 * 1024
HANDSHAKE_TIMEOUT = 10.0


def write_self_signed_certificate(directory: str | Path, names=LOOPBACK_NAMES,
                                  days: int = 30) -> tuple[Path, Path]:
    """Write a self-signed certificate valid for `names` (IP addresses and host names) and
    its private key into `directory`; return (certificate path, key path).

    The certificate is its own CA (basicConstraints CA:TRUE), so the certificate file alone
    is the CA bundle a client needs.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "srp-pcap simulator")])
    alternative_names = []
    for name in dict.fromkeys(names):
        try:
            alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative_names.append(x509.DNSName(name))
    now = dt.datetime.now(dt.timezone.utc)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))   # tolerate a client clock a bit behind
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / CERT_FILE
    key_path = directory / KEY_FILE
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    # The key is created owner-only: never readable by others, even for a moment.
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class LoggedRequest:
    """One request as the server saw it; secret headers are masked."""

    method: str
    path: str                     # as sent, query string included
    headers: dict[str, str]
    body: bytes = b""
    status: int | None = None     # the status answered (None if the connection broke first)

    def json(self):
        return json.loads(self.body)


class RequestError(Exception):
    """Raised by a route to answer with an error status; the handler formats it."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class SimulatorHandler(BaseHTTPRequestHandler):
    """Reads and logs every request, applies the server's latency, then calls `respond()`.

    A vendor simulator subclasses this, implements respond() (routing on `self.command` and
    `self.route`), and overrides send_problem() for its vendor's error shape.
    """

    protocol_version = "HTTP/1.1"   # keep-alive: clients reuse their TLS connections
    # Headers and body go out in separate writes: without this, Nagle's algorithm holds the
    # body until the client's delayed ACK, adding about 40 ms to every answer.
    disable_nagle_algorithm = True
    server_version = "srp-simulator"
    timeout = 60                    # a silent client frees its thread after this long
    logged: LoggedRequest | None = None   # None for a request too malformed to log

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def do_PUT(self):
        self._serve()

    def do_DELETE(self):
        self._serve()

    @property
    def simulator(self) -> HTTPSServer:
        return self.server.simulator

    @property
    def route(self) -> str:
        """The request path without its query string, still percent-encoded (so an encoded
        '/' inside an id does not split the path)."""
        return urlsplit(self.path).path

    def respond(self) -> None:
        """Route the request and answer it; a subclass implements its vendor's routes."""
        raise RequestError(404, "no such route")

    def _serve(self) -> None:
        headers = {name: (MASK if name.lower() in SECRET_HEADERS else value)
                   for name, value in self.headers.items()}
        self.logged = LoggedRequest(self.command, self.path, headers)
        self.simulator.record(self.logged)
        try:
            self.body = b"" if self.streams_body() else self._read_body()
            self.logged.body = self.body
            if self.simulator.latency:
                time.sleep(self.simulator.latency)
            self.respond()
        except RequestError as error:
            self.send_problem(error.status, error.message, error.headers)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True   # the client went away: nobody to answer
        except Exception as exc:
            # A bug of the simulator: answer 500 so the client does not wait, and let the
            # server print the traceback.
            self.close_connection = True
            if self.logged.status is None:
                self.send_problem(500, f"simulator error: {type(exc).__name__}")
            raise

    def streams_body(self) -> bool:
        """True when respond() reads this request's body itself from `self.rfile` (an upload
        too large to hold in memory): it is then not read beforehand, and logged as empty."""
        return False

    def _read_body(self) -> bytes:
        # The whole body is read before answering, even an error: what is left unread
        # would be taken for the next request on the kept-alive connection.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BODY:
            self.close_connection = True
            raise RequestError(413 if length > 0 else 400, "bad request body length")
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes:
        body = bytearray()
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";")[0], 16)
            except ValueError:
                self.close_connection = True
                raise RequestError(400, "bad chunked request body") from None
            if len(body) + size > MAX_REQUEST_BODY:
                self.close_connection = True
                raise RequestError(413, "request body too large")
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass   # trailer fields, up to the blank line
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()   # the CRLF after each chunk

    def request_json(self) -> object:
        """The request body parsed as JSON; 400 if it is not."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise RequestError(400, "the request body is not JSON") from None

    # --- answers ---

    def send_response(self, code, message=None):
        if self.logged is not None:
            self.logged.status = code
        super().send_response(code, message)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args):
        """Silent: the request log is in `simulator.requests`."""

    def send_bytes(self, status: int, body: bytes, content_type: str,
                   headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, document, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(document).encode(), "application/json", headers)

    def send_problem(self, status: int, message: str,
                     headers: dict[str, str] | None = None) -> None:
        """An error answer; this default is JSON {"error": message}."""
        self.send_json(status, {"error": message}, headers)

    def send_file(self, path: str | Path, content_type: str,
                  headers: dict[str, str] | None = None, cut_after: int | None = None) -> None:
        """Stream a file in chunks, announcing its full length; with `cut_after`, reset the
        connection once that many body bytes are sent (a download broken midway)."""
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        remaining = size if cut_after is None else min(cut_after, size)
        with open(path, "rb") as file:
            while remaining > 0:
                chunk = file.read(min(STREAM_CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
        if cut_after is not None:
            self.reset_connection()

    def reset_connection(self) -> None:
        """End the connection with a TCP reset instead of an orderly close."""
        self.wfile.flush()
        # Linger on, zero seconds: close() sends RST, as a crashed or killed peer does.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


class _TLSThreadingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler_class, ssl_context: ssl.SSLContext,
                 simulator: HTTPSServer):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.ssl_context = ssl_context
        self.simulator = simulator
        self.connections: set[ssl.SSLSocket] = set()   # open ones, to close them at stop
        self.connections_lock = threading.Lock()
        super().__init__(address, handler_class)

    def server_bind(self):
        # HTTPServer.server_bind looks the host name up in DNS, which can hang offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread: a slow or failing
        # client never holds up the accepting loop.
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return   # the client refused our certificate or went away
        with self.connections_lock:
            self.connections.add(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with self.connections_lock:
                self.connections.discard(tls)
            tls.close()

    def close_connections(self) -> None:
        """Hang up on every client, so no kept-alive connection outlives the server."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                # The plain socket's shutdown: SSLSocket.shutdown would also drop its TLS
                # state under the feet of the thread still reading from it.
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
            except OSError:
                pass   # already closed by its own thread

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return   # clients hanging up are routine here, not errors of the simulator
        super().handle_error(request, client_address)


class HTTPSServer:
    """A threaded HTTPS server on a background thread.

    Subclasses set `handler_class`. Use it as a context manager (or start()/stop()); once
    started, `url` is https://HOST:PORT and `ca_bundle` the certificate to trust. With no
    `cert_dir`, the certificate lives in a temporary directory removed at stop().
    """

    handler_class: type[SimulatorHandler] = SimulatorHandler

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 cert_dir: str | Path | None = None, latency: float = 0.0):
        self.host = host
        self.requested_port = port
        self.cert_dir = Path(cert_dir) if cert_dir is not None else None
        self.latency = latency            # seconds added to every request; change any time
        self.requests: list[LoggedRequest] = []
        self.ca_bundle: Path | None = None
        self.key_file: Path | None = None
        self._log_lock = threading.Lock()
        self._server: _TLSThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self._own_cert_dir: Path | None = None

    def record(self, request: LoggedRequest) -> None:
        with self._log_lock:
            self.requests.append(request)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def start(self) -> HTTPSServer:
        if self._server is not None:
            return self
        if self.cert_dir is None:
            self._own_cert_dir = Path(tempfile.mkdtemp(prefix="srp-simulator-cert-"))
        names = (*LOOPBACK_NAMES, self.host)
        self.ca_bundle, self.key_file = write_self_signed_certificate(
            self.cert_dir or self._own_cert_dir, names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.ca_bundle, self.key_file)
        try:
            self._server = _TLSThreadingServer((self.host, self.requested_port),
                                               self.handler_class, context, self)
        except OSError:
            self._remove_own_cert_dir()
            raise
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"{type(self).__name__}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()
        self._server = self._thread = None
        self._remove_own_cert_dir()

    def _remove_own_cert_dir(self) -> None:
        if self._own_cert_dir is not None:
            shutil.rmtree(self._own_cert_dir, ignore_errors=True)
            self._own_cert_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class VendorSimulator(HTTPSServer):
    """An appliance simulator: an HTTPSServer with faults (FaultSwitch) that tests switch on
    and off while it runs, and a work folder for the files it serves, made at start() and
    removed at stop().

    Subclasses set `fault_names` (their FAULTS) and `work_prefix`.
    """

    fault_names: tuple[str, ...] = ()
    work_prefix = "srp-simulator-"

    def __init__(self, *, faults: Iterable[Fault | str] = (), host: str = "127.0.0.1",
                 port: int = 0, cert_dir: str | Path | None = None, latency: float = 0.0):
        super().__init__(host=host, port=port, cert_dir=cert_dir, latency=latency)
        self.faults = FaultSwitch(self.fault_names, faults)
        self.work_dir: Path | None = None

    def set_faults(self, *faults: Fault | str) -> None:
        """Replace the faults in force (takes effect with the next request)."""
        self.faults.set(*faults)

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """Back to how it began serving, for the next test: no faults in force."""
        self.clear_faults()

    def make_work_dir(self) -> Path:
        """The work folder, made when there is none (before the first start, after a stop)."""
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix=self.work_prefix))
        return self.work_dir

    def start(self) -> VendorSimulator:
        self.make_work_dir()
        try:
            super().start()
        except BaseException:
            self.stop()   # a start that failed leaves no folder behind
            raise
        return self

    def stop(self) -> None:
        super().stop()
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None
