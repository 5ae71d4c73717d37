"""``umbau config``: the effective settings and where each came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from umbau.masking import mask_secrets
from umbau.settings import DURATION_KEYS, KEYS, Settings, format_duration


@dataclass
class ConfigResult:
    settings_file: str | None
    rows: list[tuple[str, str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings_file": self.settings_file,
            "settings": {k: {"value": v, "source": s} for k, v, s in self.rows},
        }


def show_config(settings: Settings) -> ConfigResult:
    rows = []
    for key in KEYS:
        value = getattr(settings, key)
        if key == "database_url":
            shown = mask_secrets(value) if value else "(not set)"
        elif key in DURATION_KEYS:
            shown = format_duration(value)
        elif value is None:
            shown = "(not set)"
        else:
            shown = str(value)
        rows.append((key, shown, settings.sources.get(key, "default")))
    return ConfigResult(str(settings.settings_file) if settings.settings_file else None, rows)
