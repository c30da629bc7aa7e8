"""Input normalisation, in one place: full-width/half-width forms, spaces, Chinese numerals; and the
school-local calendar arithmetic every capability shares (days, months, ledger times)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

_SPACES = re.compile(r"\s+")
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUMBER = re.compile(r"[0-9]+|[零〇一二两三四五六七八九十百千]+")


def tidy(text: str) -> str:
    """Runs of white space (the ideographic space too) become one space; every other character is
    kept as written. What is stored, echoed, pushed and exported goes through this, not `normalize`."""
    return _SPACES.sub(" ", text).strip()


def normalize(text: str) -> str:
    """For matching only: NFKC folds full-width letters, digits, punctuation and the ideographic space
    to half-width; runs of white space become one space."""
    return tidy(unicodedata.normalize("NFKC", text))


def segment(text: str) -> list[tuple[str, str]]:
    """The words of `text` with their part of speech (jieba: "n…" for nouns), e.g. 空调在漏水 →
    [("空调", "n"), ("在", "p"), ("漏水", "v")]."""
    import jieba.posseg

    return [(token.word, token.flag) for token in jieba.posseg.cut(text)]


def warm_segmenter() -> None:
    """Load jieba's dictionaries now. Loading takes a second or more (several on a busy machine), so a
    web process does it at start, in the background, rather than in the first webhook call that
    segments (a report checked for duplicates), which WeChat gives 5 seconds."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    segment("空调漏水")
    reading("报修")


def chinese_to_int(word: str) -> int | None:
    """四十二 → 42, 十 → 10, 一百零五 → 105, 两 → 2, 三〇 → 30; None if it is not a numeral."""
    if not word or any(ch not in _DIGITS and ch not in _UNITS for ch in word):
        return None
    if all(ch in _DIGITS for ch in word):  # digit by digit: 三〇 → 30
        return int("".join(str(_DIGITS[ch]) for ch in word))
    total, current = 0, 0
    for ch in word:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        else:
            total += (current or 1) * _UNITS[ch]
            current = 0
    return total + current


def parse_number(text: str) -> int | None:
    """A whole number written in digits or Chinese numerals, alone or with a unit (42, 四十二, 四十二人)."""
    text = normalize(text)
    match = _NUMBER.search(text)
    if match is None or text[: match.start()].strip():
        return None
    word = match.group(0)
    return int(word) if word.isdigit() else chinese_to_int(word)


def numbers_in(text: str) -> list[int]:
    """Every number in a sentence, in order: "三号线上车四十二人" → [3, 42]."""
    found = []
    for word in _NUMBER.findall(normalize(text)):
        value = int(word) if word.isdigit() else chinese_to_int(word)
        if value is not None:
            found.append(value)
    return found


_BARE_SCORE = re.compile(r"(?:([1-5一二三四五])\s*[分星]?\s*(?:好评)?|满分)\s*[。.!！~～]*")


def bare_score(text: str) -> int | None:
    """A 1-5 rating sent on its own, as people type it: 4, 4分, 四星, 5。, ５！, 5星好评, 满分 → the score;
    None otherwise."""
    match = _BARE_SCORE.fullmatch(normalize(text))
    if match is None:
        return None
    return parse_number(match.group(1)) if match.group(1) else 5


_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u200d]")


def without_emoji(text: str) -> str:
    """`text` without its emoji (👍, 😋, skin tones and joiners): "1号线上车3人 👌" → "1号线上车3人"."""
    return _EMOJI.sub("", text).strip()


_ASKING_HOW = re.compile(r"怎么|怎样|如何|能不能|可不可以|哪里|在哪|哪儿|吗$|[?？]$")


def asks_how(text: str) -> bool:
    """A question about a command rather than the command itself: 怎么请假, 可以请假吗？ (answered with its help)."""
    return _ASKING_HOW.search(text.strip()) is not None


SEPARATOR_MARKS = " :：,，、。.;；!！?？~～"  # what may follow a command word: "报修：三(2)班…" is "报修 三(2)班…"
COMMAND_FILLERS = ("一下",)  # "报修一下 一(3)班 灯不亮" is "报修 一(3)班 灯不亮" (一下 is no place)
LEADING_PARTICLES = "的了呢啊吧呀哦"  # "三年级二班的空调漏水": the description is 空调漏水


def strip_separators(text: str) -> str:
    """What follows a command word, without the punctuation and fillers that separate it: ":三(2)班" and
    "一下 三(2)班" → "三(2)班"."""
    text = text.lstrip(SEPARATOR_MARKS)
    for filler in COMMAND_FILLERS:
        if text.startswith(filler):
            text = text[len(filler):].lstrip(SEPARATOR_MARKS)
    return text.strip()


def strip_particles(text: str) -> str:
    """A description glued to a place, without the particles and punctuation that joined them:
    "的空调漏水" → "空调漏水" (on its own, a description that is only particles stays as it is)."""
    stripped = text.lstrip(SEPARATOR_MARKS + LEADING_PARTICLES).strip()
    return stripped or text.strip()


def is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


@lru_cache(maxsize=4096)
def reading(word: str) -> tuple[str, ...]:
    """How `word` reads, without tones: 报修 → ("bao", "xiu")."""
    from pypinyin import lazy_pinyin  # loaded on first use (warm_segmenter loads it at start)

    return tuple(lazy_pinyin(word))


def one_off(written: str, word: str) -> bool:
    """`written` is `word` with one character wrong (报表 for 报修; at least two of them right), Chinese only."""
    return (len(written) == len(word) >= 2 and sum(a != b for a, b in zip(written, word, strict=True)) == 1
            and all(is_han(ch) for ch in written + word) and (len(word) >= 3 or written[0] == word[0]))


def split_command(text: str) -> tuple[str, list[str]]:
    """The first word and the rest: "报修 三(2)班 投影仪不亮" → ("报修", ["三(2)班", "投影仪不亮"])."""
    words = normalize(text).split(" ")
    return words[0], [w for w in words[1:] if w]


def split_kept(text: str) -> tuple[str, list[str]]:
    """`split_command` keeping the user's characters: "报修　三（2）班 坏了，快修" → ("报修", ["三（2）班", "坏了，快修"])."""
    words = tidy(text).split(" ")
    return words[0], [w for w in words[1:] if w]


WEEKDAYS = "一二三四五六日"
_DATE = re.compile(r"(?:(\d{4})[-/年.])?(\d{1,2})[-/月.](\d{1,2})[日号]?")
_RELATIVE = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2}


def original_tail(original: str, tail: str) -> str:
    """The end of what the user wrote whose normalised form is `tail` (the end of a normalised copy):
    their own characters to store and echo ("已送回家，谢谢" keeps its full-width comma); `tail` if none is."""
    if not tail:
        return ""
    for start in range(len(original)):
        if normalize(original[start:]) == tail:
            return original[start:].strip()
    return tail


def day_label(day: date, inside: bool = False) -> str:
    """11月23日（周一）: how every reply and push names a day; `inside` brackets already, 11月23日 周一
    (a person writes 今天（11月23日 周一）, not 今天（11月23日（周一））)."""
    weekday = f"周{WEEKDAYS[day.weekday()]}"
    return f"{day.month}月{day.day}日 {weekday}" if inside else f"{day.month}月{day.day}日（{weekday}）"


def day_short(day: date) -> str:
    """11月23日: a day as an example a reply gives (always computed from the clock, never written in)."""
    return f"{day.month}月{day.day}日"


_WEEKDAY = re.compile(r"(?P<which>下下|下个?|本|这个?|这)?(?:周|星期|礼拜)(?P<day>[一二三四五六日天1-7])")
_WEEKDAY_NUMBERS = {**{ch: i for i, ch in enumerate(WEEKDAYS)}, "天": 6, **{str(i + 1): i for i in range(7)}}


def parse_weekday(word: str, today: date) -> date | None:
    """周五 / 星期五 / 礼拜五 → the next Friday (today, if it is one); 下周一 → Monday of next week;
    本周三 / 这周三 → Wednesday of this week (which may have passed)."""
    m = _WEEKDAY.fullmatch(word)
    if m is None:
        return None
    weekday = _WEEKDAY_NUMBERS[m["day"]]
    monday = today - timedelta(days=today.weekday())
    which = m["which"] or ""
    if which.startswith("下"):
        return monday + timedelta(weeks=2 if which == "下下" else 1, days=weekday)
    if which:
        return monday + timedelta(days=weekday)
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def parse_day(word: str, today: date) -> date | None:
    """今天/明天/后天, 周五/下周一/星期三, 11月24日, 11-24, 2026-11-24 → a date (a month-day without a year
    is the next one on or after about half a year ago, so "1月5日" said in December is next January)."""
    word = normalize(word)
    if word in _RELATIVE:
        return today + timedelta(days=_RELATIVE[word])
    weekday = parse_weekday(word, today)
    if weekday is not None:
        return weekday
    m = _DATE.fullmatch(word)
    if m is None:
        return None
    try:
        day = date(int(m[1] or today.year), int(m[2]), int(m[3]))
    except ValueError:
        return None
    if m[1] is None and day < today - timedelta(days=180):
        day = day.replace(year=day.year + 1)
    return day


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """A school-local day as UTC moments [its midnight, the next day's midnight), for `at >= start,
    at < end` queries. Both ends are local midnights, so a daylight-saving change day is 23 or 25 hours."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_key(day: date) -> str:
    """2026-11: how monthly rows (surveys, fire checks) name the month `day` falls in."""
    return f"{day.year:04d}-{day.month:02d}"


def month_span(day: date) -> tuple[date, date]:
    """The first day of the month `day` falls in and the first day of the next month, for
    `first <= d < after` queries: 2026-12-15 → (2026-12-01, 2027-01-01)."""
    first = day.replace(day=1)
    return first, date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def month_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The school-local month `day` falls in as UTC moments [its first midnight, the next month's)."""
    first, after = month_span(day)
    return day_bounds(first, tz)[0], day_bounds(after, tz)[0]


def local_naive(moment: datetime | None, tz: tzinfo) -> datetime | None:
    """A stored moment as school-local wall-clock time without a zone, for ledger cells (openpyxl
    cannot store aware datetimes); None stays None."""
    return moment.astimezone(tz).replace(tzinfo=None) if moment else None


def route_key(text: str) -> str:
    """A bus route's key: 3 / 3号线 / 三号线 / 3路 / 03 → "3"; other names are kept (normalised),
    for alias matching. Students' routes and the routes import both go through it."""
    text = normalize(text).replace(" ", "")
    core = re.sub(r"(号线|号|线|路)$", "", text)
    if core.isdigit():
        return str(int(core))
    value = chinese_to_int(core)
    return str(value) if value is not None else text


_LIST = re.compile(r"[;；、，,\s]+")


def split_list(text: str) -> list[str]:
    """"水电;消防、安全 其他" → ["水电", "消防", "安全", "其他"]: how operators' sheets list things."""
    return [w for w in _LIST.split(text) if w]


def clock_time(text: str) -> time:
    """"07:30" → 07:30 (settings hold times of day as HH:MM)."""
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


_CLOCK = re.compile(r"([01]?\d|2[0-3])\s*[:点时]\s*([0-5]\d)(?::[0-5]\d(?:\.\d+)?)?分?")
_DATE_TIME_TAIL = re.compile(r"[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")


def parse_date(value: object, today: date | None = None) -> date | None:
    """A date as an operator's sheet holds it: an Excel date or datetime cell, or text — 2026-12-14,
    2026/12/14, 2026.12.14, 2026年12月14日, "2026-12-14 00:00:00", or without a year (12月14日,
    12-14) the coming one as `parse_day` reads it (needs `today`). Every import reads dates through it."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = _DATE_TIME_TAIL.sub("", normalize(value)).replace(" ", "")
    match = _DATE.fullmatch(text)
    if match is None or (match[1] is None and today is None):
        return None
    return parse_day(text, today or date(int(match[1]), 1, 1))


def parse_clock(value: object) -> time | None:
    """A time of day as a sheet or a setting holds it: an Excel time cell (or a datetime one, whose
    clock is taken), or text — 7:05, 07:05, 7：05, 7:05:00, 7点05. Every import reads times through it."""
    if isinstance(value, datetime):
        return value.time().replace(second=0, microsecond=0)
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    if isinstance(value, timedelta):  # an Excel duration cell ([h]:mm)
        minutes = int(value.total_seconds() // 60)
        return time(minutes // 60, minutes % 60) if 0 <= minutes < 24 * 60 else None
    if not isinstance(value, str):
        return None
    match = _CLOCK.fullmatch(normalize(value))
    return time(int(match[1]), int(match[2])) if match else None
