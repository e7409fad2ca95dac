"""Benchmarks of the running stack: `nox -s bench` (see README, "Benchmarks")."""
