"""What the project writes, it writes safely: one atomic write for every file it makes.

`atomic_write(path, data)` creates a new temporary file in the target's own folder with
``O_CREAT | O_EXCL | O_NOFOLLOW`` (a name that exists already, a symlink planted under it
included, is never opened: another random name is tried), writes and flushes it, then
renames it over ``path``. A rename replaces a symlink at ``path`` with the new file; it
never writes through it, so a link planted where the project writes (a state file, a cache
entry, an export) cannot make it overwrite another file. A reader sees the old content or
the new one, never half a file. With ``exclusive=True`` an existing ``path`` (a symlink
too) is refused with `FileExistsError` instead of replaced.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["atomic_write"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, exclusive: bool = False,
                 mode: int = 0o644) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` through a fresh temporary file and a rename."""
    target = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if exclusive and (target.exists() or target.is_symlink()):
        raise FileExistsError(f"{target} exists")
    folder = target.parent
    for _ in range(16):
        tmp = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 16 random names taken
        raise FileExistsError(f"could not create a temporary file in {folder}")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(tmp, target)  # fails if something appeared at ``target`` meanwhile
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: the check above stands
                os.replace(tmp, target)
            else:
                os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target
