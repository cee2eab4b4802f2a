"""Benchmarks that print tables: `python -m bench` (see `bench/RESULTS.md`).

Not timed tests: nothing here asserts; every part prints what it measured next to the
target it has, and says plainly when the target is missed.
"""
