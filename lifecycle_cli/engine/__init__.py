"""The decision engine: rules compiled against the data (`compile`), the built-in values of
a customer on a day (`builtins`), and the hops that move customers (`decide`)."""

from .builtins import final_values, with_builtins
from .compile import CompiledCTA, CompiledRule, CompiledRules, compile_rules
from .decide import EngineResult, decide

__all__ = ["CompiledCTA", "CompiledRule", "CompiledRules", "EngineResult", "compile_rules",
           "decide", "final_values", "with_builtins"]
