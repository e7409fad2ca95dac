"""The keys a config file may hold, and how their errors read (app/settings/keys.py).

Each error, through load_config: test_config.py (BAD_FILES).
"""

from __future__ import annotations

from pydantic import BaseModel

from app.settings.keys import Expected, Settings


def test_every_key_says_what_it_takes() -> None:
    """Every key, top-level or in a section, declares an Expected: its errors read like every other key's."""
    sections = [field.annotation for field in Settings.model_fields.values()]
    models = [Settings, *(model for model in sections if isinstance(model, type) and issubclass(model, BaseModel))]
    undeclared = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not any(isinstance(item, Expected) for item in field.metadata)
    ]
    assert len(models) > 1 and undeclared == []
