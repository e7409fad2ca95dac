"""Workarounds for faults of Celery and kombu, each with the upstream code it works around.

Delete one once a release fixes what it describes (its tests say when).
"""
