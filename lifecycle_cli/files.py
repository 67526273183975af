"""Files that appear whole or not at all: a fsynced temporary file, then a rename.

A crash or a full disk never leaves a half-written file under the target's
name; the temporary files a killed process left behind are named after its
pid, and removed by the next writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

from .errors import OutputError, Problem


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a fsynced temporary file in the same folder and
    a rename; raise OSError (the target is untouched then)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(target)
    try:
        with open(temp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write one small text file (a JSON summary) atomically."""
    target = Path(target)
    try:
        write_atomic(target, text.encode("utf-8"))
    except OSError as err:
        raise OutputError(
            Problem(f"cannot write the file: {err.strerror or err}", file=str(target))
        ) from None
    return target


def remove_debris(target: Path) -> None:
    """Remove the temporary files a killed run left next to ``target``."""
    for temp in target.parent.glob(f".{target.name}.tmp-*"):
        pid = temp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                temp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_path(target: Path) -> Path:
    """Where ``target`` is written before its rename: a hidden name with our pid."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


def fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def file_facts(path: Path) -> dict[str, Any]:
    """Path, size and SHA-256 of an input file, for the manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
