"""Downloads streamed to disk, recognised by their bytes, and unpacked into captures.

A Content-Type is never trusted: the first bytes say what a body is. A body that is not a
capture or an archive is the server talking (an HTML page, an error document): its words
become the error, and it is never merged. Archive member names are never used as paths;
every file is named here, inside the run's private work folder.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import zlib
from pathlib import Path

import requests

from srp.capture.magic import CAPTURE_KINDS, SNIFF_BYTES, sniff
from srp.errors import SrpError
from srp.retrieval.http import WORDS_BODY, one_line, server_words
from srp.retrieval.vendor import Downloaded

CHUNK = 64 * 1024


class DownloadError(SrpError):
    """One download failed; the others go on."""


class SizeCapReached(DownloadError):
    pass


class NotACapture(DownloadError):
    """The body is neither a capture nor an archive: the server talking. `head` holds its
    first bytes (up to WORDS_BODY), for a vendor that reads its appliance's error documents."""

    def __init__(self, message: str, subject: str, head: bytes):
        super().__init__(message, subject)
        self.head = head


class TransferBroken(DownloadError):
    """The connection failed mid-body; the same download may well work again."""


class ByteBudget:
    """The --max-bytes allowance, shared by downloads running in parallel."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> None:
        """Count capture bytes kept on disk; past the limit, the download stops."""
        with self._lock:
            self.used += count
            if self.limit is not None and self.used > self.limit:
                raise SizeCapReached(f"the --max-bytes limit of {self.limit} bytes was reached")

    def release(self, count: int) -> None:
        """Give back what a download that was thrown away had counted."""
        with self._lock:
            self.used -= count

    def check(self, count: int) -> None:
        """Refuse an archive larger than what is left: its captures would not fit either."""
        with self._lock:
            if self.limit is not None and self.used + count > self.limit:
                raise SizeCapReached(f"the --max-bytes limit of {self.limit} bytes was reached")


def save_body(response: requests.Response, dest: Path, budget: ByteBudget,
              what: str) -> Downloaded:
    """Stream a response body into `dest`, hashing it; the body must be a capture or an
    archive of captures, which its first bytes tell before anything is kept."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    kind = None
    try:
        with open(dest, "wb") as file:
            for chunk in response.iter_content(CHUNK):
                if kind is None:
                    head += chunk
                    if len(head) < SNIFF_BYTES:
                        continue
                    kind = sniff(head)
                    if kind is None:
                        raise _not_a_capture(what, _head(head, response), response)
                    chunk = head
                # Captures count against --max-bytes as they arrive; an archive's captures
                # count as they are unpacked, so it is only held to what is left.
                if kind in CAPTURE_KINDS:
                    budget.take(len(chunk))
                else:
                    budget.check(size + len(chunk))
                digest.update(chunk)
                file.write(chunk)
                size += len(chunk)
    except (requests.exceptions.RequestException, OSError) as exc:
        dest.unlink(missing_ok=True)
        if kind in CAPTURE_KINDS:
            budget.release(size)   # a retry counts its bytes afresh
        if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
            raise DownloadError(f"cannot write {dest.name}: {exc.strerror}", what) from None
        raise TransferBroken(f"the download broke off after {size} bytes "
                             f"({type(exc).__name__})", what) from None
    except DownloadError:
        dest.unlink(missing_ok=True)
        raise
    if kind is None:
        dest.unlink(missing_ok=True)
        raise _not_a_capture(what, head, response)
    return Downloaded(dest, size, digest.hexdigest(), kind)


def _head(head: bytes, response: requests.Response) -> bytes:
    """The first WORDS_BODY bytes of a body whose first `head` bytes were read."""
    rest = b""
    try:
        for chunk in response.iter_content(CHUNK):
            rest += chunk
            if len(head) + len(rest) >= WORDS_BODY:
                break
    except requests.exceptions.RequestException:
        pass
    return (head + rest)[:WORDS_BODY]


def _not_a_capture(what: str, head: bytes, response: requests.Response) -> NotACapture:
    said = server_words(head, response.headers.get("Content-Type", ""))
    fallback = "(an unreadable body)" if head else "an empty body"
    return NotACapture(f"the server sent no capture: {said or fallback}", what, head)


def preload() -> None:
    """Import the 7z unpacker now (it takes over a tenth of a second; a retrieval does it
    while it waits on the network)."""
    import py7zr  # noqa: F401


def unpack(download: Downloaded, workdir: Path, budget: ByteBudget, what: str) -> list[Path]:
    """The capture files a download holds: itself, or what its gzip or 7z archive holds."""
    if download.kind in CAPTURE_KINDS:
        return [download.path]
    if download.kind == "gzip":
        target = download.path.with_suffix(".gunzip")
        try:
            with gzip.open(download.path, "rb") as source, open(target, "wb") as out:
                while chunk := source.read(CHUNK):
                    budget.take(len(chunk))
                    out.write(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise DownloadError(f"damaged gzip data ({exc})", what) from None
        return _captures_only([target], what)
    return _captures_only(_unpack_7z(download.path, workdir, budget, what), what)


def _captures_only(paths: list[Path], what: str) -> list[Path]:
    captures = []
    for path in paths:
        with open(path, "rb") as file:
            if sniff(file.read(SNIFF_BYTES)) in CAPTURE_KINDS:
                captures.append(path)
    if not captures:
        raise DownloadError("the archive holds no capture file", what)
    return captures


def _unpack_7z(archive: Path, workdir: Path, budget: ByteBudget, what: str) -> list[Path]:
    import py7zr
    from py7zr.io import Py7zIO, WriterFactory

    made: list[Path] = []

    class MemberFile(Py7zIO):
        """Where py7zr writes one member: a file named by us, counted against the budget."""

        def __init__(self, path: Path):
            self._file = open(path, "w+b")
            self._size = 0

        def write(self, data) -> int:
            budget.take(len(data))
            self._size += len(data)
            return self._file.write(data)

        def read(self, size=None) -> bytes:
            return self._file.read(size)

        def seek(self, offset, whence=0) -> int:
            return self._file.seek(offset, whence)

        def flush(self) -> None:
            self._file.flush()

        def size(self) -> int:
            return self._size

        def close(self) -> None:
            self._file.close()

    class MemberFiles(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            path = workdir / f"{archive.stem}.member{len(made)}"
            made.append(path)
            return MemberFile(path)

    try:
        with py7zr.SevenZipFile(archive, "r") as seven:
            if seven.needs_password():
                raise DownloadError("the 7z archive is encrypted", what)
            for name in seven.getnames():
                # Members are written under names of ours, but py7zr refuses these anyway,
                # and an archive that holds one is not what an appliance sends.
                parts = name.replace("\\", "/").split("/")
                if name.startswith(("/", "\\")) or ".." in parts or ":" in name:
                    raise DownloadError(f"refused a 7z archive whose member name points "
                                        f"outside its folder ({name[:60]!r})", what)
            seven.extract(path=workdir, factory=MemberFiles())
            # Lets go of the decompressors now: they sit in a reference cycle of py7zr's
            # with their buffers, which Python would free only at some later collection.
            seven.reset()
    except SrpError:      # refused above, or the --max-bytes budget
        raise
    except Exception as exc:
        # py7zr raises what its codecs raise (lzma.LZMAError, zstd, PPMd, BCJ, CRC and
        # header errors, ...): whatever it is, this one archive is damaged.
        raise DownloadError(f"damaged 7z archive ({type(exc).__name__}: "
                            f"{one_line(str(exc), 80)})", what) from None
    return [path for path in made if path.exists() and path.stat().st_size > 0]
