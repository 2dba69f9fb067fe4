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
    """An error with a one-line message meant for the user, and the exit code it maps to."""

    exit_code = EXIT_ERROR


class UsageError(SrpError):
    exit_code = EXIT_USAGE


class CaptureError(SrpError):
    """A file or stream that cannot be read as a capture at all (missing, empty, not a capture)."""
