"""Reading facility lists as municipalities publish them: Takamatsu's real LinkData files, and the
自治体標準 公共施設一覧 CSV with old and new headers, in UTF-8, UTF-8 with BOM and CP932."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import InvalidInput
from plugins.booking.services._opendata import (
    STANDARD_HEADERS,
    export_rows,
    parse_exceptions,
    parse_file,
    parse_weekdays,
    to_csv,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "booking"
TAKAMATSU = "372013"

NEW = (
    "全国地方公共団体コード,ID,地方公共団体名,名称,名称_カナ,名称_英字,POIコード,所在地_全国地方公共団体コード,町字ID,"
    "所在地_連結表記,所在地_都道府県,所在地_市区町村,所在地_町字,所在地_番地以下,建物名等(方書),緯度,経度,電話番号,内線番号,"
    "法人番号,団体名,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,説明,バリアフリー情報,URL,備考\n"
    "373419,G001,香川県三木町,三木町町民体育館,ミキチョウチョウミンタイイクカン,,,373419,,香川県木田郡三木町大字氷上1-1,"
    "香川県,木田郡三木町,大字氷上,1-1,,34.26,134.13,087-891-0000,,,,月～金,08:30,21:00,土日祝は17:00まで,,,,\n"
    "373419,G002,香川県三木町,三木町文化交流プラザ,,,,373419,,,香川県,木田郡三木町,大字氷上,2-2,2階,,,,,,,毎日,9時,21:00,,,,,\n"
    "372013,T001,香川県高松市,よその体育館,,,,372013,,香川県高松市,,,,,,,,,,,,,09:00,21:00,,,,,\n"
)
OLD = (
    "都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,名称_通称,POIコード,住所,方書,緯度,経度,"
    "電話番号,内線番号,法人番号,団体名,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,説明,バリアフリー情報,URL,備考\n"
    "37341,1,香川県,三木町,三木町公民館,,,,香川県木田郡三木町大字氷上3-3,,34.27,134.14,,,,,火水木金土日,09:00,22:00,"
    "12/29～1/3休館。第3月曜日は休館,,,,\n"
)


def test_takamatsu_tennis_courts_as_published() -> None:
    parsed = parse_file((DATA / "0039.csv").read_bytes(), stem="0039", municipality_code=TAKAMATSU)
    assert parsed.format == "linkdata" and parsed.skipped == []
    assert len(parsed.records) == 11
    kameoka = next(r for r in parsed.records if r.name == "高松市立亀岡庭球場")
    assert kameoka.source_key == "0039/2" and kameoka.kind == "tennis_court"
    assert kameoka.hours["0"] == ["09:00", "17:00"] and len(kameoka.hours) == 7
    assert kameoka.hours_exceptions == [{"months": [6, 7, 8], "closes": "19:00"}]  # 「6～8月は19:00まで」
    assert (kameoka.latitude, kameoka.longitude) == (34.33731944, 134.04071694)
    shioe = next(r for r in parsed.records if r.name == "高松市塩江町庭球場")
    assert sorted(shioe.hours) == ["1", "2", "3", "4", "5", "6"]  # 火水木金土日: closed on Mondays


def test_takamatsu_gyms_report_the_empty_row_and_community_centres_have_no_hours() -> None:
    gyms = parse_file((DATA / "0040.csv").read_bytes(), stem="0040")
    assert [(s.line, s.text) for s in gyms.skipped] == [(16, "empty row")]
    assert len(gyms.records) == 11
    centres = parse_file((DATA / "0004.csv").read_bytes(), stem="0004")
    assert len(centres.records) == 52 and all(r.hours == {} for r in centres.records)
    assert all("no opening hours" in n.text for n in centres.notes)
    nishi = next(r for r in centres.records if r.name == "高松市西植田コミュニティセンター")
    assert nishi.phone == "087-849-0101"  # the trailing full-width space is gone


def test_what_cannot_be_modelled_is_kept_as_a_note() -> None:
    library = parse_file((DATA / "0035.csv").read_bytes(), stem="0035")
    central = library.records[0]
    assert {"weekdays": [5, 6], "holidays": True, "closes": "17:00"} in central.hours_exceptions
    assert "毎月末日休館" in central.hours_note and "12/29" not in central.hours_note
    assert any("月が休日の場合は翌日休館" in n.text for n in library.notes)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_the_standard_dataset_in_every_encoding(encoding: str) -> None:
    parsed = parse_file(NEW.encode(encoding), municipality_code="373419")
    assert parsed.format == "standard"
    assert [r.source_key for r in parsed.records] == ["std/G001"]
    gym = parsed.records[0]
    assert (
        gym.address == "香川県木田郡三木町大字氷上1-1" and gym.name_kana == "ミキチョウチョウミンタイイクカン"
    )
    assert sorted(gym.hours) == ["0", "1", "2", "3", "4"]  # 月～金
    assert gym.hours_exceptions == [{"weekdays": [5, 6], "closes": "17:00", "holidays": True}]
    reasons = {s.line: s.text for s in parsed.skipped}
    assert "9時" in reasons[3]  # not a time HH:MM
    assert "372013" in reasons[4]  # another municipality's row


def test_the_old_recommended_headers() -> None:
    parsed = parse_file(OLD.encode("cp932"), municipality_code="373419")
    assert parsed.format == "recommended" and parsed.skipped == []
    hall = parsed.records[0]
    assert hall.source_key == "std/1" and hall.hours_note == "第3月曜日は休館"


def test_a_file_that_is_no_facility_list_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unrecognised header"):
        parse_file(b"a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="neither UTF-8 nor CP932"):
        parse_file(b"\x80\x81\xff\xfe")


def test_export_writes_the_standard_columns_and_reads_back() -> None:
    parsed = parse_file((DATA / "0039.csv").read_bytes(), stem="0039")
    rows = export_rows(
        [SimpleNamespace(id=r.source_key, closed_on_holidays=False, **{k: getattr(r, k) for k in (
            "source_key", "name", "name_kana", "address", "phone", "url", "latitude", "longitude", "hours",
            "hours_exceptions", "hours_note", "closed_year_end", "description")}) for r in parsed.records],
        code=TAKAMATSU, municipality_name="香川県高松市",
    )  # fmt: skip
    assert rows[0] == list(STANDARD_HEADERS)
    text = to_csv(rows)
    assert list(csv.reader(io.StringIO(text)))[1][STANDARD_HEADERS.index("利用可能曜日")] == "月火水木金土日"
    again = parse_file(text.encode("utf-8-sig"), municipality_code=TAKAMATSU)
    kameoka = next(r for r in again.records if r.name == "高松市立亀岡庭球場")
    assert kameoka.hours_exceptions == [{"months": [6, 7, 8], "closes": "19:00"}]
    assert len(again.records) == 11


@given(days=st.sets(st.integers(0, 6), min_size=1))
def test_weekdays_written_in_kanji_read_back(days: set[int]) -> None:
    assert parse_weekdays("".join("月火水木金土日"[d] for d in sorted(days))) == sorted(days)


@given(first=st.integers(1, 12), last=st.integers(1, 12), hour=st.integers(10, 23))
def test_seasonal_closing_times_are_modelled_for_any_months(first: int, last: int, hour: int) -> None:
    rules, _, kept = parse_exceptions(f"{first}～{last}月は{hour}:00まで")
    assert kept == []
    [rule] = rules
    assert rule["closes"] == f"{hour}:00" and rule["months"][0] == first and rule["months"][-1] == last
    assert len(rule["months"]) == (last - first) % 12 + 1
