"""Rules (Sigma YAML) compiled to matchers over an event's field view (fields.py); the prefilter derived from them."""
