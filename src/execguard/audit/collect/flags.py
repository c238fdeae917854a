"""pflag emulation: how kubelet and kube-apiserver read their command lines (names, booleans, int32)."""

from __future__ import annotations

import re

# strconv.ParseBool, which pflag uses for bool flags: anything else makes the component refuse the flag.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# strconv.ParseInt(s, 0, 32) syntax (pflag int32 flags): sign, 0x/0b/0o or a leading 0 (octal), _ between digits.
_GO_INT = re.compile(r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)")



class Flags(dict[str, str]):
    """Flag values by normalised name (``_`` → ``-``); ``spelled`` keeps each name as it was written."""

    def __init__(self) -> None:
        super().__init__()
        self.spelled: dict[str, str] = {}

    def text(self, name: str) -> str:
        """``--name=value`` as written on the command line."""
        return f"--{self.spelled.get(name, name)}={self[name]}"


def normalize_flag(name: str) -> str:
    # cliflag.WordSepNormalizeFunc: the kubelet's flag set and every cli.Run command (kube-apiserver) use it.
    return name.replace("_", "-")


def parse_flags(argv: list[str], bool_flags: frozenset[str] = frozenset()) -> Flags:
    """``--name=value`` / ``--name value`` / bare boolean ``--name``; names normalised as pflag's
    WordSepNormalizeFunc does; the last occurrence wins (as pflag). A bare flag followed by another flag is
    read as a boolean even when it is not in ``bool_flags`` (no real value starts with ``--``)."""
    out = Flags()
    i = 1
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            break  # pflag: the rest are arguments, not flags
        if not a.startswith("--"):
            continue
        written, eq, value = a[2:].partition("=")
        name = normalize_flag(written)
        if eq:
            out[name] = value
        elif name in bool_flags or i >= len(argv) or argv[i].startswith("--"):
            out[name] = "true"
        else:
            out[name] = argv[i]
            i += 1
        out.spelled[name] = written
    return out



def go_bool(s: str) -> bool:
    """A bool flag value as pflag parses it; ValueError where the component would refuse it."""
    if s in GO_TRUE:
        return True
    if s in GO_FALSE:
        return False
    raise ValueError("not a boolean strconv.ParseBool accepts (true/false/1/0/t/f)")


def go_int32(s: str) -> int:
    """An int32 flag value as pflag parses it (strconv.ParseInt(s, 0, 32)); ValueError where it refuses it."""
    if not _GO_INT.fullmatch(s):
        raise ValueError("not an integer")
    sign = -1 if s[0] == "-" else 1
    digits = s.lstrip("+-").replace("_", "")
    base, body = 10, digits
    if len(digits) > 1 and digits[0] == "0":
        base, body = {"x": (16, digits[2:]), "b": (2, digits[2:]), "o": (8, digits[2:])}.get(digits[1].lower(), (8, digits[1:]))
    v = sign * int(body, base)
    if not -(2**31) <= v < 2**31:
        raise ValueError("out of the int32 range")
    return v

