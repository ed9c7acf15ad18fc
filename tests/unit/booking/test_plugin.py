"""The booking plugin's declarations: settings validated with the field named, templates in both languages,
the reservation workflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.exceptions import PluginError
from core.notifications.templates import TemplateLibrary, check_template
from core.plugins.settings import validate_plugin_settings
from plugins.booking import TEMPLATES, plugin
from plugins.booking.config import BookingSettings
from plugins.booking.workflow import RESERVATION

TEMPLATE_NAMES = ["booking.cancelled", "booking.confirmed", "booking.lottery_result", "booking.rejected",
                  "booking.reminder", "booking.waitlist_offered"]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"window_days_other": 0}, "plugins.booking.window_days_other: must be between 1 and 366, got 0"),
        (
            {"max_bookings_per_month": 500},
            "plugins.booking.max_bookings_per_month: must be between 1 and 100",
        ),
        ({"exemptions": {"Disability": 50}}, "plugins.booking.exemptions: must name codes in lowercase"),
        (
            {"exemptions": {"school": 120}},
            "plugins.booking.exemptions: must give each code a percentage from 1 to 100, got school = 120",
        ),
        (
            {"lottery_max_wins": 4, "lottery_max_wishes": 3},
            "plugins.booking.lottery_max_wins: must be between 1 and lottery_max_wishes",
        ),
        ({"window_days": 30}, "plugins.booking.window_days: unknown setting for plugin booking"),
    ],
)
def test_settings_name_the_field_and_the_rule(raw: dict[str, object], message: str) -> None:
    with pytest.raises(PluginError) as caught:
        validate_plugin_settings(plugin, raw, where="miki")
    assert message in caught.value.detail


def test_defaults_and_windows_per_class_of_person() -> None:
    settings = validate_plugin_settings(plugin, {"window_days_resident": 61, "window_days_other": 31})
    assert isinstance(settings, BookingSettings)
    assert [settings.window_days(c) for c in ("resident", "region", "other")] == [61, 45, 31]


def test_every_template_renders_in_japanese_and_english() -> None:
    library = TemplateLibrary(Path("/nonexistent"), [("booking", TEMPLATES)])
    assert [n for n in library.names(None) if n.startswith("booking.")] == TEMPLATE_NAMES
    for name in TEMPLATE_NAMES:
        assert check_template(library.resolve(name, None)) == [], name
    rendered = library.resolve("booking.lottery_result", None).render(
        "ja", {"month": "2027-01", "won": [], "confirm_days": 7}
    )
    assert "落選" in rendered.body


def test_the_reservation_workflow_holds_until_confirmed_and_times_out() -> None:
    assert RESERVATION.initial == "held"
    assert RESERVATION.leaving("held") == ["confirm", "submit", "win", "cancel", "revoke", "expire"]
    assert [(t.state, t.fire) for t in RESERVATION.timers] == [("held", "expire"), ("won", "lapse")]
    assert RESERVATION.transition("approve").permission == "booking.manage"
    assert RESERVATION.transition("expire").permission is None
