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
