"""A person as the platform records them, checked and normalised the way Japanese forms ask.

Names are asked as family and given name with their readings in katakana, as the 戸籍 has recorded them since
the 2025 改正 (振り仮名, 令和7年5月26日施行); the address is split as 都道府県 / 市区町村 / 町字 / 番地 / 方書.

Names and address parts are kept as typed apart from trimming: no Unicode normalisation, because NFC and NFKC
rewrite CJK compatibility ideographs, and a registered name must keep the character it was registered with.
Postal code, phone, e-mail and readings are normalised (full-width digits, the many hyphens, hiragana and
half-width katakana). No free-text field may carry a マイナンバー; the platform never collects one, and neither
Struct has a field for it. Error rules name the field and never repeat a personal value, because they reach
logs and problem+json bodies.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from core.exceptions import InvalidInput
from core.identity.mynumber import HYPHENS, SPACES, contains_individual_number
from core.tenancy.manifest import LOCALES, SLUG_PATTERN, key_path_of

# 全国地方公共団体コード order (01 北海道 .. 47 沖縄県).
PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県",
    "茨城県", "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県",
    "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県", "愛知県",
    "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県",
    "徳島県", "香川県", "愛媛県", "高知県",
    "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip

# Lengths match the ``accounts`` columns; a reading runs longer than the name it reads.
NAME_MAX = 50
DISPLAY_NAME_MAX = 100
KANA_MAX = 100
CITY_MAX = 50
ADDRESS_PART_MAX = 100

_TO_ASCII_HYPHEN = str.maketrans(dict.fromkeys(HYPHENS, "-"))
_HIRAGANA_TO_KATAKANA = str.maketrans(
    {chr(c): chr(c + 0x60) for c in range(0x3041, 0x3097)} | {"ゝ": "ヽ", "ゞ": "ヾ"}
)
_KANA_ALLOWED = re.compile(r"[\u30a1-\u30fe\u3000]")  # ァ..ヺ, ・, ー, ヽ, ヾ and the ideographic space
_KANA_LETTER = re.compile(r"[\u30a1-\u30fa]")
_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_POSTAL_CODE = re.compile(r"([0-9]{3})-?([0-9]{4})")
_PHONE_SEPARATORS = str.maketrans(dict.fromkeys(HYPHENS + SPACES + "()", None))
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")
_MY_NUMBER_KEYS = re.compile(r"my_?number|kojin_?bango|individual_?number", re.I)


class AddressInput(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    postal_code: str
    """郵便番号, seven digits; ``〒``, full-width digits and any hyphen are accepted."""
    prefecture: str
    """都道府県, in full (``香川県``): one of :data:`PREFECTURES`."""
    city: str
    """市区町村 (``高松市``, ``小豆郡土庄町``)."""
    town: str = ""
    """町字 (``番町一丁目``); empty where an address has none."""
    street: str
    """番地以下 (``8番15号``, ``1234``)."""
    building: str | None = None
    """方書: building and room (``サンポート高松 101``)."""


class PersonInput(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A person record as a form or an API client sends it; :func:`normalise_person` checks it."""

    display_name: str
    family_name: str
    given_name: str
    family_name_kana: str
    """Reading of the family name: katakana, or hiragana and half-width katakana (converted)."""
    given_name_kana: str
    email: str
    phone: str | None = None
    """Japanese number: 10 or 11 digits from a leading 0, or after ``+81``; separators are dropped."""
    address: AddressInput | None = None
    residence_municipality: str | None = None
    """Slug of the municipality the person lives in, if it is one of the platform's."""
    locale: Literal["ja", "en"] = "ja"


class Address(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    postal_code: str
    """``NNN-NNNN``."""
    prefecture: str
    city: str
    town: str
    street: str
    building: str | None = None


class Person(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A checked person record: readings in full-width katakana, postal code ``NNN-NNNN``, phone as digits."""

    display_name: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    email: str
    """In lower case throughout: one address is one account."""
    phone: str | None = None
    """Domestic digits without separators: ``0878392111``, ``09012345678``."""
    address: Address | None = None
    residence_municipality: str | None = None
    locale: Literal["ja", "en"] = "ja"


# --- one field at a time: each returns the normal form or raises ValueError(rule) ---------------------------


def normalise_text(text: str, max_length: int) -> str:
    """Trim; then 1..``max_length`` characters and no control or format characters. Nothing else changes."""
    text = text.strip()
    if not text:
        raise ValueError("must not be empty")
    if any(unicodedata.category(c) in _CONTROL_CATEGORIES for c in text):
        raise ValueError("must not contain control characters")
    if len(text) > max_length:
        raise ValueError(f"must be at most {max_length} characters, got {len(text)}")
    return text


def normalise_kana(text: str, max_length: int = KANA_MAX) -> str:
    """A reading in full-width katakana: hiragana and half-width katakana converted, spaces as one ``U+3000``.

    The ideographic space keeps the whole reading full-width (全角), as municipal systems store カナ.
    """
    text = text.strip()
    if any(unicodedata.category(c) in _CONTROL_CATEGORIES for c in text):
        raise ValueError("must not contain control characters")
    # NFKC: half-width katakana to full-width, a kana and a combining (han)dakuten composed, U+3000 to " ".
    text = unicodedata.normalize("NFKC", text).translate(_HIRAGANA_TO_KATAKANA)
    text = "\u3000".join(text.split())
    if not text:
        raise ValueError("must not be empty")
    for c in text:
        if not _KANA_ALLOWED.match(c):
            raise ValueError(f"must be katakana or hiragana (ー, ・ and spaces allowed), found {c!r}")
    if not _KANA_LETTER.search(text):
        raise ValueError("must contain at least one kana letter")
    if len(text) > max_length:
        raise ValueError(f"must be at most {max_length} characters, got {len(text)}")
    return text


def normalise_postal_code(text: str) -> str:
    """``NNN-NNNN`` from seven digits, full-width or ASCII, with or without ``〒`` and a hyphen of any kind."""
    text = unicodedata.normalize("NFKC", text).translate(_TO_ASCII_HYPHEN).strip().removeprefix("〒").lstrip()
    match = _POSTAL_CODE.fullmatch(text)
    if match is None:
        raise ValueError("must be 7 digits, written NNN-NNNN or NNNNNNN")
    return f"{match.group(1)}-{match.group(2)}"


def normalise_phone(text: str) -> str:
    """Domestic digits (``0878392111``) from any spacing, hyphens, parentheses, full-width digits or ``+81``."""
    digits = unicodedata.normalize("NFKC", text).translate(_PHONE_SEPARATORS)
    if digits.startswith("+"):
        if not digits.startswith("+81"):
            raise ValueError("must be a Japanese number: a leading 0, or +81")
        digits = "0" + digits.removeprefix("+81").removeprefix("0")  # "+81 (0)87-..." is written too
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("must be digits, with optional +81, spaces, hyphens and parentheses")
    if not digits.startswith("0") or digits.startswith("00"):
        raise ValueError("must be a Japanese number: a leading 0 (not 00), or +81")
    if len(digits) not in (10, 11):
        raise ValueError(f"must be 10 or 11 digits from the leading 0, got {len(digits)}")
    return digits


def normalise_email(text: str) -> str:
    """``local@domain`` all in lower case; full-width ``＠`` and letters are read as ASCII.

    Lower case throughout: one address is one account, whatever case a person types (providers in Japan treat
    the local part case-insensitively; RFC 5321 allows that).

    The local part may have dots anywhere (``taro..yamada.@``): old Japanese mobile addresses do, and mail to
    them is still delivered. The domain must be ASCII (punycode for an internationalised one).
    """
    text = unicodedata.normalize("NFKC", text).strip()
    if len(text) > 254:
        raise ValueError(f"must be at most 254 characters, got {len(text)}")
    if text.count("@") != 1:
        raise ValueError("must contain exactly one @")
    local, domain = text.split("@")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise ValueError("part before @ must be 1..64 letters, digits or !#$%&'*+/=?^_`{|}~.-")
    domain = domain.lower()
    if not _DOMAIN.fullmatch(domain):
        raise ValueError("part after @ must be a domain name such as example.jp")
    return f"{local.lower()}@{domain}"


# --- the whole record -----------------------------------------------------------------------------------------


class _Checker:
    """Runs field rules and keeps every problem, so one answer lists all of them."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def field(
        self, path: str, value: str, rule: Callable[..., str], *args: Any, free_text: bool = True
    ) -> str:
        if free_text and (found := contains_individual_number(value)) is not None:
            self.errors.append(
                {
                    "field": path,
                    "rule": f"must not contain a My Number (個人番号), found {found}; "
                    "the platform never collects it",
                }
            )
        try:
            return rule(value, *args)
        except ValueError as exc:
            self.errors.append({"field": path, "rule": str(exc)})
            return value

    def optional(
        self, path: str, value: str | None, rule: Callable[..., str], *args: Any, free_text: bool = True
    ) -> str | None:
        if value is None or not value.strip():
            return None
        return self.field(path, value, rule, *args, free_text=free_text)

    def fail(self, path: str, rule: str) -> None:
        self.errors.append({"field": path, "rule": rule})


def _prefecture(text: str) -> str:
    text = text.strip()
    if text not in PREFECTURES:
        raise ValueError(
            f"must be one of the 47 prefectures (都道府県) in full, such as 香川県, got {text!r}"
        )
    return text


def normalise_person(data: PersonInput) -> Person:
    """Check every field of ``data`` and return it normalised.

    :raises InvalidInput: naming every field that breaks a rule (``address.postal_code: must be 7 digits...``),
        with ``errors=[{"field": ..., "rule": ...}, ...]`` listing all of them.
    """
    check = _Checker()  # in the order of the form, so that the message reads like it
    display_name = check.field("display_name", data.display_name, normalise_text, DISPLAY_NAME_MAX)
    family_name = check.field("family_name", data.family_name, normalise_text, NAME_MAX)
    given_name = check.field("given_name", data.given_name, normalise_text, NAME_MAX)
    family_name_kana = check.field("family_name_kana", data.family_name_kana, normalise_kana)
    given_name_kana = check.field("given_name_kana", data.given_name_kana, normalise_kana)
    email = check.field("email", data.email, normalise_email)
    phone = check.optional("phone", data.phone, normalise_phone, free_text=False)
    address = None
    if (a := data.address) is not None:
        address = Address(
            postal_code=check.field(
                "address.postal_code", a.postal_code, normalise_postal_code, free_text=False
            ),
            prefecture=check.field("address.prefecture", a.prefecture, _prefecture, free_text=False),
            city=check.field("address.city", a.city, normalise_text, CITY_MAX),
            town=check.optional("address.town", a.town, normalise_text, ADDRESS_PART_MAX) or "",
            street=check.field("address.street", a.street, normalise_text, ADDRESS_PART_MAX),
            building=check.optional("address.building", a.building, normalise_text, ADDRESS_PART_MAX),
        )
    residence = (data.residence_municipality or "").strip() or None
    if residence is not None and not SLUG_PATTERN.fullmatch(residence):
        check.fail("residence_municipality", f"must be a municipality slug, got {residence!r}")
    if data.locale not in LOCALES:
        check.fail("locale", f"must be one of {', '.join(LOCALES)}, got {data.locale!r}")
    if check.errors:
        detail = "; ".join(f"{e['field']}: {e['rule']}" for e in check.errors)
        raise InvalidInput(detail, errors=check.errors)
    return Person(
        display_name=display_name,
        family_name=family_name,
        given_name=given_name,
        family_name_kana=family_name_kana,
        given_name_kana=given_name_kana,
        email=email,
        phone=phone,
        address=address,
        residence_municipality=residence,
        locale=data.locale,
    )


def parse_person(data: Any) -> Person:
    """Convert a decoded JSON or form mapping to a :class:`PersonInput`, then :func:`normalise_person` it.

    :raises InvalidInput: for a wrong type, a missing or an unknown key (one error), or broken rules (all).
    """
    try:
        raw = msgspec.convert(data, PersonInput)
    except msgspec.ValidationError as exc:
        path, rule = key_path_of(exc)
        key = re.fullmatch(r"Object (?P<what>contains unknown|missing required) field `(?P<key>[^`]*)`", rule)
        if key is not None:  # name the key itself, not the object that holds it
            path = ".".join(filter(None, (path, key.group("key"))))
            rule = "unknown key" if key.group("what") == "contains unknown" else "required"
            if rule == "unknown key" and _MY_NUMBER_KEYS.search(path):
                rule += "; the platform never collects My Number (個人番号)"
        path = path or "(top level)"
        raise InvalidInput(f"{path}: {rule}", errors=[{"field": path, "rule": rule}]) from exc
    return normalise_person(raw)
