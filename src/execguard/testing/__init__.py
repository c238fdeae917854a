"""Helpers that drive real software for tests, emulation and audits (no mocks)."""
