"""Files written safely: atomic publication under a unique temporary name, clear errors.

Several processes may write the same file at once (two workers caching one trained model,
two runs of one study writing its report). Each writer writes its own temporary file,
named uniquely (``tempfile.mkstemp``) in the target's folder, flushes it to disk and then
renames it over the target (``os.replace``, atomic on one file system). A reader sees the
old file or a complete new one, never a half-written one; a crash or Ctrl-C leaves at most
a stray ``.<name>.*.tmp`` file, never a damaged target.

:func:`output_error` turns an ``OSError`` of an output file into a :class:`StoreError`
that names the file, what went wrong and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from memsim.errors import StoreError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable_dir",
           "os_error_advice", "output_error"]


def os_error_advice(exc: OSError) -> str:
    """What went wrong and what to do, in a few words, for the common file-system errors."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full: free some space or write elsewhere"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied: write to a folder you may write to"
    if code == errno.EROFS:
        return "the file system is read-only: write elsewhere"
    if code == errno.ENOENT:
        return "a folder on the way does not exist"
    if code == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if code == errno.EISDIR:
        return "the path is a folder, not a file"
    if code == errno.ENAMETOOLONG:
        return "the path is too long"
    return exc.strerror or str(exc)


def output_error(path: str | Path, exc: OSError, *, what: str = "write",
                 option: str | None = None) -> StoreError:
    """A :class:`StoreError` for a failed output: the file, the cause, the remedy."""
    hint = f"; choose another {option}" if option else ""
    err = StoreError(f"cannot {what} {path}: {os_error_advice(exc)}{hint}")
    return err


def check_writable_dir(path: str | Path, *, option: str | None = None) -> Path:
    """Create the folder ``path`` if needed and check that a file can be written in it.

    Called before a long computation, so that an unwritable ``--out`` fails at once rather
    than after the work. Raises :class:`StoreError` naming the folder (and the option).
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".memsim-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise output_error(folder, exc, what="write to the folder", option=option) from exc
    return folder


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a unique temporary path next to ``target``; on success, publish it atomically.

    Write the file at the yielded path (any writer: numpy, matplotlib, open()). When the
    block ends without an exception the file is synced and renamed over ``target``; if it
    raises (Ctrl-C included), the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically (unique temporary file, then rename)."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)
