"""Rules (Sigma YAML) compiled to matchers over Event.fields(); pipeline/prefilter.py derives the prefilter from them."""
