"""マイナンバー (個人番号): find one in free text, so that a form can refuse it.

The platform never collects or stores an individual number: it is not a 個人番号利用事務実施者, and a number
typed into a name or address field by mistake would make every copy of that record 特定個人情報. So free-text
fields of a person are checked with :func:`contains_individual_number` and refused if they carry one.

An individual number is eleven digits and a check digit (番号法施行令 第八条). The check digit is computed by
the formula in 総務省令第八十五号 (平成二十六年) 第五条::

    check = 11 - (Σ_{n=1..11} P_n × Q_n mod 11), or 0 if that remainder is 0 or 1
    P_n: the n-th of the eleven digits counted from the right (P_1 is the 11th digit from the left)
    Q_n: n + 1 for 1 <= n <= 6, n - 5 for 7 <= n <= 11   (weights 2,3,4,5,6,7,2,3,4,5,6 from the right)

Only a run whose check digit is right is reported. Twelve-digit runs turn up by chance (order and reference
numbers, ``+81`` phone numbers without separators); one in eleven of them passes the check, so refusing every
twelve-digit run would refuse ten harmless inputs for each one caught, while a number with a typo in it is no
longer someone's number. A run of 13 or more digits is a different kind of number (法人番号 is 13) and is
never reported, nor are 12 digits written straight after ``+`` (an international phone number).
"""

from __future__ import annotations

import re
import unicodedata

HYPHENS = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d\uff70\ufe63"
"""Characters people type for a hyphen in Japanese text: ASCII, the Unicode dashes and minus, the katakana
long-vowel mark ー that IMEs give for the hyphen key, and full- and half-width forms."""

SPACES = " \u00a0\u2002\u2003\u2009\u202f\u3000"
"""Spaces that separate digit groups: ASCII, no-break, en/em/thin, narrow no-break and ideographic (全角)."""

_WEIGHTS_FROM_RIGHT = tuple(n + 1 if n <= 6 else n - 5 for n in range(1, 12))  # Q_1 .. Q_11

_GAP = f"(?:[{SPACES}]{{1,2}}|[{SPACES}]?[{HYPHENS}][{SPACES}]?)"
# A zero-width match at every place a candidate starts, so candidates that overlap are all seen ("1234-5678-
# 9012-3456" is checked as 1234-5678-9012 and as 5678-9012-3456). \d is any Unicode decimal digit (０-９ too).
_CANDIDATE = re.compile(rf"(?<![\d+\uff0b])(?=(\d{{4}}{_GAP}?\d{{4}}{_GAP}?\d{{4}})(?!\d))")
_NOT_DIGIT = re.compile(r"\D")


def individual_number_check_digit(first_eleven: str) -> int:
    """The 検査用数字 for the first eleven digits of an individual number (総務省令第八十五号 第五条).

    :raises ValueError: unless ``first_eleven`` is eleven ASCII digits.
    """
    if len(first_eleven) != 11 or not first_eleven.isascii() or not first_eleven.isdigit():
        raise ValueError(f"expected 11 ASCII digits, got {len(first_eleven)} characters")
    remainder = sum(int(p) * q for p, q in zip(reversed(first_eleven), _WEIGHTS_FROM_RIGHT, strict=True)) % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_individual_number(number: str) -> bool:
    """Whether ``number`` is twelve ASCII digits, no separators, whose last digit is the right check digit."""
    if len(number) != 12 or not number.isascii() or not number.isdigit():
        return False
    return individual_number_check_digit(number[:11]) == int(number[11])


def mask_individual_number(number: str) -> str:
    """``"**** **** 9018"``: enough for a person to see which number was meant, not enough to use it."""
    return f"**** **** {number[-4:]}"


def contains_individual_number(text: str) -> str | None:
    """The first individual number in ``text``, masked (:func:`mask_individual_number`), or ``None``.

    Finds twelve digits written together or in 4-4-4 groups split by spaces or hyphens (any of :data:`HYPHENS`
    and :data:`SPACES`), in ASCII, full-width or any other decimal digits, and reports them only if the check
    digit is right. Digits that belong to a longer run of digits, or follow a ``+``, are not an individual number.
    """
    for candidate in _CANDIDATE.finditer(text):
        digits = "".join(str(unicodedata.decimal(c)) for c in _NOT_DIGIT.sub("", candidate.group(1)))
        if is_individual_number(digits):
            return mask_individual_number(digits)
    return None
