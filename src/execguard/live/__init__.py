"""execguard watch: live inputs, the audit webhook spool and server."""
