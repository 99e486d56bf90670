"""Files on the shared mount (STORAGE_PATH) that every replica sees.

Names come straight from the URL, so they are checked against an allowlist before
they touch the filesystem: a name can never be a path. Writes go to a temp file in
the same directory and are renamed into place, which is atomic on POSIX filesystems
(NFS and Azure Files/SMB included for a rename within one directory): a reader on
another replica sees the old file or the whole new one, never half of it.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

MAX_NAME_LENGTH = 128
# Letters, digits, '.', '_' and '-'; the first character may not be '.', which rules
# out '.', '..', hidden files and this module's own temp and probe files.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


class UnsafeName(ValueError):
    """A file name that is not a plain name in the storage directory."""


def check_name(name: str) -> str:
    if not name:
        raise UnsafeName("file name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise UnsafeName(f"file name is longer than {MAX_NAME_LENGTH} characters")
    if not _SAFE_NAME.fullmatch(name):
        raise UnsafeName("file name may only use letters, digits, '.', '_' and '-', "
                         "and may not start with '.'")
    return name


def write_atomically(directory: Path, name: str, data: bytes) -> None:
    """Write `data` as `directory/name` so readers never see a partial file."""
    target = directory / check_name(name)
    temp = directory / f".tmp-{uuid.uuid4().hex}"
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def read(directory: Path, name: str) -> bytes | None:
    try:
        return (directory / check_name(name)).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def delete(directory: Path, name: str) -> bool:
    """Remove `directory/name`; False if it did not exist."""
    try:
        (directory / check_name(name)).unlink()
        return True
    except FileNotFoundError:
        return False


def probe(directory: Path, node_id: str) -> None:
    """Write, read back and delete a small file; raises OSError when storage is unusable.
    The name is unique per call, as probes from several replicas (and several checkers
    of one replica) overlap."""
    path = directory / f".readyz-{re.sub(r'[^A-Za-z0-9_-]', '_', node_id)}-{uuid.uuid4().hex}"
    expected = uuid.uuid4().bytes
    path.write_bytes(expected)
    try:
        if path.read_bytes() != expected:
            raise OSError(f"read back different bytes from {path}")
    finally:
        path.unlink(missing_ok=True)
