"""Synthetic municipalities for the scale benchmark: as many as Japan has, each a manifest the platform accepts,
none clashing with another or with the region's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.synthetic import JAPAN, synthetic_codes, synthetic_manifests, write_manifests
from core.settings import PROJECT_ROOT
from core.tenancy.codes import validate_local_government_code
from core.tenancy.manifest import load_manifests

REGION = load_manifests(sorted((PROJECT_ROOT / "municipalities").glob("*.toml")))
five_digit_prefixes = st.tuples(st.integers(1, 47), st.integers(100, 999)).map(
    lambda t: f"{t[0]:02d}{t[1]:03d}"
)


def test_every_municipality_in_japan_beside_the_region_is_valid_and_unique() -> None:
    synthetic = synthetic_manifests(JAPAN - len(REGION), {"notices": {"page_size": 20}}, beside=REGION)
    everyone = [*REGION, *synthetic]
    assert len(everyone) == JAPAN
    for key in ("slug", "code"):
        assert len({getattr(m, key) for m in everyone}) == JAPAN, key
    hosts = [h for m in everyone for h in m.hosts]
    assert len(hosts) == len(set(hosts)) >= JAPAN
    assert all(validate_local_government_code(m.code) is None for m in synthetic)
    assert {m.code[:2] for m in synthetic} == {f"{p:02d}" for p in range(1, 48)}
    assert all(
        m.plugins["notices"].enabled and m.plugins["notices"].settings == {"page_size": 20} for m in synthetic
    )


def test_written_manifests_load_back_as_files_the_apply_command_reads(tmp_path: Path) -> None:
    synthetic = synthetic_manifests(60, {"notices": {}}, beside=REGION)
    paths = write_manifests(synthetic, tmp_path / "manifests")
    assert load_manifests(paths) == synthetic
    assert [p.stem for p in paths] == [m.slug for m in synthetic]


@settings(max_examples=30, deadline=None)
@given(count=st.integers(1, JAPAN), taken=st.lists(five_digit_prefixes, max_size=40))
def test_codes_are_distinct_valid_and_avoid_the_codes_already_taken(count: int, taken: list[str]) -> None:
    taken_codes = [f"{prefix}0" for prefix in taken]  # the check digit does not matter: the number is taken
    codes = list(synthetic_codes(count, taken=taken_codes))
    assert len(codes) == len(set(codes)) == count
    assert all(validate_local_government_code(code) is None for code in codes)
    assert not {c[:5] for c in codes} & set(taken)


def test_more_codes_than_the_prefectures_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        list(synthetic_codes(47 * 800))
