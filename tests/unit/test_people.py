"""A person record: normalised as Japanese forms ask, every problem reported at once, never a My Number."""

from __future__ import annotations

import unicodedata
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import InvalidInput
from core.identity.mynumber import HYPHENS
from core.identity.people import (
    PREFECTURES,
    Address,
    AddressInput,
    Person,
    PersonInput,
    normalise_email,
    normalise_kana,
    normalise_person,
    normalise_phone,
    normalise_postal_code,
    parse_person,
)

MY_NUMBER = "123456789018"  # TKC's published example; valid check digit


def form(**changes: Any) -> dict[str, Any]:
    """What the 高松市 form posts for one resident (the address is the city hall's)."""
    data: dict[str, Any] = {
        "display_name": "山田 花子",
        "family_name": "山田",
        "given_name": "花子",
        "family_name_kana": "やまだ",
        "given_name_kana": "ﾊﾅｺ",
        "email": "Hanako.Yamada@Example.JP",
        "phone": "０８７－８３９－２１１１",
        "address": {
            "postal_code": "〒７６０ー８５７１",
            "prefecture": "香川県",
            "city": "高松市",
            "town": "番町一丁目",
            "street": "8番15号",
            "building": None,
        },
        "residence_municipality": "takamatsu",
        "locale": "ja",
    }
    for key, value in changes.items():
        if key.startswith("address."):
            data["address"][key.removeprefix("address.")] = value
        else:
            data[key] = value
    return data


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_person(data)
    return {e["field"]: e["rule"] for e in caught.value.extra["errors"]}


# --- the whole record ---------------------------------------------------------------------------------------


def test_a_realistic_record_is_normalised() -> None:
    assert parse_person(form()) == Person(
        display_name="山田 花子",
        family_name="山田",
        given_name="花子",
        family_name_kana="ヤマダ",
        given_name_kana="ハナコ",
        email="hanako.yamada@example.jp",
        phone="0878392111",
        address=Address(
            postal_code="760-8571", prefecture="香川県", city="高松市", town="番町一丁目", street="8番15号"
        ),
        residence_municipality="takamatsu",
        locale="ja",
    )


def test_optional_parts_may_be_left_out_or_blank() -> None:
    person = parse_person(form(phone="  ", address=None, residence_municipality="", locale="en"))
    assert person.phone is None and person.address is None and person.residence_municipality is None
    assert person.locale == "en"
    minimal = {k: v for k, v in form().items() if k not in ("phone", "address", "residence_municipality")}
    assert parse_person(minimal).locale == "ja"


def test_every_problem_is_reported_at_once_with_its_dotted_path() -> None:
    data = form(
        family_name=" ",
        given_name_kana="花子",
        email="hanako@@example.jp",
        phone="087-839",
        **{"address.postal_code": "760-85", "address.prefecture": "香川", "address.street": "\x07"},
    )
    with pytest.raises(InvalidInput) as caught:
        parse_person(data)
    errors = {e["field"]: e["rule"] for e in caught.value.extra["errors"]}
    assert errors == {
        "family_name": "must not be empty",
        "given_name_kana": "must be katakana or hiragana (ー, ・ and spaces allowed), found '花'",
        "email": "must contain exactly one @",
        "phone": "must be 10 or 11 digits from the leading 0, got 6",
        "address.postal_code": "must be 7 digits, written NNN-NNNN or NNNNNNN",
        "address.prefecture": (
            "must be one of the 47 prefectures (都道府県) in full, such as 香川県, got '香川'"
        ),
        "address.street": "must not contain control characters",
    }
    assert list(errors) == [  # in the order of the form
        "family_name",
        "given_name_kana",
        "email",
        "phone",
        "address.postal_code",
        "address.prefecture",
        "address.street",
    ]
    assert caught.value.detail == "; ".join(f"{field}: {rule}" for field, rule in errors.items())
    assert caught.value.status_code == 422


def test_messages_do_not_repeat_personal_values() -> None:
    data = form(family_name="山田" * 30, email="hanako.yamada@@example.jp", phone="087-839-211")
    with pytest.raises(InvalidInput) as caught:
        parse_person(data)
    assert "山田山田" not in caught.value.detail
    assert "hanako" not in caught.value.detail and "839" not in caught.value.detail


def test_a_struct_built_in_code_is_checked_too() -> None:
    with pytest.raises(InvalidInput, match="locale: must be one of ja, en, got 'fr'"):
        normalise_person(msgspec.structs.replace(msgspec.convert(form(), PersonInput), locale="fr"))
    with pytest.raises(InvalidInput, match="residence_municipality: must be a municipality slug"):
        normalise_person(msgspec.convert(form(residence_municipality="Takamatsu City"), PersonInput))


def test_wrong_types_and_missing_keys_name_the_field() -> None:
    assert errors_of(form(**{"address.postal_code": 7608571})) == {
        "address.postal_code": "Expected `str`, got `int`"
    }
    # Types and keys are checked by msgspec, which stops at the first problem; the rules then report all.
    data = form()
    del data["given_name"]
    assert errors_of(data) == {"given_name": "required"}
    del data["address"]["city"]
    assert errors_of(data) == {"address.city": "required"}
    assert errors_of(form(**{"address.city": None})) == {"address.city": "Expected `str`, got `null`"}
    assert errors_of(form(locale="fr")) == {"locale": "Invalid enum value 'fr'"}
    assert errors_of([]) == {"(top level)": "Expected `object`, got `array`"}


# --- マイナンバー ------------------------------------------------------------------------------------------------

FREE_TEXT_FIELDS = [
    "display_name",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "email",
    "address.city",
    "address.town",
    "address.street",
    "address.building",
]


@pytest.mark.parametrize("field", FREE_TEXT_FIELDS)
def test_a_my_number_in_any_free_text_field_is_refused(field: str) -> None:
    value = (
        f"{MY_NUMBER}@example.jp"
        if field == "email"
        else f"メモ {MY_NUMBER[:4]} {MY_NUMBER[4:8]} {MY_NUMBER[8:]}"
    )
    with pytest.raises(InvalidInput) as caught:
        parse_person(form(**{field: value}))
    expected = f"{field}: must not contain a My Number (個人番号), found **** **** 9018; the platform never collects it"
    assert expected in caught.value.detail
    assert MY_NUMBER[:8] not in caught.value.detail and "1234 5678" not in caught.value.detail


def test_a_twelve_digit_number_that_is_not_a_my_number_is_left_alone() -> None:
    person = parse_person(form(**{"address.building": "倉庫 123456789010"}))  # check digit wrong
    assert person.address is not None and person.address.building == "倉庫 123456789010"


def test_no_struct_has_a_field_for_a_my_number() -> None:
    for struct in (PersonInput, AddressInput, Person, Address):
        for field in struct.__struct_fields__:
            normal = field.lower().replace("_", "")
            assert not any(word in normal for word in ("mynumber", "kojinbango", "individualnumber")), field
        assert struct.__struct_config__.forbid_unknown_fields, struct


@pytest.mark.parametrize("key", ["my_number", "myNumber", "individual_number", "kojin_bango"])
def test_an_unknown_key_such_as_my_number_is_rejected(key: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=f"unknown field `{key}`"):
        msgspec.json.decode(msgspec.json.encode(form() | {key: MY_NUMBER}), type=PersonInput)
    errors = errors_of(form() | {key: MY_NUMBER})
    assert errors == {key: "unknown key; the platform never collects My Number (個人番号)"}


def test_an_unknown_address_key_is_rejected_with_its_path() -> None:
    data = form()
    data["address"]["my_number"] = MY_NUMBER
    assert errors_of(data) == {
        "address.my_number": "unknown key; the platform never collects My Number (個人番号)"
    }
    data["address"] = {**form()["address"], "floor": "3"}
    assert errors_of(data) == {"address.floor": "unknown key"}


# --- postal code ----------------------------------------------------------------------------------------------

to_wide = {str(d): chr(ord("０") + d) for d in range(10)}


@st.composite
def written_postal_code(draw: st.DrawFn) -> tuple[str, str]:
    """Seven digits as someone might type them: each digit ASCII or full-width, any hyphen or none, 〒."""
    digits = draw(st.text(alphabet="0123456789", min_size=7, max_size=7))
    typed = [draw(st.sampled_from([d, to_wide[d]])) for d in digits]
    hyphen = draw(st.sampled_from(["", *HYPHENS]))
    mark = draw(st.sampled_from(["", "〒", "〒 ", " "]))
    return f"{mark}{''.join(typed[:3])}{hyphen}{''.join(typed[3:])} ", f"{digits[:3]}-{digits[3:]}"


@given(written_postal_code())
def test_any_way_of_writing_seven_digits_gives_nnn_nnnn(case: tuple[str, str]) -> None:
    typed, expected = case
    assert normalise_postal_code(typed) == expected


@given(st.text(alphabet="0123456789-", max_size=10).filter(lambda s: len(s.replace("-", "")) != 7))
def test_not_seven_digits_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be 7 digits"):
        normalise_postal_code(text)


@pytest.mark.parametrize(
    "text", ["76-08571", "7600-571", "760--8571", "７６０・８５７１", "٧٦٠-٨٥٧١", "760-857a"]
)
def test_misplaced_hyphens_and_other_scripts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be 7 digits"):
        normalise_postal_code(text)


# --- phone ------------------------------------------------------------------------------------------------------

separator = st.sampled_from(["", " ", "　", "(", ")", *HYPHENS])


@st.composite
def written_phone(draw: st.DrawFn) -> tuple[str, str]:
    """A domestic number typed with any separators, full-width digits, or as +81 without its 0."""
    rest = draw(st.text(alphabet="0123456789", min_size=9, max_size=10).filter(lambda s: s[0] != "0"))
    number = "0" + rest
    digits = number[1:] if draw(st.booleans()) else number
    typed = "".join(draw(st.sampled_from([d, to_wide[d]])) + draw(separator) for d in digits)
    prefix = (
        draw(st.sampled_from(["+81 ", "+81", "＋８１－", "+81 (0)"])) if len(digits) < len(number) else ""
    )
    return prefix + typed, number


@given(written_phone())
def test_any_way_of_writing_a_japanese_number_gives_its_digits(case: tuple[str, str]) -> None:
    typed, expected = case
    assert normalise_phone(typed) == expected


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        ("087-839-211", "10 or 11 digits"),
        ("090-1234-56789", "10 or 11 digits"),
        ("+1 415 555 0100", "Japanese number"),
        ("00 1 415 555 0100", "Japanese number"),
        ("87-839-2111", "Japanese number"),
        ("087-839-2111 内線12", "must be digits"),
        ("", "must be digits"),
    ],
)
def test_phone_numbers_that_are_not_japanese_numbers_are_refused(typed: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        normalise_phone(typed)


# --- readings -------------------------------------------------------------------------------------------------

hiragana = st.characters(min_codepoint=0x3041, max_codepoint=0x3096)


def katakana_by_name(c: str) -> str:
    """The katakana a hiragana letter stands for, found by its Unicode name (HIRAGANA LETTER X -> KATAKANA ...)."""
    return unicodedata.lookup(unicodedata.name(c).replace("HIRAGANA", "KATAKANA"))


@given(st.text(hiragana, min_size=1, max_size=30))
def test_any_hiragana_becomes_the_same_katakana(text: str) -> None:
    assert normalise_kana(text) == "".join(katakana_by_name(c) for c in text)


@given(st.text(st.characters(min_codepoint=0x30A1, max_codepoint=0x30FA), min_size=1, max_size=30))
def test_katakana_is_kept_as_it_is(text: str) -> None:
    assert normalise_kana(text) == text


# ･ (U+FF65) .. ﾝ (U+FF9D): the half-width katakana letters, middle dot and prolonged sound mark.
half_width = st.characters(min_codepoint=0xFF65, max_codepoint=0xFF9D)


@given(st.text(half_width, min_size=1, max_size=30).filter(lambda s: set(s) - {"･", "ｰ"}))
def test_half_width_katakana_becomes_full_width(text: str) -> None:
    by_name = "".join(unicodedata.lookup(unicodedata.name(c).removeprefix("HALFWIDTH ")) for c in text)
    assert normalise_kana(text) == by_name


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("やまだ", "ヤマダ"),
        ("ﾔﾏﾀﾞ", "ヤマダ"),
        ("ｳﾞｨｸﾄﾘｱ", "ヴィクトリア"),
        ("ゔぃくとりあ", "ヴィクトリア"),
        ("スミス・ジョン", "スミス・ジョン"),
        ("ｽﾐｽ･ｼﾞｮﾝ", "スミス・ジョン"),
        ("こーへー", "コーヘー"),
        ("ｺｰﾍｰ", "コーヘー"),
        ("  ファン   デル　ベルフ ", "ファン\u3000デル\u3000ベルフ"),
        ("さゝき", "サヽキ"),
        ("か\u3099", "ガ"),  # a combining dakuten, as macOS file names and some IMEs send
    ],
)
def test_readings_as_people_type_them(typed: str, stored: str) -> None:
    assert normalise_kana(typed) == stored


def is_kana_after_nfkc(c: str) -> bool:
    return any(0x3041 <= ord(x) <= 0x30FF or x.isspace() for x in unicodedata.normalize("NFKC", c))


@given(
    st.text(hiragana, max_size=5),
    st.one_of(
        st.characters(
            categories=["Lo", "Lm", "Lu", "Ll", "Nd", "Po", "Ps", "Pe"]
        ),  # kanji, latin, digits, 、。「」
        st.sampled_from("々〆ヶ月"),
    ).filter(lambda c: not is_kana_after_nfkc(c)),
    st.text(hiragana, max_size=5),
)
def test_anything_but_kana_is_refused(before: str, bad: str, after: str) -> None:
    with pytest.raises(ValueError, match="must be katakana or hiragana"):
        normalise_kana(before + bad + after)


@pytest.mark.parametrize(
    ("typed", "found"), [("山田", "山"), ("Yamada", "Y"), ("ヤマダ1", "1"), ("やま。", "。")]
)
def test_the_offending_character_is_named(typed: str, found: str) -> None:
    with pytest.raises(ValueError, match=f"found '{found}'"):
        normalise_kana(typed)


@pytest.mark.parametrize(
    ("typed", "rule"), [("", "must not be empty"), ("　", "must not be empty"), ("ー・", "kana letter")]
)
def test_empty_readings_are_refused(typed: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        normalise_kana(typed)


def test_a_reading_longer_than_its_column_is_refused() -> None:
    assert normalise_kana("ア" * 100) == "ア" * 100
    with pytest.raises(ValueError, match="at most 100 characters, got 101"):
        normalise_kana("あ" * 101)


# --- names, e-mail, prefectures -------------------------------------------------------------------------------


def test_names_are_trimmed_and_otherwise_kept_as_typed() -> None:
    # U+F9DC is a CJK compatibility ideograph for 隆: NFC would rewrite it to U+9686, and a registered name must
    # keep the character it was registered with. Full-width latin stays full-width too.
    compat = "\uf9dc"
    assert unicodedata.normalize("NFC", compat) != compat
    person = parse_person(form(family_name="\u3000髙﨑 ", given_name=f"{compat}ＡＢＣ"))
    assert person.family_name == "髙﨑" and person.given_name == f"{compat}ＡＢＣ"


@pytest.mark.parametrize("bad", ["\x00", "\u200b", "\u202e", "\u2028", "\t"])
def test_control_and_format_characters_inside_a_name_are_refused(bad: str) -> None:
    assert errors_of(form(given_name=f"花{bad}子")) == {"given_name": "must not contain control characters"}


def test_name_lengths_follow_the_columns() -> None:
    parse_person(form(family_name="山" * 50, display_name="山" * 100))
    assert errors_of(form(family_name="山" * 51, display_name="山" * 101)) == {
        "family_name": "must be at most 50 characters, got 51",
        "display_name": "must be at most 100 characters, got 101",
    }


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Hanako@Example.JP", "hanako@example.jp"),
        (" ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ ", "hanako@example.jp"),
        ("taro..yamada.@docomo.ne.jp", "taro..yamada.@docomo.ne.jp"),  # old carrier addresses are like this
        ("a+tag@sub.city.takamatsu.lg.jp", "a+tag@sub.city.takamatsu.lg.jp"),
        ("x@xn--eckwd4c7c.xn--zckzah", "x@xn--eckwd4c7c.xn--zckzah"),
    ],
)
def test_email_addresses_are_normalised(typed: str, stored: str) -> None:
    assert normalise_email(typed) == stored


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        ("hanako.example.jp", "exactly one @"),
        ("a@b@example.jp", "exactly one @"),
        ("@example.jp", "before @"),
        ("hana ko@example.jp", "before @"),
        ("はなこ@example.jp", "before @"),
        ("a" * 65 + "@example.jp", "before @"),
        ("a" * 64 + "@" + ("b" * 63 + ".") * 3 + "jp", "at most 254 characters, got 259"),
        ("hanako@localhost", "domain name"),
        ("hanako@example", "domain name"),
        ("hanako@-example.jp", "domain name"),
        ("hanako@example..jp", "domain name"),
        ("hanako@192.168.0.1", "domain name"),
        ("hanako@例え.jp", "domain name"),
    ],
)
def test_bad_email_addresses_are_refused(typed: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        normalise_email(typed)


def test_the_47_prefectures() -> None:
    assert len(PREFECTURES) == len(set(PREFECTURES)) == 47
    suffixes = [p[-1] for p in PREFECTURES]
    assert (suffixes.count("都"), suffixes.count("道"), suffixes.count("府"), suffixes.count("県")) == (
        1,
        1,
        2,
        43,
    )
    assert PREFECTURES[36] == "香川県"  # code 37
    for prefecture in PREFECTURES:
        parse_person(form(**{"address.prefecture": prefecture}))
