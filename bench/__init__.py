"""meterhub's benchmark harness: every goal is a ratio against a reference timed in the same run.

Run ``python -m bench [--quick] [--only NAME,...] [--rounds N]`` from the repository root; it
prints a table and writes ``bench/results.json`` in the shape ``BENCHMARKS.md`` documents.
"""
