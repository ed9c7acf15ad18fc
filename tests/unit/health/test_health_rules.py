"""Pure rules of the health plugin: settings validation naming the field, fiscal years and expiry, age bands,
the QR token (altered or moved to another town: refused), short codes as staff type them."""

from __future__ import annotations

import uuid
from datetime import date

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import InvalidInput
from plugins.health.config import HealthSettings
from plugins.health.services import fiscal_year, tokens
from plugins.health.services._context import expires_on
from plugins.health.services._outputs import BANDS, EVENT_HEADERS, age_band

KEY = b"k" * 32


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"daily_cap": 0}, "daily_cap"),
        ({"daily_cap": 50, "yearly_cap": 40}, "daily_cap"),
        ({"min_cell": 1}, "min_cell"),
        ({"rules": [{"name": "Walk", "points": 5}]}, "rules"),
        ({"rules": [{"name": "a", "points": 5}, {"name": "a", "points": 6}]}, "rules"),
        ({"rules": [{"name": "a", "points": 5, "min_age": 80, "max_age": 70}]}, "rules"),
        ({"rules": [{"name": "a", "points": 5, "trigger": "steps"}]}, "trigger"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(settings, HealthSettings)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_points_expire_on_the_31_march_closing_their_fiscal_year(day: date) -> None:
    year = fiscal_year(day)
    end = expires_on(year)
    assert (end.month, end.day) == (3, 31)
    assert date(year, 4, 1) <= day <= end
    assert (end - day).days < 366


def test_age_bands_cover_every_age_once() -> None:
    assert [age_band(a) for a in (59, 60, 64, 65, 79, 80, 120)] == [
        "-59", "60-64", "60-64", "65-69", "75-79", "80+", "80+"
    ]  # fmt: skip
    assert all(BANDS[i][1] + 1 == BANDS[i + 1][0] for i in range(len(BANDS) - 1))


@given(st.uuids(), st.integers(0, 45), st.characters(codec="ascii", categories=["L", "N"]))
def test_a_token_changed_anywhere_is_refused(person: uuid.UUID, where: int, char: str) -> None:
    token = tokens.make_token(KEY, "miki", person)
    assert tokens.read_token(KEY, "miki", token) == person
    changed = token[:where] + char + token[where + 1 :]
    if changed != token:
        with pytest.raises(InvalidInput):
            tokens.read_token(KEY, "miki", changed)


def test_a_token_of_another_town_or_key_is_refused() -> None:
    token = tokens.make_token(KEY, "tonosho", uuid.uuid4())
    with pytest.raises(InvalidInput, match="another municipality"):
        tokens.read_token(KEY, "miki", token)
    with pytest.raises(InvalidInput, match="signature"):
        tokens.read_token(b"x" * 32, "tonosho", token)


def test_short_codes_are_typed_forgivingly_and_avoid_look_alikes() -> None:
    code = tokens.new_short_code()
    assert len(code) == 8 and not set(code) & set("0O1I5S8B2Z")
    assert tokens.normalise_code(f" {code[:4].lower()}-{code[4:]} ") == code


def test_the_event_list_has_the_standard_columns() -> None:
    assert EVENT_HEADERS[:4] == ("全国地方公共団体コード", "ID", "地方公共団体名", "イベント名")
    assert len(set(EVENT_HEADERS)) == len(EVENT_HEADERS)
