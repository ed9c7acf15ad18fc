"""全国地方公共団体コード (JIS X 0402 local government codes) and their check digit."""

from __future__ import annotations

_WEIGHTS = (6, 5, 4, 3, 2)


def check_digit(first_five: str) -> int:
    """The JIS X 0402 検査数字: weights 6..2, sum mod 11, and the last digit of 11 minus the remainder."""
    if len(first_five) != 5 or not first_five.isascii() or not first_five.isdigit():
        raise ValueError(f"expected 5 ASCII digits, got {first_five!r}")
    remainder = sum(int(d) * w for d, w in zip(first_five, _WEIGHTS, strict=True)) % 11
    return (11 - remainder) % 10


def validate_local_government_code(code: str) -> str | None:
    """Return ``None`` if ``code`` is a valid 6-digit code, else the rule it breaks (for error messages)."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return f"must be 6 ASCII digits, got {code!r}"
    expected = check_digit(code[:5])
    if int(code[5]) != expected:
        return f"check digit of {code} must be {expected} (JIS X 0402), got {code[5]}"
    prefecture = int(code[:2])
    if not 1 <= prefecture <= 47:
        return f"prefecture part of {code} must be 01..47, got {code[:2]}"
    return None
