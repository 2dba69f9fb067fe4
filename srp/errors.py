"""The project's error type and the exit codes every command shares.

The exit codes are part of the interface: LogRhythm records a non-zero exit as a failed
action, and scripts branch on them. Keep this table and the README's in step.
"""

EXIT_OK = 0
EXIT_ERROR = 1       # auth, network, TLS, server, unreadable input
EXIT_USAGE = 2       # bad command line, or options the inputs cannot satisfy
EXIT_NO_DATA = 3     # nothing matched, or only empty captures
EXIT_PARTIAL = 4     # some of the data could not be retrieved
EXIT_INTERRUPTED = 130   # Ctrl-C, as shells report it


class SrpError(Exception):
    """An error with a one-line message meant for the user, and the exit code it maps to.

    `subject` names what it is about (a session, or a step of one: "flow 9: upload"), and
    the message begins with it; the retrieval core names the session itself when a
    session's error has none."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, subject: str | None = None):
        super().__init__(f"{subject}: {message}" if subject else message)
        self.subject = subject
        self.reason = message   # the message without its subject


class UsageError(SrpError):
    exit_code = EXIT_USAGE


class CaptureError(SrpError):
    """A file or stream that cannot be read as a capture at all (missing, empty, not a capture)."""


def failure(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code a command ends with when `exc` stops it: the
    project's errors as they say, and anything else still as one line, never a traceback."""
    if isinstance(exc, SrpError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", EXIT_ERROR
    if isinstance(exc, MemoryError):
        return "out of memory", EXIT_ERROR
    return f"internal error ({type(exc).__name__}): {exc}", EXIT_ERROR   # a bug of ours
