"""The state folder's lock: one run at a time, and who holds it."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import Problem
from .store import INDEX, StateError

LOCK = "lock"


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    user: str
    command: str
    since: str  # ISO time, UTC

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (user {self.user}), running `{self.command}`, " \
               f"since {self.since}"


def _read_lock_info(fd: int) -> LockInfo | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
        return LockInfo(int(data["pid"]), str(data["host"]), str(data["user"]),
                        str(data["command"]), str(data["since"]))
    except (ValueError, KeyError, TypeError):
        return LockInfo(0, "?", "?", "?", "?")


@contextlib.contextmanager
def lock(state_dir: Path, command: str) -> Iterator[LockInfo | None]:
    """Hold the state folder's lock; yield what a killed holder left behind, if anything.

    The lock is an OS lock (``flock``) on ``STATE/lock``, which the kernel drops
    when its process dies, however it dies; the file also says who holds it, for
    the message a second run prints. A file that still names a holder when the
    lock is free was left by a killed run: it is stale, and cleared.
    """
    import fcntl

    path = state_dir / LOCK
    if state_dir.exists() and not state_dir.is_dir():
        raise StateError(Problem("the state path exists and is not a folder",
                                 file=str(state_dir), hint="give --state a folder"))
    created = not state_dir.exists()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise StateError(
            Problem(f"cannot use the state folder: {err.strerror or err}", file=str(state_dir),
                    hint="--state needs a folder this user can write (it is created if "
                    "missing)")
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not _still_named(fd, path):
                # a run that made the folder removed it (and its lock file) on its way out,
                # between our open and our lock: the folder's lock is another file now
                raise BlockingIOError
        except BlockingIOError:
            holder = _read_lock_info(fd)
            who = holder.describe() if holder else "another process"
            raise StateError(
                Problem(
                    f"the state folder is in use by {who}",
                    file=str(state_dir),
                    hint="wait for that run to finish; two runs must not share a state folder",
                )
            ) from None
        stale = _read_lock_info(fd)
        me = LockInfo(os.getpid(), socket.gethostname(), _user(), command,
                      dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me.__dict__).encode())
        os.fsync(fd)
        try:
            yield stale
        finally:
            if created and not (state_dir / INDEX).exists():
                # a first run that committed nothing leaves no folder behind (the lock is
                # still held: nobody else is inside)
                with contextlib.suppress(OSError):
                    path.unlink()
                    state_dir.rmdir()  # only when empty
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _still_named(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the one at ``path``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


