"""Limits: a million nodes audit without recursion and within memory; pictures stay bounded.

(grad and evaluate through a 100,000-deep chain: tests/test_graph.py.)
"""

import resource
import sys

import pytest

import graphaudit as ga

pytestmark = pytest.mark.slow


def test_a_million_node_graph_audits_and_draws_within_bounds():
    x = ga.placeholder("x", (2,), "float64")
    chains = []
    for _ in range(2):  # two equal chains of half a million ops: merge finds half the graph
        h = x
        for _ in range(500_000):
            h = ga.tanh(h)
        chains.append(h)
    assert sys.getrecursionlimit() < 500_000  # so any recursion on depth would have failed
    report = ga.audit_graph(chains)
    assert report.forms["original"].cost.nodes == 1_000_000
    assert report.duplicated["nodes"] == 500_000
    assert report.merges["original"].outputs[0] is report.merges["original"].outputs[1]
    dot = report.to_dot("merged", max_nodes=300)
    assert dot.count("[label=") <= 400 and "collapsed" in dot.lower()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    assert peak_mb < 3000
