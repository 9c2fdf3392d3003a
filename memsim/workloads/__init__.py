"""Workloads: the built-in digits models and layer-shape definitions of known networks."""
