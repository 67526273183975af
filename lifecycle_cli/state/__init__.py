"""The state folder (``--state DIR``): the tool's memory between runs.

`store` writes and commits it; `lock` keeps it to one writer; `view` is the one
way to read it.
"""

from .lock import LockInfo, lock
from .store import INDEX, DayWrite, State, StateError, Transaction, collect_garbage

__all__ = ["INDEX", "DayWrite", "LockInfo", "State", "StateError", "Transaction",
           "collect_garbage", "lock"]
