"""Benchmarks: figures anyone can reproduce with `make bench` (see docs/PERFORMANCE.md)."""
