"""Seeing into the running service: traces (and, beside them, the logs' request and task ids)."""
