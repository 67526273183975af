"""Calls to action: which CTAs a day creates and closes (`decide`), and the worklist of
the open ones (`worklist`)."""

from .decide import CtaResult, current, decide_ctas
from .worklist import Worklist, worklist

__all__ = ["CtaResult", "Worklist", "current", "decide_ctas", "worklist"]
