"""Web plumbing: exposing tasks, dependencies and probes, JSON errors, the API description, request ids."""
