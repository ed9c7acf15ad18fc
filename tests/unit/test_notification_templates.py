"""Notification templates: where each language comes from, strict rendering in a sandbox, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import InvalidInput
from core.notifications.templates import CORE_TEMPLATES, TemplateError, TemplateLibrary, check_template
from tests.notification_channel_plugin import TEMPLATES as POSTCARD_TEMPLATES

SAMPLE = {"name": "三木 花子", "town": "三木町"}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def library(tmp_path: Path) -> TemplateLibrary:
    return TemplateLibrary(tmp_path / "municipalities", [("postcard", POSTCARD_TEMPLATES)])


def test_each_language_comes_from_the_most_specific_place(library: TemplateLibrary, tmp_path: Path) -> None:
    plain = library.resolve("postcard.hello", None)
    assert plain.render("ja", SAMPLE).subject == "三木町からのお知らせ：三木 花子様"
    assert plain.render("en", SAMPLE).body == "Dear 三木 花子,\n\na postcard from 三木町 has arrived."

    # miki overrides Japanese only: English still comes from the plugin; other towns see no override.
    write(
        tmp_path / "municipalities" / "miki" / "templates",
        "postcard.hello",
        '[ja]\nsubject = "三木町より"\nbody = "はがき"\n',
    )
    miki = library.resolve("postcard.hello", "miki")
    assert miki.render("ja", SAMPLE).subject == "三木町より"
    assert miki.render("en", SAMPLE).subject == "News from 三木町 for 三木 花子"
    assert {locale: f.origin for locale, f in miki.by_locale.items()} == {
        "ja": "municipality",
        "en": "plugin:postcard",
    }
    assert library.resolve("postcard.hello", "sanuki").render("ja", SAMPLE).subject.startswith("三木町から")

    # A plugin folder provides only its own plugin's templates; the core's folder only core.*.
    with pytest.raises(TemplateError, match="no notification template named 'notices.borrowed'"):
        library.resolve("notices.borrowed", None)
    assert "notices.borrowed" not in library.names(None)
    assert {"core.message", "postcard.hello"} <= set(library.names("miki"))


def test_a_persons_language_then_the_municipalitys(library: TemplateLibrary, tmp_path: Path) -> None:
    write(tmp_path / "plugin", "postcard.only_ja", '[ja]\nsubject = "件名"\nbody = "本文"\n')
    only_ja = TemplateLibrary(tmp_path / "m", [("postcard", tmp_path / "plugin")]).resolve(
        "postcard.only_ja", None
    )
    both = library.resolve("postcard.hello", None)
    assert both.locale_for("en", "ja") == "en"
    assert both.locale_for("fr", "en") == "en"
    assert only_ja.locale_for("en", "en") == "ja"
    assert check_template(only_ja) == ["postcard.only_ja: no [en] table anywhere"]


def test_a_missing_variable_is_an_error_naming_template_language_and_variable(
    library: TemplateLibrary,
) -> None:
    hello = library.resolve("postcard.hello", None)
    with pytest.raises(
        TemplateError, match=r"postcard\.hello \[en\] \(.*postcard\.hello\.toml\): 'town' is undefined"
    ):
        hello.render("en", {"name": "x"})
    assert check_template(hello) == []
    assert check_template(hello, {"name": "x"}) == [
        f"template postcard.hello [{locale}] ({POSTCARD_TEMPLATES / 'postcard.hello.toml'}): 'town' is undefined"
        for locale in ("ja", "en")
    ]


def test_the_sandbox_refuses_to_reach_python_internals(tmp_path: Path) -> None:
    write(tmp_path / "p", "postcard.evil", '[ja]\nsubject = "x"\nbody = "{{ name.__class__.__mro__ }}"\n')
    evil = TemplateLibrary(tmp_path / "m", [("postcard", tmp_path / "p")]).resolve("postcard.evil", None)
    with pytest.raises(TemplateError, match="unsafe"):
        evil.render("ja", {"name": "x"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ja]\nsubject = 'x'\n", "missing required field `body`"),
        ("[ja]\nsubject = 'x'\nbody = 'y'\n[fr]\nsubject = 'x'\nbody = 'y'\n", "unknown field `fr`"),
        ("description = 'nothing'\n", r"has neither a \[ja\] nor an \[en\] table"),
        ("[ja\n", "not valid TOML"),
        ("[ja]\nsubject = '{{ name '\nbody = 'y'\n", r"\[ja\] subject, line 1"),
    ],
)
def test_a_malformed_file_is_an_error_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "p", "postcard.broken", text)
    library = TemplateLibrary(tmp_path / "m", [("postcard", tmp_path / "p")])
    with pytest.raises(TemplateError, match=message) as caught:
        library.resolve("postcard.broken", None)
    assert str(path) in caught.value.detail


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    import os

    path = write(tmp_path / "p", "postcard.live", '[ja]\nsubject = "一"\nbody = "x"\n')
    library = TemplateLibrary(tmp_path / "m", [("postcard", tmp_path / "p")])
    assert library.resolve("postcard.live", None).render("ja", {}).subject == "一"
    path.write_text('[ja]\nsubject = "二"\nbody = "x"\n', encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert library.resolve("postcard.live", None).render("ja", {}).subject == "二"


@given(
    st.one_of(st.text(max_size=40), st.sampled_from(["../core.message", "core.message/../../x", "core..x"]))
)
def test_no_name_reaches_outside_the_template_folders(name: str) -> None:
    library = TemplateLibrary(Path("/nonexistent"), [])
    try:
        found = library.resolve(name, "miki")
    except (InvalidInput, TemplateError):
        return
    assert found.name == name == "core.message"  # the one template a name can reach here


def test_every_core_template_renders_its_sample_in_both_languages() -> None:
    library = TemplateLibrary(Path("/nonexistent"), [])
    names = [p.name.removesuffix(".toml") for p in CORE_TEMPLATES.glob("*.toml")]
    assert "core.message" in names
    for name in names:
        assert check_template(library.resolve(name, None)) == [], name


def test_a_subject_is_one_line() -> None:
    library = TemplateLibrary(Path("/nonexistent"), [])
    rendered = library.resolve("core.message", None).render(
        "ja", {"subject": "一行目\n二行目", "body": "本文\n"}
    )
    assert (rendered.subject, rendered.body) == ("一行目 二行目", "本文")
