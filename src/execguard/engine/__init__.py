"""Rules (Sigma YAML) compiled to matchers over an event's field view (fields.py); pipeline/prefilter.py derives the prefilter from them."""
