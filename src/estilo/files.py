"""Writing, fingerprinting and reading files: one atomic write, one sha256 and one TOML
reader for all of estilo.

Every file estilo writes (images, contact sheets' tables, batch summaries, downloaded
weights) goes through :func:`write_atomic`, so a crash, a full disk or Ctrl-C never leaves a
half-written file under the final name; every input and weights file is identified by
:func:`sha256`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CHUNK = 1 << 20  # bytes read at a time when hashing


def write_atomic(path: str | os.PathLike[str],
                 content: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Write ``content`` to ``path`` atomically: a temporary file in the same folder, flushed
    to disk, then renamed over ``path``. The file gets the user's umask like any other.

    Args:
        path: the destination; its folder must exist.
        content: bytes, text (written as UTF-8), or a function that writes into the open
            binary file (``lambda f: image.save(f, format="PNG")``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the folder is missing or not writable, or the disk is full; the temporary
            file is removed first.
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 (not mkstemp's 0o600) so the final file gets the user's umask.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return target


def sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, as hex (read in chunks: weights files are large).

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_toml(text: str) -> dict[str, Any]:
    """TOML text (a grid file, a batch manifest) as a dict.

    Raises:
        ValueError: the text is not TOML; the message says where.
    """
    return tomllib.loads(text)
