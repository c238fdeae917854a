"""execguard watch: live inputs (Docker Engine API, tailed files, the audit webhook and its spool) feeding one engine."""
