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
