"""Alert sinks: table for people, JSON lines and OCSF for machines."""
