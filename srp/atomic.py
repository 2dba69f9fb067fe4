"""Files that appear whole or not at all: written under a temporary name beside the target,
then renamed into place, so a crash or an error never leaves a half-written result."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

WRITE_BUFFER = 1024 * 1024


@contextlib.contextmanager
def atomic_output(target: Path, buffering: int = WRITE_BUFFER) -> Iterator[BinaryIO]:
    """A file to write `target` through; it takes the target's name only if the block
    ends without an exception. `buffering=0` for callers that write large pieces."""
    target = Path(target)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                     dir=target.parent)
    try:
        # mkstemp makes the file private; the result gets the mode any new file would.
        os.chmod(temp_name, 0o666 & ~_umask())
        with os.fdopen(fd, "wb", buffering=buffering) as file:
            yield file
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it
    os.umask(mask)
    return mask
