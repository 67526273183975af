"""The rules file: typed models (`model`), loading with every problem located (`load`),
the checks across sections (`checks`) and safe YAML with a line for every key
(`yamlsource`)."""

from .load import load_rules, parse_rules
from .model import CTA, Compliance, Metric, Rules, Stage, Task, Transition

__all__ = ["CTA", "Compliance", "Metric", "Rules", "Stage", "Task", "Transition", "load_rules",
           "parse_rules"]
