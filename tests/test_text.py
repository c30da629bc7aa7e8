"""Input normalisation: full-width/half-width forms, spaces, Chinese numerals."""

from __future__ import annotations

import pytest

from bot.text import chinese_to_int, normalize, numbers_in, parse_number, split_command


@pytest.mark.parametrize(("raw", "expected"), [
    ("绑定　ＡＢＣ２３４", "绑定 ABC234"),  # ideographic space, full-width letters and digits
    ("  报修   三（2）班\t投影仪不亮 \n", "报修 三(2)班 投影仪不亮"),  # runs of spaces, full-width brackets
    ("食堂　５　很好吃！", "食堂 5 很好吃!"),
    ("？", "?"),
    ("ｈｅｌｐ", "help"),
    ("校车 1 上车 42", "校车 1 上车 42"),  # already normal: unchanged
    ("", ""),
    ("\u3000\u3000", ""),
])
def test_normalize_folds_full_width_forms_and_spaces(raw, expected):
    assert normalize(raw) == expected


def test_normalize_keeps_chinese_punctuation_that_has_no_half_width_form():
    assert normalize("后勤、食堂") == "后勤、食堂"
    assert normalize("好。") == "好。"


@pytest.mark.parametrize(("word", "expected"), [
    ("四十二", 42),
    ("十", 10),
    ("两", 2),
    ("一百零五", 105),
    ("十五", 15),
    ("二十", 20),
    ("一十", 10),
    ("九十九", 99),
    ("一百二十三", 123),
    ("两百", 200),
    ("三〇", 30),
    ("零", 0),
    ("一千零一十", 1010),
    ("两千零二十六", 2026),
])
def test_chinese_to_int(word, expected):
    assert chinese_to_int(word) == expected


@pytest.mark.parametrize("word", ["", "四十二人", "abc", "42", "三号"])
def test_chinese_to_int_rejects_what_is_not_a_numeral(word):
    assert chinese_to_int(word) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("42", 42),
    ("４２", 42),
    ("四十二", 42),
    ("四十二人", 42),
    ("  十  ", 10),
    ("两个", 2),
    ("一百零五", 105),
    ("5", 5),
    ("上车", None),
    ("", None),
    ("第三", None),  # something before the number: not a bare number
])
def test_parse_number(text, expected):
    assert parse_number(text) == expected


def test_numbers_in_a_sentence():
    assert numbers_in("三号线上车四十二人") == [3, 42]
    assert numbers_in("校车 ２ 下车 三十") == [2, 30]
    assert numbers_in("没有数字") == []


def test_split_command():
    assert split_command("报修 三(2)班 投影仪不亮") == ("报修", ["三(2)班", "投影仪不亮"])
    assert split_command("报修　三（2）班　　投影仪不亮") == ("报修", ["三(2)班", "投影仪不亮"])
    assert split_command("帮助") == ("帮助", [])


def test_day_label_names_the_weekday() -> None:
    from datetime import date

    from bot.text import day_label

    assert day_label(date(2026, 11, 23)) == "11月23日（周一）"
    assert day_label(date(2026, 11, 29)) == "11月29日（周日）"


def test_parse_day_reads_relative_and_written_dates() -> None:
    from datetime import date

    from bot.text import parse_day

    today = date(2026, 12, 20)
    assert parse_day("今天", today) == today
    assert parse_day("明天", today) == date(2026, 12, 21)
    assert parse_day("后天", today) == date(2026, 12, 22)
    assert parse_day("12月24日", today) == date(2026, 12, 24)
    assert parse_day("１２－２５", today) == date(2026, 12, 25)  # full-width
    assert parse_day("2027-01-04", today) == date(2027, 1, 4)
    assert parse_day("1月5日", today) == date(2027, 1, 5)  # said in December: next January
    assert parse_day("2月30日", today) is None
    assert parse_day("下周", today) is None


def test_day_bounds_are_local_midnights_in_utc() -> None:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from bot.text import day_bounds

    start, end = day_bounds(date(2026, 11, 23), ZoneInfo("Asia/Shanghai"))
    assert (start, end) == (datetime(2026, 11, 22, 16, tzinfo=UTC), datetime(2026, 11, 23, 16, tzinfo=UTC))
    assert start.tzinfo is UTC and end.tzinfo is UTC


def test_day_bounds_on_daylight_saving_change_days() -> None:
    from datetime import UTC, date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from bot.text import day_bounds

    berlin = ZoneInfo("Europe/Berlin")
    spring = day_bounds(date(2026, 3, 29), berlin)  # clocks go forward: 23 hours
    assert spring == (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))
    assert spring[1] - spring[0] == timedelta(hours=23)
    autumn = day_bounds(date(2026, 10, 25), berlin)  # clocks go back: 25 hours
    assert autumn == (datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC))
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    assert day_bounds(date(2026, 3, 30), berlin)[0] == spring[1]  # consecutive days meet


def test_month_key_and_month_span() -> None:
    from datetime import date

    from bot.text import month_key, month_span

    assert month_key(date(2026, 3, 9)) == "2026-03"
    assert month_span(date(2026, 12, 15)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert month_span(date(2026, 2, 28)) == (date(2026, 2, 1), date(2026, 3, 1))
    assert month_span(date(2028, 2, 29)) == (date(2028, 2, 1), date(2028, 3, 1))  # leap year
    assert month_span(date(2026, 1, 1)) == (date(2026, 1, 1), date(2026, 2, 1))


def test_month_bounds_span_local_midnights() -> None:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from bot.text import month_bounds

    assert month_bounds(date(2026, 12, 15), ZoneInfo("Asia/Shanghai")) == (
        datetime(2026, 11, 30, 16, tzinfo=UTC), datetime(2026, 12, 31, 16, tzinfo=UTC))
    assert month_bounds(date(2026, 3, 9), ZoneInfo("Europe/Berlin")) == (  # CET in, CEST out
        datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC))


def test_local_naive_is_school_wall_clock_time() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot.text import local_naive

    shanghai = ZoneInfo("Asia/Shanghai")
    moment = local_naive(datetime(2026, 11, 23, 23, 30, tzinfo=UTC), shanghai)
    assert moment == datetime(2026, 11, 24, 7, 30)  # the next morning in Shanghai
    assert moment is not None and moment.tzinfo is None  # what openpyxl can store
    assert local_naive(None, shanghai) is None
