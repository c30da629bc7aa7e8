"""Every push kind, declared once: its Chinese name, its named fields and an example.

Every push has `title` (its first line, at most 20 characters: what a template's first keyword
shows), `time` and `text`; a kind adds the fields its template keywords may name (a repair push:
`code`, `place`, `description`, `status`, `person`). How fields become a WeChat template message
under the 2023 rules is the platform's business: bot.wechat.templates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

TITLE_LIMIT = 20
CUT = "…"
FIELD_TIME_FORMAT = "%Y-%m-%d %H:%M"  # how a push's `time` field is written (school-local)
# emoji, pictographs, dingbats and the joiners/selectors that build them
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\u20E3]")
COMMON_FIELDS = ("title", "time", "text")


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

BUS_COUNT = ("route", "trip", "count", "expected")
DUTY = ("post", "slot")
DUTY_EXAMPLE = {"post": "校门口", "slot": "早岗"}
SWAP = ("post", "slot", "day", "person")
SWAP_EXAMPLE = {**DUTY_EXAMPLE, "day": "12月1日（周二）", "person": "王强"}
FEEDBACK = ("code", "rating", "comment")
MONTH = ("month",)
TASK = ("code", "task", "due", "person")
TASK_EXAMPLE = {"code": "T3", "task": "直饮水更换滤芯（8月）", "due": "8月25日", "person": "程财宝"}
REQUEST = ("code", "item", "person")  # a loan, requisition or disposal to approve, and its answer
REQUEST_EXAMPLE = {"code": "J3", "item": "篮球 ×3", "person": "张丽"}
WEEK = ("week",)

PUSH_KINDS: dict[str, PushKind] = {
    "canteen_alert": PushKind("食品安全反馈", ("code", "comment", "words"),
                              {"code": "F3", "comment": "汤里有异物", "words": "异物"}, safety=True),
    "repair_urgent": PushKind("紧急报修", REPAIR, REPAIR_EXAMPLE, safety=True),
    "bus_alarm": PushKind("校车警报（学生可能留在车上）", BUS, BUS_EXAMPLE, safety=True),
    "bus_mismatch": PushKind("校车人数不符", BUS_COUNT,
                             {"route": "1号线", "trip": "上学", "count": "37", "expected": "38"}, safety=True),
    "bus_alarm_ack": PushKind("校车警报已确认", ("route", "trip", "person"),
                              {"route": "1号线", "trip": "放学", "person": "李娜"}, safety=True),
    "repair_new": PushKind("新报修 / 安全隐患", REPAIR, REPAIR_EXAMPLE),
    "repair_progress": PushKind("报修进度", REPAIR, {**REPAIR_EXAMPLE, "status": "维修中"}),
    "repair_done": PushKind("报修完成", REPAIR, {**REPAIR_EXAMPLE, "status": "已完成待评价"}),
    "repair_reopened": PushKind("报修返修", REPAIR, REPAIR_EXAMPLE),
    "repair_rated": PushKind("报修评价", REPAIR, {**REPAIR_EXAMPLE, "status": "已关闭"}),
    "repair_follow_up": PushKind("报修补充", REPAIR, REPAIR_EXAMPLE),
    "repair_withdrawn": PushKind("报修撤销", REPAIR, {**REPAIR_EXAMPLE, "status": "已撤销"}),
    "repair_escalation": PushKind("报修超时督办", REPAIR, {**REPAIR_EXAMPLE, "status": "待接单"}),
    "bus_arrival": PushKind("校车到校", ("student", "route"), {"student": "陈小明", "route": "1号线"}),
    "bus_report_missing": PushKind("校车人数未报", ("route", "trip"), {"route": "1号线", "trip": "上学"}),
    "canteen_reply": PushKind("食堂回复", (*FEEDBACK, "reply"),
                              {"code": "F3", "rating": "3", "comment": "汤太咸", "reply": "已调整，谢谢反馈"}),
    "canteen_accompanied": PushKind("陪餐意见"),
    "canteen_survey": PushKind("食堂满意度调查", MONTH, {"month": "11月"}),
    "weekly_menu": PushKind("下周菜单", ("week", "dishes"),
                            {"week": "11月30日-12月4日", "dishes": "周一 红烧鸡腿、番茄炒蛋"}),
    "menu_reminder": PushKind("菜单提醒", WEEK, {"week": "11月30日-12月4日"}),
    "menu_unpublished": PushKind("菜单未发布", (*WEEK, "status"), {"week": "11月30日-12月4日", "status": "未录入"}),
    "duty_reminder": PushKind("值日提醒", DUTY, DUTY_EXAMPLE),
    "duty_missed": PushKind("值日缺岗", DUTY, DUTY_EXAMPLE),
    "duty_stand_in": PushKind("代班记录", (*DUTY, "person"), {**DUTY_EXAMPLE, "person": "王强"}),
    "duty_swap_request": PushKind("代班请求", SWAP, SWAP_EXAMPLE),
    "duty_swap_accepted": PushKind("代班已同意", SWAP, SWAP_EXAMPLE),
    "duty_swap_declined": PushKind("代班被拒绝", SWAP, SWAP_EXAMPLE),
    "drill_reminder": PushKind("演练提醒（教师）", ("drill", "scope"), {"drill": "消防疏散演练", "scope": "全校"}),
    "drill_notice": PushKind("演练通知（家长）", ("drill", "scope"), {"drill": "消防疏散演练", "scope": "全校"}),
    "drill_escalation": PushKind("演练未登记", MONTH, {"month": "11月"}),
    "safety_topic": PushKind("安全教育专题", (*MONTH, "topic"), {"month": "12月", "topic": "防火、冬季交通安全"}),
    "friday_talk": PushKind("周五夕会提醒", ("topic",), {"topic": "防火、冬季交通安全"}),
    "fire_check_reminder": PushKind("消防自检提醒", MONTH, {"month": "11月"}),
    "fire_check_escalation": PushKind("消防自检督办", (*MONTH, "person"), {"month": "11月", "person": "程财宝"}),
    "task_reminder": PushKind("任务提醒", TASK, TASK_EXAMPLE),
    "task_escalation": PushKind("任务逾期督办", TASK, TASK_EXAMPLE),
    "daily_digest": PushKind("后勤日报"),
    "county_digest": PushKind("教育局日报"),
    "delivery_alert": PushKind("推送未送达提醒"),
    "bind_guard": PushKind("绑定码疑似被猜测"),
    "notice": PushKind("通知（回执）"),
    "suggestion_new": PushKind("意见箱新意见", ("code", "topic"), {"code": "Y3", "topic": "食堂"}),
    "suggestion_reply": PushKind("意见箱答复", ("code", "topic"), {"code": "Y3", "topic": "食堂"}),
    "office_survey": PushKind("后勤满意度测评", ("period",), {"period": "2026秋"}),
    "loan_request": PushKind("借用申请", REQUEST, REQUEST_EXAMPLE),
    "loan_decided": PushKind("借用审批结果", REQUEST, REQUEST_EXAMPLE),
    "loan_due": PushKind("借用到期提醒", ("items",), {"items": "篮球 ×3（J3）今天到期"}),
    "loan_overdue": PushKind("借用逾期督办", ("items",), {"items": "张丽 篮球 ×3（J3）逾期4天"}),
    "keys_term_check": PushKind("期末钥匙清点", ("count",), {"count": "3"}),
    "supply_request": PushKind("领用申请", REQUEST, {**REQUEST_EXAMPLE, "code": "L5", "item": "A4纸 2包"}),
    "supply_decided": PushKind("领用审批结果", REQUEST, {**REQUEST_EXAMPLE, "code": "L5", "item": "A4纸 2包"}),
    "supply_low": PushKind("库存不足", ("item", "count"), {"item": "A4纸", "count": "3"}),
    "disposal_request": PushKind("报废申请", REQUEST, {**REQUEST_EXAMPLE, "code": "BF2", "item": "投影仪（DJ-0302）"}),
    "disposal_decided": PushKind("报废审批结果", REQUEST, {**REQUEST_EXAMPLE, "code": "BF2", "item": "投影仪（DJ-0302）"}),
    "parent_bound": PushKind("家长绑定提醒", ("student", "person"), {"student": "陈小明", "person": "陈建国"}),
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
    named = {k: str(v) for k, v in (given or {}).items() if v is not None}
    declared = push_kind(kind)
    if declared.name and (unknown := set(named) - set(declared.all_fields)):
        raise ValueError(f"{kind}: fields {sorted(unknown)} are not declared in bot.push_kinds")
    values.update(named)
    return values


def example_fields(kind: str) -> dict[str, str]:
    declared = push_kind(kind)
    title = fit_length(f"【{declared.name}】" if declared.name else "通知", TITLE_LIMIT)
    return {"title": title, "time": "2026-11-24 10:00", **declared.example,
            "text": title + "".join(declared.example.values())}




def one_line(value: str) -> str:
    return " ".join(EMOJI.sub("", value).split())


def fit_length(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit - 1] + CUT
