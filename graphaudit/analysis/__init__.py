"""Graphs into numbers: merging, costs, the duplicated work, the audit and its Report."""
