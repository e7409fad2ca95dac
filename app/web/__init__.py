"""Web plumbing shared by the blueprints: dependency errors, JSON errors, probes, the API description."""
