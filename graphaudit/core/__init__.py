"""The IR and what works on it alone: nodes, the op registry, reverse mode, the numpy interpreter, names."""
