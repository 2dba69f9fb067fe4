"""SHA-256 of files, read in pieces: a capture is never held in memory to be hashed."""

from __future__ import annotations

import hashlib
import os

PIECE = 1024 * 1024


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while piece := file.read(PIECE):
            digest.update(piece)
    return digest.hexdigest()
