"""Labelled telemetry for testing detections: ``simulate`` writes it, ``emulate`` makes it happen on a real
Docker daemon, ``score`` measures hunt's alerts against the labels."""
