"""The policy file: allow, suppress or re-rate alerts by rule and scope (docs/policy.md).

A pure module over model.Alert/Event: hunt applies it now; watch (reload on SIGHUP) and guard
(deny/allow with a mode per scope) are meant to read the same file through the same loader.
"""

from .apply import PolicyFilter, unknown_rules
from .load import PolicyError, load_policy, parse_policy
from .match import PolicyMatcher, Verdict
from .model import Entry, Policy, Scope

__all__ = [
    "Entry",
    "Policy",
    "PolicyError",
    "PolicyFilter",
    "PolicyMatcher",
    "Scope",
    "Verdict",
    "load_policy",
    "parse_policy",
    "unknown_rules",
]
