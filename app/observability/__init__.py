"""Seeing into the running service: logs, metrics, traces, the worker's health."""
