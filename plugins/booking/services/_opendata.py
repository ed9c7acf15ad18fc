"""Reading facility lists as municipalities publish them, and writing the 自治体標準 公共施設一覧 CSV.

Accepted, in UTF-8, UTF-8 with BOM or CP932 (Shift_JIS):

- LinkData-style files (Takamatsu's open data): ``#`` metadata rows, ``#property`` naming the columns
  (``name, address, telephoneNumber, referenceObject, note, location, availableDate, startTime, endTime,
  availableDateNote``), then data rows whose first cell is the row number.
- The 自治体標準オープンデータセット 公共施設一覧: the old 推奨データセット headers (``都道府県コード又は市区町村コード, NO,
  …, 住所, 方書, …``) and the current ones (``全国地方公共団体コード, ID, …, 所在地_連結表記, 所在地_都道府県, …,
  建物名等(方書), …``).

Open weekdays (``月火水木金土日``, ``月～金``, ``平日``, ``毎日``), hours and the free-text exceptions that can be
modelled (「6～8月は19:00まで」, 「土日祝は17:00まで」, 「12/29～1/3休館」, 「8月は休館」) become rules; every other
sentence is kept as a note and reported. Parsing is pure: :func:`parse_file` reads bytes and returns records and
the rows it skipped, with why.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from core.exceptions import InvalidInput
from plugins.booking.services._calendar import WEEKDAY_KANJI, format_time, parse_time

LINKDATA_COLUMNS = {
    "name": "name",
    "address": "address",
    "telephoneNumber": "phone",
    "referenceObject": "url",
    "location": "location",
    "availableDate": "weekdays",
    "startTime": "opens",
    "endTime": "closes",
    "availableDateNote": "hours_note",
    "note": "description",
    "fullNameInKana": "name_kana",
}
STANDARD_COLUMNS = {
    "名称": "name",
    "名称_カナ": "name_kana",
    "住所": "address",
    "所在地_連結表記": "address",
    "方書": "building",
    "建物名等(方書)": "building",
    "緯度": "latitude",
    "経度": "longitude",
    "電話番号": "phone",
    "利用可能曜日": "weekdays",
    "開始時間": "opens",
    "終了時間": "closes",
    "利用可能日時特記事項": "hours_note",
    "説明": "description",
    "URL": "url",
    "種別": "kind",
    "ID": "id",
    "NO": "id",
    "全国地方公共団体コード": "code",
    "都道府県コード又は市区町村コード": "code",
}
ADDRESS_PARTS = ("所在地_都道府県", "所在地_市区町村", "所在地_町字", "所在地_番地以下")
DATASET_KINDS = {
    "tennis_court": "tennis_court",
    "gymnasium": "gymnasium",
    "community_center": "community_center",
    "library": "library",
}

STANDARD_HEADERS = (
    "全国地方公共団体コード", "ID", "地方公共団体名", "名称", "名称_カナ", "名称_英字", "POIコード",
    "所在地_全国地方公共団体コード", "町字ID", "所在地_連結表記", "所在地_都道府県", "所在地_市区町村", "所在地_町字",
    "所在地_番地以下", "建物名等(方書)", "緯度", "経度", "電話番号", "内線番号", "法人番号", "団体名", "利用可能曜日",
    "開始時間", "終了時間", "利用可能日時特記事項", "説明", "バリアフリー情報", "URL", "備考",
)  # fmt: skip
"""The columns of the current 自治体標準オープンデータセット 公共施設一覧, in order (the export writes these)."""


class FacilityRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One facility as a file describes it, cleaned and with its hours turned into rules."""

    line: int
    source_key: str
    name: str
    name_kana: str | None = None
    kind: str = "other"
    address: str = ""
    phone: str = ""
    url: str = ""
    latitude: float | None = None
    longitude: float | None = None
    hours: dict[str, list[str]] = msgspec.field(default_factory=dict)
    hours_exceptions: list[dict[str, Any]] = msgspec.field(default_factory=list)
    hours_note: str = ""
    closed_year_end: bool = True
    description: str = ""


class RowNote(msgspec.Struct, kw_only=True, frozen=True):
    line: int
    text: str


class ParsedFile(msgspec.Struct, kw_only=True, frozen=True):
    format: str
    """``linkdata``, ``standard`` (current 自治体標準 headers) or ``recommended`` (the old 推奨 headers)."""
    records: list[FacilityRecord]
    skipped: list[RowNote]
    """Rows not imported, with why."""
    notes: list[RowNote]
    """What was kept as free text because no rule could express it, and hours missing from a row."""


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else CP932. :raises InvalidInput: for anything else."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the file is neither UTF-8 nor CP932 (Shift_JIS): undecodable byte at offset {exc.start}"
        ) from exc


def clean(value: str | None) -> str:
    """NFKC (full-width digits, colons and spaces to ASCII, half-width kana to full-width) and trimmed."""
    return unicodedata.normalize("NFKC", value or "").strip()


def parse_file(data: bytes, *, stem: str = "file", municipality_code: str | None = None) -> ParsedFile:
    """Read a facility list. :raises InvalidInput: when the file is not one of the accepted formats."""
    text = decode(data)
    rows = list(_rows(text))
    if not rows:
        raise InvalidInput("the file is empty")
    if rows[0][1] and rows[0][1][0].startswith("#"):
        return _linkdata(rows, stem)
    header = [clean(cell) for cell in rows[0][1]]
    if "名称" not in header:
        raise InvalidInput(
            "unrecognised header: expected a LinkData file (#property row) or a 公共施設一覧 CSV with a 名称 column, "
            f"got {', '.join(header[:6])}"
        )
    return _standard(header, rows[1:], municipality_code)


def _rows(text: str) -> Iterable[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text))
    line = 1
    for row in reader:
        yield line, row
        line = reader.line_num + 1


# --- LinkData ------------------------------------------------------------------------------------------------


def _linkdata(rows: list[tuple[int, list[str]]], stem: str) -> ParsedFile:
    meta: dict[str, list[str]] = {}
    data: list[tuple[int, list[str]]] = []
    for line, row in rows:
        if row and row[0].startswith("#"):
            meta[row[0].lstrip("#")] = row[1:]
        else:
            data.append((line, row))
    keys = meta.get("property")
    if not keys:
        raise InvalidInput("LinkData file without a #property row naming its columns")
    file_name = clean((meta.get("file_name") or [stem])[0]) or stem
    dataset = clean((meta.get("download_from") or [""])[0]).rstrip("/").rsplit("/", 1)[-1]
    kind = DATASET_KINDS.get(dataset, "other")
    records, skipped, notes, seen = [], [], [], {}
    for line, row in data:
        if not any(cell.strip() for cell in row):
            skipped.append(RowNote(line=line, text="empty row"))
            continue
        row_id = clean(row[0])
        cells = {
            LINKDATA_COLUMNS[k]: clean(v)
            for k, v in zip(keys, row[1:], strict=False)
            if k in LINKDATA_COLUMNS
        }
        if not row_id:
            skipped.append(RowNote(line=line, text="no row number in the first column"))
            continue
        if row_id in seen:
            skipped.append(RowNote(line=line, text=f"row number {row_id} repeats line {seen[row_id]}"))
            continue
        seen[row_id] = line
        latitude = longitude = None
        if cells.get("location"):
            parts = [p.strip() for p in cells["location"].split(",")]
            latitude, longitude = _coordinates(parts[0], parts[1] if len(parts) > 1 else "", line, notes)
        record = _record(line, f"{file_name}/{row_id}", cells, kind, latitude, longitude, skipped, notes)
        if record is not None:
            records.append(record)
    return ParsedFile(format="linkdata", records=records, skipped=skipped, notes=notes)


# --- 自治体標準 / 推奨 ------------------------------------------------------------------------------------------


def _standard(
    header: list[str], rows: list[tuple[int, list[str]]], municipality_code: str | None
) -> ParsedFile:
    fmt = "standard" if "全国地方公共団体コード" in header or "所在地_連結表記" in header else "recommended"
    records, skipped, notes, seen = [], [], [], {}
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            skipped.append(RowNote(line=line, text="empty row"))
            continue
        named = {column: clean(value) for column, value in zip(header, row, strict=False)}
        cells: dict[str, str] = {}
        for column, value in named.items():
            field = STANDARD_COLUMNS.get(column)
            if field and value and not cells.get(field):
                cells[field] = value
        if not cells.get("address") and any(named.get(p) for p in ADDRESS_PARTS):
            cells["address"] = "".join(named.get(p, "") for p in ADDRESS_PARTS)
        if cells.get("building"):
            cells["address"] = f"{cells.get('address', '')} {cells['building']}".strip()
        code = cells.get("code", "")
        if municipality_code and code and code[:5] != municipality_code[:5]:
            skipped.append(
                RowNote(line=line, text=f"belongs to municipality code {code}, not {municipality_code}")
            )
            continue
        row_id = cells.get("id") or ""
        if not row_id:
            skipped.append(
                RowNote(line=line, text="no ID (or NO) to recognise the facility by on the next import")
            )
            continue
        if row_id in seen:
            skipped.append(RowNote(line=line, text=f"ID {row_id} repeats line {seen[row_id]}"))
            continue
        seen[row_id] = line
        latitude, longitude = _coordinates(cells.get("latitude", ""), cells.get("longitude", ""), line, notes)
        record = _record(
            line, f"std/{row_id}", cells, _kind(cells.get("kind", "")), latitude, longitude, skipped, notes
        )
        if record is not None:
            records.append(record)
    return ParsedFile(format=fmt, records=records, skipped=skipped, notes=notes)


_KINDS = (("庭球", "tennis_court"), ("テニス", "tennis_court"), ("体育館", "gymnasium"), ("コミュニティ", "community_center"),
          ("公民館", "community_center"), ("図書館", "library"), ("グラウンド", "ground"), ("運動場", "ground"))  # fmt: skip


def _kind(value: str) -> str:
    return next((kind for word, kind in _KINDS if word in value), "other")


# --- shared ----------------------------------------------------------------------------------------------------


def _coordinates(lat: str, lon: str, line: int, notes: list[RowNote]) -> tuple[float | None, float | None]:
    if not lat and not lon:
        return None, None
    try:
        latitude, longitude = float(lat), float(lon)
    except ValueError:
        notes.append(RowNote(line=line, text=f"location ignored: {lat!r}, {lon!r} are not numbers"))
        return None, None
    if not (20 <= latitude <= 46 and 122 <= longitude <= 154):
        notes.append(RowNote(line=line, text=f"location ignored: {latitude}, {longitude} is not in Japan"))
        return None, None
    return latitude, longitude


def _record(
    line: int,
    key: str,
    cells: dict[str, str],
    kind: str,
    latitude: float | None,
    longitude: float | None,
    skipped: list[RowNote],
    notes: list[RowNote],
) -> FacilityRecord | None:
    name = cells.get("name", "")
    if not name:
        skipped.append(RowNote(line=line, text="no name"))
        return None
    if len(name) > 200:
        skipped.append(RowNote(line=line, text=f"name longer than 200 characters ({len(name)})"))
        return None
    try:
        weekdays = parse_weekdays(cells.get("weekdays", ""))
        opens = parse_time(cells["opens"], "開始時間") if cells.get("opens") else None
        closes = parse_time(cells["closes"], "終了時間") if cells.get("closes") else None
    except InvalidInput as exc:
        skipped.append(RowNote(line=line, text=exc.detail))
        return None
    hours: dict[str, list[str]] = {}
    if opens is not None and closes is not None:
        if opens >= closes:
            skipped.append(
                RowNote(
                    line=line,
                    text=f"opens {format_time(opens)} is not before it closes {format_time(closes)}",
                )
            )
            return None
        for weekday in weekdays if weekdays is not None else range(7):
            hours[str(weekday)] = [format_time(opens), format_time(closes)]
    else:
        notes.append(
            RowNote(line=line, text=f"{name}: no opening hours in the file; set them before booking opens")
        )
    exceptions, closed_year_end, kept = parse_exceptions(cells.get("hours_note", ""))
    for sentence in kept:
        notes.append(RowNote(line=line, text=f"{name}: kept as a note: {sentence}"))
    return FacilityRecord(
        line=line,
        source_key=key,
        name=name,
        name_kana=cells.get("name_kana") or None,
        kind=kind,
        address=cells.get("address", "")[:300],
        phone=cells.get("phone", "")[:40],
        url=cells.get("url", "")[:500],
        latitude=latitude,
        longitude=longitude,
        hours=hours,
        hours_exceptions=exceptions,
        hours_note="。".join(kept),
        closed_year_end=closed_year_end,
        description=cells.get("description", ""),
    )


_RANGE = "[~〜\\-ー–]"


def parse_weekdays(text: str) -> list[int] | None:
    """``月火水木金土日`` -> ``[0, …, 6]``; also ``月～金``, ``平日``, ``土日祝``, ``毎日``/``全日``. ``None`` when empty.

    :raises InvalidInput: for a character that names no weekday.
    """
    text = (
        clean(text).replace("曜日", "").replace("曜", "").replace("・", "").replace("、", "").replace(",", "")
    )
    text = text.replace("祝日", "").replace("祝", "").replace(" ", "")
    if not text:
        return None
    if text in {"毎日", "全日", "年中無休"}:
        return list(range(7))
    text = text.replace("平日", "月火水木金")
    found: set[int] = set()
    for match in re.finditer(f"([{WEEKDAY_KANJI}]){_RANGE}([{WEEKDAY_KANJI}])|(.)", text):
        if match[1]:
            first, last = WEEKDAY_KANJI.index(match[1]), WEEKDAY_KANJI.index(match[2])
            span = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
            found.update(span)
        elif match[3] in WEEKDAY_KANJI:
            found.add(WEEKDAY_KANJI.index(match[3]))
        else:
            raise InvalidInput(f"利用可能曜日: {match[3]!r} is not a weekday (expected 月火水木金土日)")
    return sorted(found)


_HH_MM = r"(\d{1,2})[:：](\d{2})"
_SEASON_CLOSES = re.compile(rf"^(\d{{1,2}})月?{_RANGE}(\d{{1,2}})月は?{_HH_MM}まで$")
_SEASON_CLOSED = re.compile(rf"^(\d{{1,2}})月?(?:{_RANGE}(\d{{1,2}})月)?は?休館(日)?$")
_DAYS_CLOSES = re.compile(rf"^([{WEEKDAY_KANJI}祝・]+?)(?:日)?は{_HH_MM}まで$")
_YEAR_END = re.compile(rf"^12/29{_RANGE}1/3(まで)?は?休館(日)?$")


def _months(first: int, last: int) -> list[int]:
    return list(range(first, last + 1)) if first <= last else [*range(first, 13), *range(1, last + 1)]


def parse_exceptions(note: str) -> tuple[list[dict[str, Any]], bool, list[str]]:
    """The sentences of an 利用可能日時特記事項 turned into hours rules.

    :returns: the rules, whether 年末年始 closing applies (always, unless the note says otherwise), and the
        sentences no rule could express (kept as the facility's note).
    """
    rules: list[dict[str, Any]] = []
    kept: list[str] = []
    for raw in re.split(r"[。\n]", clean(note)):
        sentence = raw.strip().replace(" ", "")
        if not sentence:
            continue
        if match := _SEASON_CLOSES.match(sentence):
            months = _months(int(match[1]), int(match[2]))
            if months and all(1 <= m <= 12 for m in months):
                rules.append({"months": months, "closes": f"{int(match[3]):02d}:{match[4]}"})
                continue
        if match := _SEASON_CLOSED.match(sentence):
            first = int(match[1])
            months = _months(first, int(match[2]) if match[2] else first)
            if all(1 <= m <= 12 for m in months):
                rules.append({"months": months, "closed": True})
                continue
        if match := _DAYS_CLOSES.match(sentence):
            days = match[1]
            weekdays = sorted({WEEKDAY_KANJI.index(c) for c in days if c in WEEKDAY_KANJI})
            rule: dict[str, Any] = {"weekdays": weekdays, "closes": f"{int(match[2]):02d}:{match[3]}"}
            if "祝" in days:
                rule["holidays"] = True
            rules.append(rule)
            continue
        if _YEAR_END.match(sentence):
            continue  # 年末年始 closing is modelled by the closed_year_end flag, on by default
        kept.append(raw.strip())
    return rules, True, kept


# --- export ----------------------------------------------------------------------------------------------------


def weekdays_text(hours: dict[str, Sequence[str]]) -> str:
    return "".join(WEEKDAY_KANJI[int(day)] for day in sorted(hours, key=int))


def export_rows(facilities: Iterable[Any], *, code: str, municipality_name: str) -> list[list[str]]:
    """Rows of the 自治体標準 公共施設一覧 (header first) for facilities (ORM rows or anything with their fields)."""
    rows: list[list[str]] = [list(STANDARD_HEADERS)]
    for facility in facilities:
        spans = {tuple(span) for span in facility.hours.values()}
        opens = min((s[0] for s in spans), default="")
        closes = max((s[1] for s in spans), default="")
        notes = [facility.hours_note] if facility.hours_note else []
        if len(spans) > 1:
            notes.insert(0, "曜日により時間が異なる: " + "、".join(
                f"{WEEKDAY_KANJI[int(d)]}{s[0]}-{s[1]}" for d, s in sorted(facility.hours.items(), key=lambda i: int(i[0]))
            ))  # fmt: skip
        notes.extend(_describe(rule) for rule in facility.hours_exceptions)
        if facility.closed_year_end:
            notes.append("12/29～1/3休館")
        if facility.closed_on_holidays:
            notes.append("祝日休館")
        values = {
            "全国地方公共団体コード": code,
            "ID": facility.source_key.split("/", 1)[1]
            if (facility.source_key or "").startswith("std/")
            else str(facility.id),
            "地方公共団体名": municipality_name,
            "名称": facility.name,
            "名称_カナ": facility.name_kana or "",
            "所在地_全国地方公共団体コード": code,
            "所在地_連結表記": facility.address,
            "緯度": "" if facility.latitude is None else f"{facility.latitude}",
            "経度": "" if facility.longitude is None else f"{facility.longitude}",
            "電話番号": facility.phone,
            "利用可能曜日": weekdays_text(facility.hours),
            "開始時間": opens,
            "終了時間": closes,
            "利用可能日時特記事項": "。".join(notes),
            "説明": facility.description,
            "URL": facility.url,
        }
        rows.append([values.get(column, "") for column in STANDARD_HEADERS])
    return rows


def _describe(rule: dict[str, Any]) -> str:
    when = ""
    if rule.get("months"):
        months = rule["months"]
        when = f"{months[0]}～{months[-1]}月" if len(months) > 1 else f"{months[0]}月"
    if rule.get("weekdays") or rule.get("holidays"):
        when += "".join(WEEKDAY_KANJI[d] for d in rule.get("weekdays", [])) + (
            "祝" if rule.get("holidays") else ""
        )
    if rule.get("closed"):
        return f"{when}は休館"
    parts = []
    if rule.get("opens"):
        parts.append(f"{rule['opens']}から")
    if rule.get("closes"):
        parts.append(f"{rule['closes']}まで")
    return f"{when}は" + "".join(parts)


def to_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()
