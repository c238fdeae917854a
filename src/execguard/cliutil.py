"""Moved to execguard.cli.util; this name stays while branches written against it are merged."""

from .cli.util import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Group,
    check_output,
    err,
    error,
    fail,
    note,
    one_line,
    os_error_line,
    output_dir_problem,
    output_problem,
    plural,
    silence_stdout,
    warning,
    write_output,
)

__all__ = [
    "EXIT_INTERRUPTED", "EXIT_USAGE", "Group", "check_output", "err", "error", "fail", "note", "one_line", "os_error_line",
    "output_dir_problem", "output_problem", "plural", "silence_stdout", "warning", "write_output",
]
