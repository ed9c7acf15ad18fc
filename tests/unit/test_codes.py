"""全国地方公共団体コード (JIS X 0402): the check digit, and what a valid code is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.tenancy.codes import check_digit, validate_local_government_code

# The eight members of the 瀬戸・高松広域連携中枢都市圏, as published by 総務省.
REAL_CODES = ["372013", "372064", "372072", "373222", "373249", "373419", "373648", "373877"]
# Codes from elsewhere whose sum leaves remainder 0 (新宿区: 11 - 0 = 11 -> 1) and 1 (神戸市: 11 - 1 = 10 -> 0):
# the two places where "the last digit of 11 minus the remainder" differs from "11 minus the remainder".
EDGE_CODES = ["131041", "281000", "130001", "011002"]

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)
prefecture = st.integers(min_value=1, max_value=47).map(lambda n: f"{n:02d}")
three_digits = st.text(alphabet="0123456789", min_size=3, max_size=3)
prefix_in_prefecture = st.tuples(prefecture, three_digits).map("".join)
any_prefix = st.text(alphabet="0123456789", min_size=5, max_size=5)


def reference_check_digit(first_five: str) -> int:
    """JIS X 0402 written out the long way: weights 6, 5, 4, 3, 2; the ones digit of 11 minus (sum mod 11)."""
    total = sum(int(first_five[i]) * (6 - i) for i in range(5))
    return int(str(11 - total % 11)[-1])


@given(any_prefix)
def test_check_digit_follows_jis_x_0402(first_five: str) -> None:
    assert check_digit(first_five) == reference_check_digit(first_five)


@given(prefix_in_prefecture)
def test_the_computed_digit_validates_and_every_other_digit_is_rejected(first_five: str) -> None:
    good = check_digit(first_five)
    assert validate_local_government_code(f"{first_five}{good}") is None
    for wrong in set(range(10)) - {good}:
        problem = validate_local_government_code(f"{first_five}{wrong}")
        assert problem is not None
        assert "check digit" in problem and f"must be {good}" in problem


@pytest.mark.parametrize("code", REAL_CODES + EDGE_CODES)
def test_real_codes_are_valid(code: str) -> None:
    assert validate_local_government_code(code) is None


@given(st.sampled_from(REAL_CODES), st.integers(min_value=1, max_value=9))
def test_a_mistyped_check_digit_of_a_real_code_is_caught(code: str, shift: int) -> None:
    mistyped = code[:5] + str((int(code[5]) + shift) % 10)
    assert validate_local_government_code(mistyped) is not None


fullwidth = str.maketrans("0123456789", "０１２３４５６７８９")
non_ascii_digit = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


@given(st.sampled_from(REAL_CODES), st.integers(min_value=0, max_value=5), non_ascii_digit)
def test_non_ascii_digits_are_rejected(code: str, position: int, digit: str) -> None:
    # int() would happily read "３" or "٣" as 3: the rule is ASCII digits only.
    mixed = code[:position] + digit + code[position + 1 :]
    problem = validate_local_government_code(mixed)
    assert problem is not None and "6 ASCII digits" in problem and repr(mixed) in problem


@pytest.mark.parametrize("code", REAL_CODES)
def test_fullwidth_codes_are_rejected(code: str) -> None:
    wide = code.translate(fullwidth)
    assert wide.isdigit()  # what a naive check would accept
    assert "6 ASCII digits" in (validate_local_government_code(wide) or "")
    with pytest.raises(ValueError, match="5 ASCII digits"):
        check_digit(wide[:5])


@given(st.text(alphabet="0123456789", max_size=12).filter(lambda s: len(s) != 6))
def test_wrong_lengths_are_rejected(code: str) -> None:
    problem = validate_local_government_code(code)
    assert problem is not None and "6 ASCII digits" in problem and repr(code) in problem


@given(st.text(max_size=8).filter(lambda s: not (len(s) == 5 and s.isascii() and s.isdigit())))
def test_check_digit_refuses_anything_but_five_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError, match="5 ASCII digits"):
        check_digit(text)


@given(st.one_of(st.just(0), st.integers(min_value=48, max_value=99)), three_digits)
def test_prefecture_outside_01_to_47_is_rejected(pref: int, rest: str) -> None:
    first_five = f"{pref:02d}{rest}"
    code = f"{first_five}{check_digit(first_five)}"  # a correct check digit: only the prefecture is wrong
    problem = validate_local_government_code(code)
    assert problem is not None
    assert "prefecture" in problem and "01..47" in problem and f"{pref:02d}" in problem
