"""guard: refuse container administration commands before they run (docs/guard.md).

decide.py is the shared core (request -> Event -> rules -> policy -> Decision); the Docker
authorization plugin and the Kubernetes admission webhook are thin adapters around it.
"""

from .decide import Approval, Decider, Decision, Request

__all__ = ["Approval", "Decider", "Decision", "Request"]
