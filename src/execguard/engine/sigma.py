"""The names callers used when the engine was one module; the code is in rule, compile, load and reason."""

from .compile import compile_rule
from .load import check_rule, load_rules
from .reason import fields_empty
from .rule import LEVELS, Rule, RuleError, procedure_tags

__all__ = ["LEVELS", "Rule", "RuleError", "check_rule", "compile_rule", "fields_empty", "load_rules", "procedure_tags"]
