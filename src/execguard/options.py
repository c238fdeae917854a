"""Moved to execguard.cli.options; this name stays while branches written against it are merged."""

from .cli.options import severity_option

__all__ = ["severity_option"]
