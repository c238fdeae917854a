"""`execguard rules export`: the Sigma rules as queries in a SIEM's own language, through pySigma backends.

raw.py rewrites execguard's normalized fields as raw Kubernetes audit fields, targets.py holds each
target's backend and field mapping, convert.py runs every rule through them (docs/export.md).
"""
