"""Every push kind, declared once: its Chinese name, its named fields, an example; and how a push's
fields become a WeChat template message under the rules in force since 2023-05-04.

A template's keywords are typed by their name (`thing2`, `time4`, `character_string1` …) and WeChat
cuts or drops what does not fit: no `first`/`remark`, no colours or emoji, one line, `thing` at most
20 characters and so on. `HOUQIN_TEMPLATES` maps a kind to a template id and, per keyword, a format
over the kind's fields; `Template.render` fills and fits them, so what WeChat shows is what we chose.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

TITLE_LIMIT = 20
CUT = "…"
# a keyword's type is its name without the trailing number; the value's limit in characters
TYPE_LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
               "car_number": 8, "phone_number": 17, "amount": 11, "time": 20, "date": 20, "const": 20}
DATE_TYPES = {"time": "%Y年%m月%d日 %H:%M", "date": "%Y年%m月%d日"}
FIELD_TIME_FORMAT = "%Y-%m-%d %H:%M"  # how a push's `time` field is written (school-local)
RETIRED_KEYWORDS = ("first", "remark")
# emoji, pictographs, dingbats and the joiners/selectors that build them
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\u20E3]")
COMMON_FIELDS = ("title", "time", "text")
OLD_FORM = ("the retired form {{\"kind\": \"template id\"}} (first/content/remark templates, which WeChat "
            "no longer shows) is not accepted. Write each kind as {{\"template_id\": \"…\", \"data\": "
            "{{\"<keyword>\": \"<format>\"}}}}, e.g. {example}; `houqin templates list` shows each kind's fields.")
BAD_SHAPE = "{kind!r} must be {{\"template_id\": \"…\", \"data\": {{\"<keyword>\": \"<format>\"}}}}"
UNKNOWN_FIELD = "{kind!r}: {keyword!r} names {name!r}, not a field of this kind ({fields})"
BAD_FORMAT = "{kind!r}: {keyword!r} is not a valid format: {error}"


@dataclass(frozen=True)
class PushKind:
    name: str  # what the console, `houqin serve` and escalations call it
    fields: tuple[str, ...] = ()  # besides title, time and text, which every push has
    example: Mapping[str, str] = field(default_factory=dict)
    safety: bool = False

    @property
    def all_fields(self) -> tuple[str, ...]:
        return (*COMMON_FIELDS[:2], *self.fields, COMMON_FIELDS[2])


REPAIR = ("code", "place", "description", "status", "person")
REPAIR_EXAMPLE = {"code": "R12", "place": "三(2)班", "description": "投影仪不亮，屏幕一直闪烁", "status": "待接单", "person": "程财宝"}
BUS = ("route", "plate", "missing", "contact")
BUS_EXAMPLE = {"route": "1号线", "plate": "苏A12345", "missing": "2", "contact": "王师傅 13800000000"}

PUSH_KINDS: dict[str, PushKind] = {
    "canteen_alert": PushKind("食品安全反馈", safety=True),
    "repair_urgent": PushKind("紧急报修", REPAIR, REPAIR_EXAMPLE, safety=True),
    "bus_alarm": PushKind("校车警报（学生可能留在车上）", BUS, BUS_EXAMPLE, safety=True),
    "bus_mismatch": PushKind("校车人数不符", safety=True),
    "bus_alarm_ack": PushKind("校车警报已确认", safety=True),
    "repair_new": PushKind("新报修 / 安全隐患", REPAIR, REPAIR_EXAMPLE),
    "repair_progress": PushKind("报修进度", REPAIR, {**REPAIR_EXAMPLE, "status": "维修中"}),
    "repair_done": PushKind("报修完成", REPAIR, {**REPAIR_EXAMPLE, "status": "已完成待评价"}),
    "repair_reopened": PushKind("报修返修", REPAIR, REPAIR_EXAMPLE),
    "repair_rated": PushKind("报修评价", REPAIR, {**REPAIR_EXAMPLE, "status": "已关闭"}),
    "repair_follow_up": PushKind("报修补充", REPAIR, REPAIR_EXAMPLE),
    "repair_withdrawn": PushKind("报修撤销", REPAIR, {**REPAIR_EXAMPLE, "status": "已撤销"}),
    "repair_escalation": PushKind("报修超时督办"),
    "bus_arrival": PushKind("校车到校"),
    "bus_report_missing": PushKind("校车人数未报"),
    "canteen_reply": PushKind("食堂回复"),
    "canteen_accompanied": PushKind("陪餐意见"),
    "canteen_survey": PushKind("食堂满意度调查"),
    "weekly_menu": PushKind("下周菜单", ("week", "dishes"),
                            {"week": "11月30日-12月4日", "dishes": "周一 红烧鸡腿、番茄炒蛋"}),
    "menu_reminder": PushKind("菜单提醒"),
    "menu_unpublished": PushKind("菜单未发布"),
    "duty_reminder": PushKind("值日提醒"),
    "duty_missed": PushKind("值日缺岗"),
    "duty_stand_in": PushKind("代班记录"),
    "duty_swap_request": PushKind("代班请求"),
    "duty_swap_accepted": PushKind("代班已同意"),
    "duty_swap_declined": PushKind("代班被拒绝"),
    "drill_reminder": PushKind("演练提醒（教师）", ("drill", "scope"), {"drill": "消防疏散演练", "scope": "全校"}),
    "drill_notice": PushKind("演练通知（家长）", ("drill", "scope"), {"drill": "消防疏散演练", "scope": "全校"}),
    "drill_escalation": PushKind("演练未登记"),
    "safety_topic": PushKind("安全教育专题"),
    "friday_talk": PushKind("周五夕会提醒"),
    "fire_check_reminder": PushKind("消防自检提醒"),
    "fire_check_escalation": PushKind("消防自检督办"),
    "daily_digest": PushKind("后勤日报"),
    "delivery_alert": PushKind("推送未送达提醒"),
}
UNDECLARED = PushKind("")


def push_kind(kind: str) -> PushKind:
    return PUSH_KINDS.get(kind, UNDECLARED)


def push_fields(kind: str, text: str, at: datetime, given: Mapping[str, object] | None = None) -> dict[str, str]:
    """A push's named fields: `title` (its first line, at most 20 characters), `time` (school-local
    `at`, unless the caller names another), `text`, and what the caller gave."""
    first = text.strip().split("\n", 1)[0].strip() or push_kind(kind).name or kind
    values = {"title": fit_length(one_line(first), TITLE_LIMIT), "time": at.strftime(FIELD_TIME_FORMAT),
              "text": text}
    values.update({k: str(v) for k, v in (given or {}).items() if v is not None})
    return values


def example_fields(kind: str) -> dict[str, str]:
    declared = push_kind(kind)
    title = fit_length(f"【{declared.name}】" if declared.name else "通知", TITLE_LIMIT)
    return {"title": title, "time": "2026-11-24 10:00", **declared.example,
            "text": title + "".join(declared.example.values())}


# -- fitting a value to a keyword's type -------------------------------------------------------------
def keyword_type(keyword: str) -> str:
    return keyword.rstrip("0123456789")


def one_line(value: str) -> str:
    return " ".join(EMOJI.sub("", value).split())


def fit_length(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit - 1] + CUT


def fit(keyword: str, value: str) -> str:
    """`value` as WeChat would show it in `keyword`: one line, no emoji, dates in WeChat's form,
    at most the type's length (a cut value ends with "…")."""
    kind = keyword_type(keyword)
    value = one_line(value)
    if kind in DATE_TYPES:
        for pattern in (FIELD_TIME_FORMAT, "%Y-%m-%d"):
            try:
                return datetime.strptime(value, pattern).strftime(DATE_TYPES[kind])
            except ValueError:
                continue
    return fit_length(value, TYPE_LIMITS.get(kind, TITLE_LIMIT))


# -- the operator's mapping (HOUQIN_TEMPLATES) -----------------------------------------------------
@dataclass(frozen=True)
class Template:
    template_id: str
    data: Mapping[str, str]  # keyword -> format over the kind's fields

    def render(self, fields: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """The `data` of a template send: each keyword's format filled from `fields` and fitted."""
        return {keyword: {"value": fit(keyword, fmt.format_map(_Blank(fields)))} for keyword, fmt in self.data.items()}


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def format_names(fmt: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None]


def parse_templates(raw: str) -> dict[str, Template]:
    """HOUQIN_TEMPLATES, checked: every kind maps to a template id and keyword formats over its fields.
    Raises ValueError with what to write instead."""
    value = json.loads(raw) if raw.strip() else {}
    if not isinstance(value, dict):
        raise ValueError("not a JSON object of push kind → {\"template_id\": …, \"data\": …}")
    templates = {}
    for kind, entry in value.items():
        if isinstance(entry, str):
            example = json.dumps({kind: {"template_id": entry, "data": {"thing1": "{title}", "time2": "{time}"}}},
                                 ensure_ascii=False)
            raise ValueError(OLD_FORM.format(example=example))
        data = entry.get("data") if isinstance(entry, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("template_id"), str) and entry["template_id"]
                and isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values())):
            raise ValueError(BAD_SHAPE.format(kind=kind))
        known = set(push_kind(kind).all_fields)
        for keyword, fmt in data.items():
            try:
                names = format_names(fmt)
            except ValueError as exc:
                raise ValueError(BAD_FORMAT.format(kind=kind, keyword=keyword, error=exc)) from exc
            for name in names:
                if name not in known:
                    raise ValueError(UNKNOWN_FIELD.format(kind=kind, keyword=keyword, name=name,
                                                          fields=", ".join(push_kind(kind).all_fields)))
        templates[str(kind)] = Template(entry["template_id"], {str(k): v for k, v in data.items()})
    return templates


# -- checking the mapping against the account's templates (`houqin templates check`) ---------------
KEYWORD = re.compile(r"\{\{(\w+)\.DATA\}\}")
OFTEN = 0.25  # a keyword cut in more than this share of the sampled pushes is reported
CHECK_MISSING = "{kind}：模板 {template_id} 不在公众号的模板库中"
CHECK_KEYWORD = "{kind}：关键词 {keyword} 不在模板「{title}」的内容中（有：{keywords}）"
CHECK_LONG = "{kind}：{keyword} 的值（{fmt}）常超过 {type} 的 {limit} 字上限，{cut}/{total} 条会被截断"


def check_templates(templates: Mapping[str, Template], library: Sequence[Mapping[str, str]],
                    samples: Mapping[str, list[dict[str, str]]]) -> list[str]:
    """Problems with the mapping, per kind: a template not in `library` (the account's templates), a
    keyword not in its content, or a keyword whose value is cut in more than a quarter of `samples`
    (recent pushes' fields, else the kind's example)."""
    by_id = {t.get("template_id", ""): t for t in library}
    problems = []
    for kind, template in templates.items():
        found = by_id.get(template.template_id)
        if found is None:
            problems.append(CHECK_MISSING.format(kind=kind, template_id=template.template_id))
            continue
        keywords = KEYWORD.findall(found.get("content", ""))
        rows = samples.get(kind) or [example_fields(kind)]
        for keyword, fmt in template.data.items():
            if keyword not in keywords:
                problems.append(CHECK_KEYWORD.format(kind=kind, keyword=keyword, title=found.get("title", ""),
                                                     keywords="、".join(keywords)))
                continue
            kind_of = keyword_type(keyword)
            if kind_of in DATE_TYPES:
                continue
            limit = TYPE_LIMITS.get(kind_of, TITLE_LIMIT)
            cut = sum(len(one_line(fmt.format_map(_Blank(row)))) > limit for row in rows)
            if cut > OFTEN * len(rows):
                problems.append(CHECK_LONG.format(kind=kind, keyword=keyword, fmt=fmt, type=kind_of, limit=limit,
                                                  cut=cut, total=len(rows)))
    return problems
