"""Municipality manifests: every shipped file loads; every mistake is reported with its file and key path."""

from __future__ import annotations

import copy
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exceptions import InvalidInput
from core.settings import PROJECT_ROOT
from core.tenancy.manifest import Manifest, load_manifest, load_manifests, parse_manifest

MANIFESTS = sorted((PROJECT_ROOT / "municipalities").glob("*.toml"))
SOURCE = "/srv/tsunagu/municipalities/miki.toml"
FIELDS = ("slug", "name", "name_en", "code", "hosts", "timezone", "locale", "plugins")


def valid() -> dict[str, Any]:
    return {
        "slug": "miki",
        "name": "三木町",
        "name_en": "Miki Town",
        "code": "373419",
        "hosts": ["miki.localhost", "www.town.miki.lg.jp", "miki.localhost:8000"],
        "timezone": "Asia/Tokyo",
        "locale": "ja",
        "plugins": {"notices": {"enabled": True, "page_size": 20}, "opinion_box": {"enabled": False}},
    }


# --- the shipped manifests ----------------------------------------------------------------------------------


def test_every_manifest_in_municipalities_loads() -> None:
    manifests = load_manifests(MANIFESTS)
    assert len(manifests) == 8
    assert {m.slug for m in manifests} == {p.stem for p in MANIFESTS}
    assert {m.code for m in manifests} == {
        "372013",
        "372064",
        "372072",
        "373222",
        "373249",
        "373419",
        "373648",
        "373877",
    }
    for m in manifests:
        assert m.hosts and m.timezone == "Asia/Tokyo" and m.locale == "ja"
        assert m.plugins["notices"].enabled


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_a_manifest_survives_a_round_trip_through_toml(path: Path) -> None:
    manifest = load_manifest(path)
    again = parse_manifest(tomllib.loads(tomli_w.dumps(manifest.to_toml_dict())), str(path))
    assert again == manifest


def test_the_valid_example_is_valid() -> None:
    manifest = parse_manifest(valid(), SOURCE)
    assert isinstance(manifest, Manifest)
    assert manifest.hosts == ("miki.localhost", "www.town.miki.lg.jp", "miki.localhost:8000")
    assert manifest.plugins["notices"].settings == {"page_size": 20}


# --- one mistake at a time ----------------------------------------------------------------------------------

small_table = st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
small_list = st.lists(st.integers(), max_size=2)
a_float = st.floats(allow_nan=False)
not_a_string = st.one_of(st.integers(), st.booleans(), a_float, st.none(), small_list, small_table)
not_a_list = st.one_of(st.integers(), st.booleans(), st.text(), st.none(), small_table)
not_a_table = st.one_of(st.integers(), st.booleans(), st.text(), st.none(), small_list)
not_a_bool = st.one_of(st.integers(), st.text(), a_float, st.none(), st.lists(st.booleans(), max_size=2))
host_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)


@st.composite
def mutation(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid manifest with exactly one mistake, and the key path the error must name."""
    data = valid()
    kind = draw(
        st.sampled_from(
            [
                "wrong type",
                "host of wrong type",
                "plugin table of wrong type",
                "unknown key",
                "bad slug",
                "bad host",
                "duplicate host",
                "bad timezone",
                "bad locale",
                "non-bool enabled",
                "bad plugin name",
                "empty name",
            ]
        )
    )
    if kind == "wrong type":
        field = draw(st.sampled_from(FIELDS))
        strategy = {"hosts": not_a_list, "plugins": not_a_table}.get(field, not_a_string)
        data[field] = draw(strategy)
        return data, field
    if kind == "host of wrong type":
        index = draw(st.integers(0, len(data["hosts"])))
        data["hosts"].insert(index, draw(not_a_string))
        return data, f"hosts.{index}"
    if kind == "plugin table of wrong type":
        data["plugins"]["notices"] = draw(not_a_table)
        return data, "plugins.notices"
    if kind == "unknown key":
        key = draw(st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True).filter(lambda k: k not in FIELDS))
        data[key] = draw(st.one_of(st.text(), st.integers()))
        return data, key
    if kind == "bad slug":
        data["slug"] = draw(
            st.one_of(
                st.sampled_from(
                    ["", "m", "Miki", "1miki", "-miki", "miki_town", "miki\n", "みき", "m" * 41, "miki town"]
                ),
                st.text(max_size=45).filter(lambda s: re.fullmatch(r"[a-z][a-z0-9-]{1,39}", s) is None),
            )
        )
        return data, "slug"
    if kind == "bad host":
        bad = draw(
            st.one_of(
                st.sampled_from(
                    [
                        "",
                        " ",
                        "-miki.localhost",
                        "miki-.localhost",
                        "miki..localhost",
                        ".miki",
                        "miki.",
                        "miki.localhost:",
                        "miki.localhost:123456",
                        "http://miki.localhost",
                        "a" * 64 + ".jp",
                        "miki.localhost\n.evil",
                    ]
                ),
                st.tuples(host_chars, st.sampled_from(list(" _/@!?#*:%みき\t\n")), host_chars)
                .map("".join)
                .filter(lambda h: re.fullmatch(r"[a-z0-9.-]+:\d{1,5}", h) is None),
            )
        )
        index = draw(st.integers(0, len(data["hosts"])))
        data["hosts"].insert(index, bad)
        return data, f"hosts.{index}"
    if kind == "duplicate host":
        again = draw(st.sampled_from(["MIKI.localhost", " miki.localhost", "Www.Town.Miki.LG.JP"]))
        data["hosts"].append(again)
        return data, f"hosts.{len(data['hosts']) - 1}"
    if kind == "bad timezone":
        data["timezone"] = draw(
            st.one_of(
                st.sampled_from(
                    ["", "Tokyo", "Asia/Tokio", "Asia/Tokyo ", "../Asia/Tokyo", "+09:00", "UTC+9", "Asia"]
                ),
                st.text(max_size=30).filter(lambda s: s not in available_timezones()),
            )
        )
        return data, "timezone"
    if kind == "bad locale":
        data["locale"] = draw(st.text(max_size=6).filter(lambda s: s not in ("ja", "en")))
        return data, "locale"
    if kind == "non-bool enabled":
        data["plugins"]["notices"]["enabled"] = draw(not_a_bool)
        return data, "plugins.notices.enabled"
    if kind == "bad plugin name":
        name = draw(st.sampled_from(["Notices", "n", "1notices", "notices-box", "notices\n", "お知らせ"]))
        data["plugins"][name] = {"enabled": True}
        return data, f"plugins.{name}"
    field = draw(st.sampled_from(["name", "name_en"]))
    data[field] = draw(st.sampled_from(["", " ", "\u3000", "\n"]))
    return data, field


@settings(max_examples=300)
@given(mutation())
def test_one_mistake_is_reported_with_the_source_and_the_key_path(case: tuple[dict[str, Any], str]) -> None:
    data, key = case
    before = copy.deepcopy(data)
    with pytest.raises(InvalidInput) as caught:
        parse_manifest(data, SOURCE)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: "), message
    assert key in message, f"{key!r} not named in {message!r}"
    assert caught.value.extra.get("source") == SOURCE
    assert data == before  # validation does not touch its input


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=2, max_size=40).filter(
        lambda s: s[0].isalpha()
    )
)
def test_any_well_formed_slug_is_accepted(slug: str) -> None:
    assert parse_manifest({**valid(), "slug": slug}, SOURCE).slug == slug


@given(st.sampled_from(sorted(available_timezones())))
def test_every_iana_time_zone_is_accepted(zone: str) -> None:
    assert parse_manifest({**valid(), "timezone": zone}, SOURCE).timezone == zone


# --- files --------------------------------------------------------------------------------------------------


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def other(**changes: Any) -> dict[str, Any]:
    data = {
        **valid(),
        "slug": "sanuki",
        "name": "さぬき市",
        "name_en": "Sanuki City",
        "code": "372064",
        "hosts": ["sanuki.localhost"],
    }
    return {**data, **changes}


@pytest.mark.parametrize(
    ("second", "what"),
    [
        (lambda: other(code="373419"), "code '373419'"),
        (lambda: other(hosts=["sanuki.localhost", "www.town.miki.lg.jp"]), "'www.town.miki.lg.jp'"),
        (lambda: other(hosts=["MIKI.LOCALHOST"]), "'miki.localhost'"),
    ],
    ids=["code", "host", "host in another case"],
)
def test_a_code_or_host_used_by_two_files_is_rejected_naming_both(
    tmp_path: Path, second: Any, what: str
) -> None:
    first = write(tmp_path / "miki.toml", valid())
    duplicate = write(tmp_path / "sanuki.toml", second())
    with pytest.raises(InvalidInput) as caught:
        load_manifests([first, duplicate])
    message = str(caught.value)
    assert str(first) in message and str(duplicate) in message and what in message


def test_a_slug_used_by_two_files_is_rejected_naming_both(tmp_path: Path) -> None:
    first = write(tmp_path / "region-a" / "miki.toml", valid())
    second = write(tmp_path / "region-b" / "miki.toml", other(slug="miki"))
    with pytest.raises(InvalidInput) as caught:
        load_manifests([first, second])
    message = str(caught.value)
    assert str(first) in message and str(second) in message and "slug 'miki'" in message


def test_the_slug_must_match_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path / "mikitown.toml", valid())
    with pytest.raises(InvalidInput, match="slug: must match the file name 'mikitown', got 'miki'") as caught:
        load_manifest(path)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "text",
    [
        'slug = "miki"\nslug = "miki"\n',
        "slug = \n",
        "[plugins.notices\nenabled = true\n",
        'name = "三木町\n',
        'hosts = ["a", ]]\n',
        "code = 373419x\n",
    ],
    ids=[
        "duplicate key",
        "missing value",
        "unclosed table",
        "unclosed string",
        "stray bracket",
        "bad number",
    ],
)
def test_toml_syntax_errors_name_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "miki.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid TOML") as caught:
        load_manifest(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "miki.toml"
    path.write_bytes('name = "三木町"\n'.encode("shift_jis"))
    with pytest.raises(InvalidInput, match="cannot read") as caught:
        load_manifest(path)
    assert str(caught.value).startswith(f"{path}: ")


original_text = (PROJECT_ROOT / "municipalities" / "miki.toml").read_text(encoding="utf-8")


@settings(max_examples=150)
@given(st.data())
def test_whatever_a_file_holds_any_error_names_the_file(data: st.DataObject) -> None:
    """Edit the real manifest at random (cut, insert, replace): it loads, or the error names the file."""
    position = data.draw(st.integers(0, len(original_text)))
    cut = data.draw(st.integers(0, 20))
    alphabet = st.sampled_from(list('[]="\n .#x1ー')) | st.characters()
    inserted = data.draw(st.text(alphabet=alphabet, max_size=5))
    text = original_text[:position] + inserted + original_text[position + cut :]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "miki.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            manifest = load_manifest(path)
        except InvalidInput as exc:
            assert str(exc).startswith(f"{path}: "), str(exc)
        else:
            assert manifest.slug == "miki"
