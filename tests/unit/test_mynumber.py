"""マイナンバー (個人番号): the check digit of 総務省令第八十五号 第五条, and finding a number in free text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.identity.mynumber import (
    HYPHENS,
    SPACES,
    contains_individual_number,
    individual_number_check_digit,
    is_individual_number,
)

# Published worked examples: TKC's Q&A (123456789018 is valid; 92345678901 takes 4) and a Qiita article checking
# the 省令 formula (983205673214 valid, 983205673210 not).
PUBLISHED_VALID = ["123456789018", "983205673214", "923456789014"]
PUBLISHED_INVALID = ["983205673210", "923456789018", "123456789010"]

eleven_digits = st.text(alphabet="0123456789", min_size=11, max_size=11)
fullwidth = str.maketrans("0123456789", "０１２３４５６７８９")
# Text around a number: anything but decimal digits, and not ending in "+" (a phone number's country code).
surrounding = st.text(st.characters(exclude_categories=["Nd", "Cs"]), max_size=20)
prefix = surrounding.filter(lambda s: not s.endswith(("+", "＋")))


def remainder(first_eleven: str) -> int:
    """J-LIS's reading of the formula: weights 6,5,4,3,2,7,6,5,4,3,2 from the left, sum mod 11."""
    return sum(int(d) * w for d, w in zip(first_eleven, (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11


def reference_check_digit(first_eleven: str) -> int:
    """11 minus the remainder, and 0 where that remainder is 0 or 1 (the 省令's "≦1 の場合は、0")."""
    return 0 if remainder(first_eleven) in (0, 1) else 11 - remainder(first_eleven)


def valid_number(first_eleven: str) -> str:
    return first_eleven + str(reference_check_digit(first_eleven))


valid_numbers = eleven_digits.map(valid_number)
invalid_numbers = st.tuples(eleven_digits, st.integers(1, 9)).map(
    lambda t: t[0] + str((reference_check_digit(t[0]) + t[1]) % 10)
)


def grouped(number: str, first_gap: str, second_gap: str) -> str:
    return f"{number[:4]}{first_gap}{number[4:8]}{second_gap}{number[8:]}"


hyphen = st.sampled_from(HYPHENS)
space = st.sampled_from(SPACES)
gap = st.one_of(st.just(""), space, hyphen, st.tuples(space, hyphen, space).map("".join))


# --- the check digit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", PUBLISHED_VALID)
def test_published_numbers_are_valid(number: str) -> None:
    assert is_individual_number(number)
    assert individual_number_check_digit(number[:11]) == int(number[11])


@pytest.mark.parametrize("number", PUBLISHED_INVALID)
def test_published_mistypes_are_invalid(number: str) -> None:
    assert not is_individual_number(number)


def test_remainders_zero_and_one_give_check_digit_zero() -> None:
    by_remainder: dict[int, str] = {}
    for n in range(2000):
        by_remainder.setdefault(remainder(f"{n:011d}"), f"{n:011d}")
    assert {0, 1} <= by_remainder.keys()
    assert individual_number_check_digit(by_remainder[0]) == 0
    assert individual_number_check_digit(by_remainder[1]) == 0  # not 10: one digit, so the 省令 says 0
    assert individual_number_check_digit(by_remainder[2]) == 9


@given(eleven_digits)
def test_check_digit_follows_the_formula(first_eleven: str) -> None:
    assert individual_number_check_digit(first_eleven) == reference_check_digit(first_eleven)


@given(valid_numbers, st.integers(0, 10), st.integers(1, 9))
def test_one_mistyped_digit_is_caught_unless_both_remainders_are_0_or_1(
    number: str, position: int, shift: int
) -> None:
    # Weights 2..7 are prime to 11, so one wrong digit always changes the remainder; but remainders 0 and 1
    # share check digit 0, the formula's known blind spot (報道: 仕様上入力ミスを検知できない場合がある).
    mistyped = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1 :]
    blind_spot = {remainder(number[:11]), remainder(mistyped[:11])} <= {0, 1}
    assert is_individual_number(mistyped) == blind_spot


@given(st.text(max_size=13).filter(lambda s: not (len(s) == 11 and s.isascii() and s.isdigit())))
def test_check_digit_refuses_anything_but_eleven_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError, match="11 ASCII digits"):
        individual_number_check_digit(text)


def test_is_individual_number_wants_twelve_ascii_digits() -> None:
    assert not is_individual_number("1234 5678 9018")
    assert not is_individual_number("123456789018".translate(fullwidth))
    assert not is_individual_number("12345678901")


# --- finding one in text ------------------------------------------------------------------------------------


@given(prefix, valid_numbers, surrounding)
def test_a_valid_number_in_any_text_is_found_and_masked(before: str, number: str, after: str) -> None:
    found = contains_individual_number(f"{before}{number}{after}")
    assert found == f"**** **** {number[8:]}"
    assert number[:8] not in found


@given(prefix, valid_numbers, surrounding, gap, gap, st.booleans())
def test_grouped_and_full_width_numbers_are_found(
    before: str, number: str, after: str, first: str, second: str, wide: bool
) -> None:
    written = grouped(number, first, second)
    if wide:
        written = written.translate(fullwidth)
    assert contains_individual_number(f"{before}{written}{after}") == f"**** **** {number[8:]}"


@pytest.mark.parametrize(
    "text",
    [
        "個人番号は123456789018です",
        "マイナンバー：１２３４ ５６７８ ９０１８",
        "1234-5678-9018",
        "1234－5678－9018",
        "1234ー5678ー9018",
        "１２３４　５６７８　９０１８",
        "番号 1234 - 5678 - 9018 を記入",
        "山田123456789018太郎",
    ],
)
def test_realistic_ways_of_writing_it_are_found(text: str) -> None:
    assert contains_individual_number(text) == "**** **** 9018"


@given(prefix, invalid_numbers, surrounding, gap, gap)
def test_twelve_digits_with_a_wrong_check_digit_are_not_flagged(
    before: str, number: str, after: str, first: str, second: str
) -> None:
    assert contains_individual_number(f"{before}{grouped(number, first, second)}{after}") is None


@given(
    st.text(alphabet="0123456789", min_size=1, max_size=4),
    valid_numbers,
    st.text(alphabet="0123456789", max_size=4),
    st.booleans(),
)
def test_digits_inside_a_longer_run_are_not_a_number(left: str, number: str, right: str, swap: bool) -> None:
    # 13 or more digits: a 法人番号 (13), a card or an account number, never a My Number.
    run = f"{right}{number}{left}" if swap else f"{left}{number}{right}"
    assert contains_individual_number(f"番号 {run} です") is None


@given(valid_numbers)
def test_twelve_digits_after_a_plus_are_a_phone_number(number: str) -> None:
    assert contains_individual_number(f"電話 +{number}") is None
    assert contains_individual_number(f"電話 ＋{number}") is None
    assert contains_individual_number(f"電話 {number}") is not None


def test_a_number_after_a_wrong_one_is_still_found() -> None:
    # Candidates overlap: the first twelve digits of a 4-4-4-4 group are wrong, the last twelve are right.
    assert contains_individual_number("0000-1234-5678-9018") == "**** **** 9018"
    assert contains_individual_number("123456789010 and 983205673214") == "**** **** 3214"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "香川県高松市番町一丁目8番15号",
        "電話 087-839-2111",
        "注文番号 1234-5678",
        "〒760-8571",
        "12345678901",  # eleven digits: a 住民票コード is not an individual number
        "1234567890180",  # thirteen
        "1234 5678 901 8",  # not 4-4-4
    ],
)
def test_ordinary_text_is_not_flagged(text: str) -> None:
    assert contains_individual_number(text) is None
