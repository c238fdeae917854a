"""execguard: find, audit and block T1609 container administration commands."""

__version__ = "0.1.0"
