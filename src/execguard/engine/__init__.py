"""Rules (Sigma YAML) compiled to matchers over Event.fields(); the prefilter derived from them."""
