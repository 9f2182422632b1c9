"""Helpers of the benchmark runner (``bench/run.py``): processes, load, reports. Stdlib only."""
