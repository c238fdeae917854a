"""guard: block container administration commands before they run (Docker AuthZ plugin, Kubernetes admission)."""
