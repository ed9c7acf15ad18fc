"""Pure rules of the currency plugin: settings validation, signed payment codes, suppression of small cells."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import InvalidInput, PluginError
from core.plugins.settings import validate_plugin_settings
from plugins.currency import plugin, services
from plugins.currency.config import CurrencySettings
from plugins.currency.services._analytics import _Cell, age_band

KEY = b"k" * 32
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"currencies": []}, "plugins.currency.currencies: must name at least one currency"),
        ({"currencies": [{"code": "miki", "name": "x"}]}, "plugins.currency.currencies.0: code must be"),
        (
            {"currencies": [{"code": "MIKI", "name": "x", "max_daily": 10, "max_payment": 20}]},
            "currencies.0: max_daily must be at least max_payment (20)",
        ),
        (
            {"currencies": [{"code": "MIKI", "name": "x", "fee_rate_bp": 2000}]},
            "currencies.0: fee_rate_bp must be between 0 and 1000",
        ),
        (
            {"currencies": [{"code": "MIKI", "name": "x"}], "award_currency": "YEN"},
            "plugins.currency.award_currency: must be one of MIKI",
        ),
        ({"analytics_min_people": 1}, "plugins.currency.analytics_min_people: must be between 3 and 1000"),
        (
            {"districts": {"井戸": ["7610701"]}},
            "districts.井戸: postal code '7610701' must be written NNN-NNNN",
        ),
        ({"districts": {"a": ["761-0701"], "b": ["761-0701"]}}, "in both a and b"),
        ({"limit": 3}, "plugins.currency.limit: unknown setting"),
    ],
)
def test_settings_are_refused_naming_the_field_and_the_rule(raw: dict[str, object], message: str) -> None:
    with pytest.raises(PluginError, match=re.escape(message)):
        validate_plugin_settings(plugin, raw)


def test_default_settings_run_one_points_currency() -> None:
    settings = msgspec.convert({}, CurrencySettings)
    assert [c.code for c in settings.currencies] == ["POINT"] and settings.default_award_currency == "POINT"


def sale(**overrides: object) -> str:
    values: dict[str, object] = {
        "municipality": "miki",
        "merchant_id": uuid.UUID(int=7),
        "currency": "MIKI",
        "amount": 800,
        "expires_at": NOW + timedelta(minutes=5),
        "sale_id": uuid.UUID(int=9),
    }
    return services.make_code(KEY, **{**values, **overrides})  # type: ignore[arg-type]


def test_a_genuine_code_reads_back() -> None:
    code = services.read_code(KEY, sale(), municipality="miki", now=NOW)
    assert (code.merchant_id, code.amount, code.sale_id) == (uuid.UUID(int=7), 800, uuid.UUID(int=9))
    with pytest.raises(InvalidInput, match="another municipality"):
        services.read_code(KEY, sale(municipality="takamatsu"), municipality="miki", now=NOW)
    with pytest.raises(InvalidInput, match="expired"):
        services.read_code(KEY, sale(), municipality="miki", now=NOW + timedelta(minutes=6))
    with pytest.raises(InvalidInput, match="signature"):
        services.read_code(b"x" * 32, sale(), municipality="miki", now=NOW)


@given(position=st.integers(0, 10_000), replacement=st.characters(codec="ascii", categories=["L", "N", "P"]))
def test_a_code_changed_anywhere_is_refused(position: int, replacement: str) -> None:
    code = sale()
    index = position % len(code)
    altered = code[:index] + replacement + code[index + 1 :]
    if altered == code:
        return
    with pytest.raises(InvalidInput, match="^code: "):
        services.read_code(KEY, altered, municipality="miki", now=NOW)


people = st.sets(st.integers(0, 30), min_size=1, max_size=15)


@given(
    cells=st.dictionaries(
        st.tuples(st.sampled_from("abcd"), st.sampled_from("xy"), st.just("d")), people, min_size=1
    ),
    k=st.integers(3, 12),
)
def test_suppression_leaves_no_small_cell_and_no_small_remainder(
    cells: dict[tuple[str, str, str], set[int]], k: int
) -> None:
    built = {key: _Cell(people={uuid.UUID(int=p) for p in members}) for key, members in cells.items()}
    hidden = services.suppress(built, k)
    everyone = set().union(*(c.people for c in built.values()))
    for key, cell in built.items():
        assert key in hidden or len(cell.people) >= k  # no published cell under k
    if hidden and len(everyone) >= k:  # the total is published: what it gives away covers k people at least
        assert len(set().union(*(built[key].people for key in hidden))) >= k


def test_age_bands() -> None:
    assert [age_band(y, 2026) for y in (2010, 2006, 1997, 1946, 1900, None)] == [
        "0-19", "20-29", "20-29", "80+", "80+", "unknown"
    ]  # fmt: skip
