"""The health plugin's declarations: settings validated with the field named in the manifest's terms, and both
notification templates rendering in Japanese and English."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.exceptions import PluginError
from core.notifications.templates import TemplateLibrary, check_template
from core.plugins.settings import validate_plugin_settings
from plugins.health import TEMPLATES, plugin
from plugins.health.config import HealthSettings


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"daily_cap": 0}, "plugins.health.daily_cap: must be at least 1"),
        ({"min_cell": 1}, "plugins.health.min_cell: must be between 2 and 1000, got 1"),
        (
            {"rules": [{"name": "walk", "points": 0}]},
            "plugins.health.rules: must give walk.points between 1 and 10000, got 0",
        ),
        ({"caps": 3}, "plugins.health.caps: unknown setting for plugin health"),
    ],
)
def test_settings_name_the_field_and_the_rule(raw: dict[str, object], message: str) -> None:
    with pytest.raises(PluginError) as caught:
        validate_plugin_settings(plugin, raw, where="miki")
    assert message in caught.value.detail


def test_defaults_pay_attendance_and_checkups() -> None:
    settings = validate_plugin_settings(plugin, {})
    assert isinstance(settings, HealthSettings)
    assert [(r.trigger, r.points) for r in settings.rules] == [("attendance", 10), ("checkup", 50)]


def test_both_templates_render_in_japanese_and_english() -> None:
    library = TemplateLibrary(Path("/nonexistent"), [("health", TEMPLATES)])
    names = [n for n in library.names(None) if n.startswith("health.")]
    assert names == ["health.promoted", "health.reminder"]
    for name in names:
        assert check_template(library.resolve(name, None)) == [], name
    rendered = library.resolve("health.reminder", None).render(
        "ja", {"title": "健康ウォーク", "venue": "公園", "when": "2026-12-05 10:00", "short_code": "K7M3Q9XP"}
    )
    assert "K7M3Q9XP" in rendered.body and "健康ウォーク" in rendered.subject
