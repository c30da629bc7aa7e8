"""Canteen (食堂): the weekly menu (菜单, 下周菜单, 今天吃什么; 发布菜单), feedback (食堂 1-5 [意见], a photo
within 10 minutes), food-safety alerts, the canteen's answers (回复 F<n>), the satisfaction surveys
(每月一次小调查，学期大调查: 食堂问卷), accompanied meals (陪餐); the menu import and the monthly report.

seeds/001's 分工 table gives the canteen to 宦欢: 每周菜单的落实与公布 每周四, 师生对食堂满意度测评 每月一次
小调查，学期大调查. The Thursday push, its fallbacks and the survey push are jobs in scheduler/canteen.py;
the public menu page is bot/menu_page.py.

The canteen role sees feedback with the giver's role but not their name; admin sees names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, lazyload, selectinload

from bot.config import Settings
from bot.engine import Context, Conversation, Incoming, Reply, open_conversation
from bot.numbering import allocate_number
from bot.outbox import NOT_BOUND, Notice, Outbox, short_reason, told
from bot.private import write_private
from bot.school import Calendar, admins, get_setting, people_with_role
from bot.tables import TableError, read_table
from bot.text import (
    WEEKDAYS,
    bare_score,
    day_bounds,
    day_label,
    day_short,
    local_naive,
    month_bounds,
    month_key,
    month_span,
    original_tail,
    parse_day,
)
from models import ROLE_NAMES, Person, RepairTicket
from models.canteen import (
    BREAKFAST,
    DRAFT,
    LUNCH,
    MEALS,
    MONTHLY,
    PUBLISHED,
    SNACK,
    TERM,
    AccompaniedMeal,
    CanteenFeedback,
    CanteenReply,
    FeedbackPhoto,
    MenuItem,
    MenuWeek,
    SurveyResponse,
)
from models.media import PHOTO_FAILED, PHOTO_SAVED

FEEDBACK_ROLES = ("teacher", "staff", "parent")  # in this order they name the giver's group
CANTEEN_SIDE = {"canteen", "admin"}
PHOTO_WINDOW = timedelta(minutes=10)
SURVEY_PUSH_WINDOW = timedelta(days=3)  # how long a pushed survey waits for the first answer
PUSH_AT = time(16, 0)  # Thursday: next week's menu goes out (scheduler/registry.py)
MAX_COMMENT = 500
REPLY_BYTES = 1900  # WeChat shows passive replies up to 2048 bytes
VIEW_LIMIT = 15
SKIP_WORDS = {"无", "没有", "跳过", "不用", "没", "skip"}
MEAL_WORDS = {BREAKFAST: BREAKFAST, "早饭": BREAKFAST, "早点": BREAKFAST, LUNCH: LUNCH, "午饭": LUNCH,
              "中餐": LUNCH, "中饭": LUNCH, SNACK: SNACK, "下午点心": SNACK, "午点": SNACK, "加餐": SNACK}
MEAL_CODES = {BREAKFAST: "breakfast", LUNCH: "lunch", SNACK: "snack"}
ACCOMPANIED_MEALS = (BREAKFAST, LUNCH)
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
SEPARATORS = re.compile(r"[;；、，,/|]+")
SCORE_WORDS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
# 4分 / 4 分 / 4星 is the score's unit, but not the 分 of 分量 ("4 分量可以再多一点" keeps 分量; "4分 分量少" too)
SCORE_RE = re.compile(r"([1-5一二三四五])(?![0-9])(?:\s*[分星](?!量))?\s*[,，。.:：、!！]?\s*(.*)", re.S)
CODE_RE = re.compile(r"[Ff](\d{1,9})(?!\d)\s*[:：,，]?\s*(\S.*)", re.S)  # 回复 F3 内容
WEEK_RE = re.compile(r"(\d{4})-?[Ww](\d{1,2})")
QUESTIONS = (("taste", "饭菜口味"), ("hygiene", "卫生状况"), ("portion", "饭菜分量"), ("service", "服务态度"))
SCORE_NAMES = {"overall": "总评", "taste": "口味", "hygiene": "卫生", "portion": "分量", "service": "服务"}  # a survey's
SURVEY_SCORES = tuple(SCORE_NAMES)


class Step:
    SCORE = "score"  # 食堂 without a score: asks for one
    QUESTION = "question"  # the questionnaire's 1-5 questions; data["q"] says which
    COMMENT = "comment"
    MONTHLY = "monthly"  # the monthly survey push: one answer, 1-5 and a comment


HELP_MENU = "菜单 / 下周菜单 / 今天吃什么 — 食堂菜单"
HELP_RATE = "食堂 1-5 [意见] — 为今天的饭菜打分（10分钟内可补发照片）"
HELP_SURVEY = "食堂问卷 — 填写食堂满意度问卷"
HELP_VIEW = "食堂评价 [今天|昨天|本周|日期] — 查看食堂评价"
HELP_REPLY = "回复 F编号 内容 — 回复食堂反馈人"
HELP_PUBLISH = "发布菜单 [本周|下周] — 发布菜单（默认下周）"
HELP_ACCOMPANY = "陪餐 早餐|午餐 [意见] — 记录陪餐"
HINT_RATE = "发送「食堂 1-5 意见」评价今天的饭菜"
PHOTO_FIRST = "如需为今天的饭菜拍照反馈，请先发送「食堂 1-5 意见」，10分钟内再发照片。"

# -- menus
MENU_HEADING = "{which}菜单（{first}–{last}）"
MENU_DRAFT_NOTE = "【草稿，尚未发布】发送「发布菜单{arg}」发布。"
MENU_NONE = "{which}菜单还没有公布。每周四下午公布下周菜单。"
MENU_LINK = "完整菜单（含过敏原、照片）：{url}"
MENU_CUT = "……（完整菜单见链接）"
DAY_HEADING = "{label}菜单："
DAY_NONE = "{label}没有食堂菜单（非上课日或菜单未公布）。"
ALLERGENS = "⚠含{allergens}"
THIS_WEEK, NEXT_WEEK = "本周", "下周"
# -- feedback
ASK_RATING = "请为今天的饭菜打分：回复 1-5（5 分最满意），可附意见，例如：4 米饭有点硬。发送「取消」可退出。"
BAD_RATING = "没有看懂评分。"
NOT_SCHOOL_DAY = "今天不是上课日，食堂不开餐，无需评价。"
RATED = "谢谢评价！已记录今天（{day}）的食堂评分 {rating} 分{comment}，编号 {code}。"
RATED_AGAIN = "你今天之前的评价 {earlier} 仍保留，平均分按你最新的评分计算。"
WITH_COMMENT = "，意见：{comment}"
PHOTO_HINT = "如有照片，10分钟内直接发送即可附在评价上。"
ALERTED = "你的反馈涉及食品安全，{told}"
PHOTO_ATTACHED = "照片已附在食堂评价 {code} 上。"
PHOTO_REPLACED = "照片已更换（食堂评价 {code}）。"
# -- the ledger's 照片 column: where the downloaded file is under the storage folder, or why it is not
PHOTO_STORED = "已保存 {path}"
PHOTO_FETCHING = "下载中"
PHOTO_RETRYING = "下载中（上次失败：{error}）"
PHOTO_LOST = "下载失败：{error}"
ALERT_CANTEEN = ("【食品安全反馈】{code} {day} {group}评价 {rating} 分：{comment}（关键词：{words}）。"
                 "请立即核查，并发送「回复 {code} 内容」答复反馈人。")
ALERT_ADMIN = "【食品安全反馈】{code} {day} {name}（{group}）评价 {rating} 分：{comment}（关键词：{words}）。食堂负责人：{canteen}"
ALERT_SURVEY = "【食品安全反馈】满意度调查 {day} {who}：{comment}（关键词：{words}）。请立即核查。"
# -- views
VIEW_HEADING = "{label}食堂评价：{count} 条，平均 {avg} 分"
VIEW_SUPERSEDED = "（{n} 条的评分已被同一人当天的新评分取代，不计入平均）"
VIEW_GROUPS = "{group} {count} 条 {avg} 分"
VIEW_NONE = "{label}还没有食堂评价。"
VIEW_ROW = "{code} {who} {rating}分{comment}{flags}"
FLAG_SUPERSEDED = "【评分已由{code}更新，不计入平均】"
VIEW_FOOTER = "答复反馈人请发送：回复 F编号 内容"
VIEW_BAD = "「{word}」不是日期。可以发送：食堂评价 今天 / 昨天 / 本周 / 上周 / {example}"
MORE = "……另有{n}条"
# -- replies
REPLY_USAGE = "请按格式发送：回复 F编号 内容，例如：回复 F3 已调整盐量，谢谢反馈"
REPLY_UNKNOWN = "没有找到食堂评价 {code}。"
REPLIED = "已将回复发送给 {code} 的反馈人（{group}）。"
REPLIED_NOBODY = "{code} 的反馈人已不在名单中，回复已记录。"
REPLIED_HELD = "回复已记录。夜间免打扰，将在 {at} 后送达 {code} 的反馈人（{group}）。"
REPLIED_UNBOUND = "回复已记录。{code} 的反馈人（{group}）：对方已解绑，无法送达。"
REPLIED_UNREACHED = "回复已记录。{code} 的反馈人（{group}）：对方暂时无法送达（{reason}）。"
REPLY_PUSH = "【食堂回复】你{day}的食堂评价 {code}（{rating}分{comment}）：{text}"
# -- publishing
PUBLISH_NONE = "{which}的菜单还没有导入，无法发布。"
PUBLISH_BAD = "「{word}」不是周次。可以发送：发布菜单 / 发布菜单 本周 / 发布菜单 {example}"
PUBLISHED_LATER = "已发布{which}菜单（{key}，{days} 天）。将于 {when} 推送给家长和教师。页面：{url}"
PUBLISHED_NOW = "已发布{which}菜单（{key}，{days} 天），并已推送给 {count} 位家长和教师。页面：{url}"
PUBLISHED_QUIET = "已发布{which}菜单（{key}，{days} 天）。页面：{url}"
ALREADY_PUBLISHED = "{which}菜单（{key}）已于 {at} 发布，无需重复发布。页面：{url}"
MENU_PUSH = "【下周菜单】{first}–{last} 午餐：\n{lines}\n早餐、点心和过敏原请点开完整菜单查看。"
# -- surveys
SURVEY_INTRO = "食堂满意度问卷（共5题，发送「取消」可退出）。"
QUESTION = "第{n}题：{label}，请回复 1-5 分（5 分最满意）。"
BAD_SCORE = "请回复 1 到 5 之间的一个数字。"
ASK_COMMENT = "第5题：对食堂还有什么意见或建议？没有请回复「无」。"
ASK_COMMENT_TEXT = "请用文字回答：对食堂还有什么意见或建议？没有请回复「无」。"
SURVEY_DONE = "问卷已提交，谢谢！口味 {taste}、卫生 {hygiene}、分量 {portion}、服务 {service} 分{comment}。"
SURVEY_REDONE = "（你本学期之前填写的问卷仍保留，统计按这份最新的问卷计算）"
MONTHLY_DONE = "谢谢参与{month}食堂满意度调查！评分 {rating} 分{comment}。"
MONTHLY_REDONE = "（你本月之前的评分仍保留，统计按最新的评分计算）"
ASK_MONTHLY = "请回复 1-5 为本月食堂打分（5 分最满意），可附意见，例如：4 菜品可以再丰富些。"
MONTHLY_PUSH = "【食堂满意度调查】请为{month}的食堂饭菜打分：直接回复 1-5（5 分最满意），可附意见，例如：4 菜品可以再丰富些。"
TERM_PUSH = ("【食堂学期满意度问卷】共5题，直接回复即可作答（发送「取消」可退出，之后可随时发送「食堂问卷」重新填写）。\n"
             + QUESTION.format(n=1, label=QUESTIONS[0][1]))
# -- 陪餐
ACCOMPANY_USAGE = "请按格式发送：陪餐 早餐|午餐 [意见]，例如：陪餐 午餐 菜品偏咸，米饭软硬适中"
ACCOMPANIED = "已记录{day}{meal}陪餐{note}。本月全校已陪餐 {count} 次。"
ACCOMPANIED_AGAIN = ("已记录{day}{meal}陪餐{note}。这是你这一餐的第 {n} 条陪餐记录，之前的记录仍保留（同一餐只计一次）。"
                     "本月全校已陪餐 {count} 次。")
ACCOMPANY_NOTE = "【陪餐意见】{name} {day}{meal}：{note}"

menu = Conversation("canteen_menu", title="菜单",
                    keywords=["菜单", "本周菜单", "下周菜单", "今天吃什么", "今日菜单", "明天吃什么"],
                    menu_keys=["MENU"], help=HELP_MENU, topic="食堂", rank=3)
publish = Conversation("menu_publish", title="发布菜单", keywords=["发布菜单"], roles=CANTEEN_SIDE, help=HELP_PUBLISH,
                      topic="食堂", rank=3)
view = Conversation("canteen_view", title="食堂评价汇总", keywords=["食堂评价", "评价汇总"], roles=CANTEEN_SIDE,
                    help=HELP_VIEW, topic="食堂", rank=2)
rating = Conversation("canteen", title="食堂", keywords=["食堂", "评价食堂"], menu_keys=["CANTEEN"],
                      roles=FEEDBACK_ROLES, help=HELP_RATE, gives_way=True, topic="食堂", rank=4,
                      hint=HINT_RATE, photo_hint=PHOTO_FIRST)
survey = Conversation("canteen_survey", title="食堂问卷", keywords=["食堂问卷", "满意度调查"], roles=FEEDBACK_ROLES,
                      help=HELP_SURVEY, gives_way=True, topic="食堂")
# 回复 is routed by handlers.suggestions.reply (回复 Y<n>), which passes 回复 F<n> to answer_feedback below
reply = Conversation("canteen_reply", title="回复食堂反馈", roles=CANTEEN_SIDE, help=HELP_REPLY,
                       topic="食堂", rank=4)
accompany = Conversation("accompanied_meal", title="陪餐", keywords=["陪餐"], roles={"admin"}, help=HELP_ACCOMPANY,
                         topic="食堂")


# -- weeks ----------------------------------------------------------------------------------------
def iso_week(day: date) -> tuple[int, int]:
    year, week, _ = day.isocalendar()
    return year, week


def week_monday(year: int, week: int) -> date:
    return date.fromisocalendar(year, week, 1)


def week_key(year: int, week: int) -> str:
    return f"{year}-W{week:02d}"


def parse_week(text: str) -> tuple[int, int] | None:
    """2026-W48 (or 2026W48, 2026-w48) → (2026, 48), if such an ISO week exists."""
    match = WEEK_RE.fullmatch(text.strip())
    if match is None:
        return None
    try:
        week_monday(int(match[1]), int(match[2]))
    except ValueError:
        return None
    return int(match[1]), int(match[2])


def find_week(db: Session, year: int, week: int) -> MenuWeek | None:
    return db.scalar(select(MenuWeek).where(MenuWeek.year == year, MenuWeek.week == week))


def menu_url(settings: Settings, year: int, week: int) -> str:
    return f"{settings.public_url}/menu/{week_key(year, week)}"


def next_week_of(today: date) -> tuple[int, int]:
    return iso_week(today - timedelta(days=today.weekday()) + timedelta(days=7))


def push_moment(menu: MenuWeek, tz: tzinfo) -> datetime:
    """The Thursday 16:00 before the menu's week: when it goes to parents and teachers."""
    thursday = week_monday(menu.year, menu.week) - timedelta(days=4)
    return datetime.combine(thursday, PUSH_AT, tzinfo=tz)


def short_day(day: date) -> str:
    return f"周{WEEKDAYS[day.weekday()]} {day.month}/{day.day}"


def month_day(day: date) -> str:
    return f"{day.month}月{day.day}日"


def term_key(day: date) -> str:
    """2026秋 (August to January) or 2027春 (February to July)."""
    if day.month >= 8:
        return f"{day.year}秋"
    return f"{day.year - 1}秋" if day.month == 1 else f"{day.year}春"


# -- menu text ----------------------------------------------------------------------------------------
def item_line(item: MenuItem, allergens: bool = True) -> str:
    line = f"{item.meal}：{'、'.join(item.dish_list)}"
    if allergens and item.allergen_list:
        line += f"（{ALLERGENS.format(allergens='、'.join(item.allergen_list))}）"
    return line


def by_day(items: Iterable[MenuItem]) -> dict[date, list[MenuItem]]:
    days: dict[date, list[MenuItem]] = {}
    for item in sorted(items, key=lambda i: (i.day, MEALS.index(i.meal) if i.meal in MEALS else 9)):
        days.setdefault(item.day, []).append(item)
    return days


def week_lines(menu: MenuWeek, meals: Sequence[str] = MEALS) -> list[str]:
    lines = []
    for day, items in by_day(menu.items).items():
        chosen = [i for i in items if i.meal in meals]
        if len(meals) == 1:
            lines += [f"{short_day(day)} {'、'.join(i.dish_list)}" for i in chosen]
        elif chosen:
            lines.append(short_day(day))
            lines += [f"  {item_line(i)}" for i in chosen]
    return lines


def fits(lines: list[str]) -> bool:
    return len("\n".join(lines).encode()) <= REPLY_BYTES


def week_text(menu: MenuWeek, which: str, url: str) -> str:
    """The week as a reply: every meal if it fits WeChat's limit, else lunches, else cut short."""
    days = sorted({i.day for i in menu.items})
    heading = MENU_HEADING.format(which=which, first=month_day(days[0]), last=month_day(days[-1]))
    tail = [MENU_LINK.format(url=url)] if url else []
    for meals in (MEALS, (LUNCH,)):
        lines = [heading, *week_lines(menu, meals), *tail]
        if fits(lines):
            return "\n".join(lines)
    lines = [heading]
    for line in week_lines(menu, (LUNCH,)):
        if not fits([*lines, line, MENU_CUT, *tail]):
            break
        lines.append(line)
    return "\n".join([*lines, MENU_CUT, *tail])


def visible(menu: MenuWeek | None, ctx: Context) -> bool:
    """Published menus are for everyone; the canteen and admin also see drafts (marked)."""
    return menu is not None and bool(menu.items) and (menu.published or ctx.has_role(*CANTEEN_SIDE))


# -- 菜单 / 下周菜单 / 今天吃什么 --------------------------------------------------------------------------
@menu.entry
def show_menu(msg: Incoming, ctx: Context) -> Reply:
    today = ctx.local_now.date()
    word = msg.command.lower()
    if word in ("今天吃什么", "今日菜单"):
        return Reply.end(day_text(ctx, today, "今天"))
    if word == "明天吃什么":
        return Reply.end(day_text(ctx, today + timedelta(days=1), "明天"))
    nxt = word == "下周菜单" or (msg.args[:1] == [NEXT_WEEK])
    year, week = next_week_of(today) if nxt else iso_week(today)
    which = NEXT_WEEK if nxt else THIS_WEEK
    found = find_week(ctx.db, year, week)
    if found is None or not visible(found, ctx):
        return Reply.end(MENU_NONE.format(which=which))
    if not found.published:
        arg = "" if nxt else f" {THIS_WEEK}"
        return Reply.end(MENU_DRAFT_NOTE.format(arg=arg) + "\n" + week_text(found, which, ""))
    return Reply.end(week_text(found, which, menu_url(ctx.settings, year, week)))


def day_text(ctx: Context, day: date, word: str) -> str:
    label = f"{word}（{day_label(day, inside=True)}）"
    found = find_week(ctx.db, *iso_week(day))
    items = [i for i in found.items if i.day == day] if found is not None and found.published else []
    if found is None or not items:
        return DAY_NONE.format(label=label)
    lines = [DAY_HEADING.format(label=label), *(item_line(i) for i in by_day(items)[day])]
    lines.append(MENU_LINK.format(url=menu_url(ctx.settings, found.year, found.week)))
    return "\n".join(lines)


# -- 发布菜单 -------------------------------------------------------------------------------------------
@publish.entry
def publish_entry(msg: Incoming, ctx: Context) -> Reply:
    today = ctx.local_now.date()
    word = msg.args[0] if msg.args else NEXT_WEEK
    if word == NEXT_WEEK:
        target, which = next_week_of(today), NEXT_WEEK
    elif word == THIS_WEEK:
        target, which = iso_week(today), THIS_WEEK
    else:
        parsed = parse_week(word)
        if parsed is None:
            return Reply.end(PUBLISH_BAD.format(word=word, example=week_key(*next_week_of(today))))
        target, which = parsed, ""
    found = find_week(ctx.db, *target)
    if found is None or not found.items:
        label = f"{which}（{week_key(*target)}）" if which else week_key(*target)
        return Reply.end(PUBLISH_NONE.format(which=label))
    return Reply.end(publish_week(ctx.db, found, ctx.person, ctx.now, ctx.settings, ctx.outbox, which))


def publish_week(db: Session, found: MenuWeek, by: Person | None, now: datetime, settings: Settings,
                 outbox: Outbox, which: str = "") -> str:
    """Publish a drafted week. Published after its Thursday push already went by (admin was told
    instead), it goes to parents and teachers at once."""
    url = menu_url(settings, found.year, found.week)
    fields = {"which": which, "key": found.key, "url": url, "days": len({i.day for i in found.items})}
    if found.published:
        at = found.published_at.astimezone(settings.tz) if found.published_at else now.astimezone(settings.tz)
        return ALREADY_PUBLISHED.format(**fields, at=f"{month_day(at.date())} {at:%H:%M}")
    found.status, found.published_at, found.published_by = PUBLISHED, now, by
    moment = push_moment(found, settings.tz)
    week_end, _ = day_bounds(week_monday(found.year, found.week) + timedelta(days=7), settings.tz)
    if now < moment:
        local = moment.astimezone(settings.tz)
        return PUBLISHED_LATER.format(**fields, when=f"{day_label(local.date())} {local:%H:%M}")
    if found.pushed_at is None and now < week_end:
        count = push_menu(db, found, now, settings, outbox)
        return PUBLISHED_NOW.format(**fields, count=count)
    return PUBLISHED_QUIET.format(**fields)


def menu_summary(found: MenuWeek) -> str:
    days = sorted({i.day for i in found.items})
    lines = week_lines(found, (LUNCH,)) or [f"{short_day(d)} 见完整菜单" for d in days]
    return MENU_PUSH.format(first=month_day(days[0]), last=month_day(days[-1]), lines="\n".join(lines))


def menu_fields(found: MenuWeek) -> dict[str, str]:
    """The weekly menu push's named fields (bot.push_kinds): the week and its lunches on one line."""
    days = sorted({i.day for i in found.items})
    return {"week": f"{month_day(days[0])}-{month_day(days[-1])}", "dishes": "；".join(week_lines(found, (LUNCH,)))}


def push_menu(db: Session, found: MenuWeek, now: datetime, settings: Settings, outbox: Outbox) -> int:
    """The week's lunches and the page link to every parent and teacher; returns how many."""
    people = people_with_role(db, "parent", "teacher")
    outbox.notify(people, "weekly_menu", menu_summary(found), url=menu_url(settings, found.year, found.week),
                  about=found, fields=menu_fields(found))
    found.pushed_at = now
    return len(people)


# -- 食堂 1-5 [意见] ------------------------------------------------------------------------------------
def parse_rating(text: str, kept: str) -> tuple[int, str] | None:
    """"4 米饭有点硬", "4分，米饭有点硬", "四 ..." → (4, "米饭有点硬"): matched on `text` (normalised), the
    comment in the user's own characters from `kept` (the same message as written: "很好吃，就是汤有点淡")."""
    match = SCORE_RE.fullmatch(text.strip())
    if match is None:
        return None
    word = match.group(1)
    return SCORE_WORDS.get(word) or int(word), original_tail(kept, match.group(2).strip())[:MAX_COMMENT]


def giver_role(person: Person) -> str:
    return next((r for r in FEEDBACK_ROLES if r in person.role_set), "teacher")


def alert_words_in(db: Session, text: str) -> list[str]:
    words = [w.strip() for w in re.split(r"[;；、]", get_setting(db, "canteen_alert_words")) if w.strip()]
    return [w for w in words if w in text]


def with_comment(comment: str) -> str:
    return WITH_COMMENT.format(comment=comment) if comment else ""


@rating.entry
def rate_entry(msg: Incoming, ctx: Context) -> Reply:
    if not msg.args:
        return Reply(ASK_RATING, next=Step.SCORE)
    parsed = parse_rating(" ".join(msg.args), " ".join(msg.kept_args))
    if parsed is None:
        return Reply(f"{BAD_RATING}{ASK_RATING}", next=Step.SCORE)
    return record_feedback(ctx, *parsed)


@rating.on(Step.SCORE)
def rate_step(msg: Incoming, ctx: Context) -> Reply | None:
    if not msg.text:
        return None
    parsed = parse_rating(msg.text, msg.kept_text)
    if parsed is None:
        return Reply(f"{BAD_RATING}{ASK_RATING}", next=Step.SCORE)
    return record_feedback(ctx, *parsed)


def record_feedback(ctx: Context, score: int, comment: str) -> Reply:
    """A new feedback F<n>, always: the giver's earlier ones today keep their text, food-safety words,
    photo and replies, and only their score stops counting in the averages (this one's counts)."""
    person = ctx.person
    assert person is not None  # the conversation is for bound roles only
    today = ctx.local_now.date()
    if not Calendar(ctx.db).is_school_day(today):
        return Reply.end(NOT_SCHOOL_DAY)
    # The number first: its counter row stays locked until this request commits, so the same person's
    # rating sent twice at once is read below as "earlier" by whichever comes second.
    number = allocate_number(ctx.db, CanteenFeedback.number)
    earlier = list(ctx.db.scalars(select(CanteenFeedback).where(
        CanteenFeedback.person_id == person.id, CanteenFeedback.day == today)
        .order_by(CanteenFeedback.number).with_for_update()))
    feedback = CanteenFeedback(number=number, person=person, day=today,
                               role=giver_role(person), rating=score, comment=comment, given_at=ctx.now,
                               alert_words="、".join(alert_words_in(ctx.db, comment)))
    ctx.db.add(feedback)
    ctx.db.flush()
    for row in earlier:
        if row.counted:
            row.superseded_by = feedback
    fields = {"day": day_label(today, inside=True), "rating": score, "comment": with_comment(comment),
              "code": feedback.code}
    text = RATED.format(**fields)
    if earlier:
        text += RATED_AGAIN.format(earlier="、".join(r.code for r in earlier))
    if feedback.alert_words:
        text += ALERTED.format(told=told(alert_feedback(ctx, feedback)))
    return Reply.end(f"{text}\n{PHOTO_HINT}")


def canteen_staff(db: Session) -> list[Person]:
    """The canteen role, less those who are admin too (they get admin's version of a message)."""
    return [p for p in people_with_role(db, "canteen") if "admin" not in p.role_set]


def alert_feedback(ctx: Context, feedback: CanteenFeedback) -> Notice:
    """Food-safety words: the canteen (the giver's role only) and admin (with the name) at once.
    Returns who was reached; whoever was not is escalated by the outbox."""
    fields = {"code": feedback.code, "day": day_label(feedback.day), "group": ROLE_NAMES[feedback.role],
              "rating": feedback.rating, "comment": feedback.comment, "words": feedback.alert_words,
              "name": feedback.person.name if feedback.person else "（已删除）"}
    named = {"code": feedback.code, "comment": feedback.comment, "words": feedback.alert_words}
    canteen = ctx.outbox.notify(canteen_staff(ctx.db), "canteen_alert", ALERT_CANTEEN.format(**fields), safety=True,
                                fields=named)
    office = ctx.outbox.notify(admins(ctx.db), "canteen_alert",
                               ALERT_ADMIN.format(**fields, canteen=told(canteen)), safety=True, fields=named)
    return canteen + office


@rating.on_event("image")
def photo_after_rating(msg: Incoming, ctx: Context) -> Reply | None:
    """An image within 10 minutes of rating joins that feedback, unless a repair was filed (or
    finished) by the sender since: then it is the repair's."""
    person = ctx.person
    if person is None or not msg.media_id:
        return None
    feedback = ctx.db.scalar(select(CanteenFeedback).where(
        CanteenFeedback.person_id == person.id, CanteenFeedback.given_at >= ctx.now - PHOTO_WINDOW)
        .order_by(CanteenFeedback.given_at.desc()).limit(1).with_for_update())
    if feedback is None or repair_since(ctx.db, person, feedback.given_at):
        return None
    if feedback.photo is not None:  # the row starts over with the new media id; the first file stays
        feedback.photo.replace_media(msg.media_id, ctx.now)
        return Reply.end(PHOTO_REPLACED.format(code=feedback.code))
    feedback.photo = FeedbackPhoto(media_id=msg.media_id[:200], next_attempt_at=ctx.now, created_at=ctx.now)
    return Reply.end(PHOTO_ATTACHED.format(code=feedback.code))


def repair_since(db: Session, person: Person, moment: datetime) -> bool:
    filed = db.scalar(select(func.max(RepairTicket.filed_at)).where(RepairTicket.reporter_id == person.id))
    done = db.scalar(select(func.max(RepairTicket.done_at)).where(RepairTicket.assignee_id == person.id))
    return any(m is not None and m > moment for m in (filed, done))


# -- 食堂评价 (the canteen's and admin's view) --------------------------------------------------------
def view_period(words: list[str], today: date) -> tuple[date, date, str] | str:
    """(first, last, label) of the days asked for, or the answer to a bad word."""
    if not words or words[0] == "今天":
        return today, today, f"今天（{day_label(today, inside=True)}）"
    word = words[0]
    monday = today - timedelta(days=today.weekday())
    if word == "昨天":
        day = today - timedelta(days=1)
        return day, day, f"昨天（{day_label(day, inside=True)}）"
    if word == THIS_WEEK:
        return monday, today, f"本周（{month_day(monday)}起）"
    if word == "上周":
        return monday - timedelta(days=7), monday - timedelta(days=1), f"上周（{month_day(monday - timedelta(days=7))}起）"
    asked = parse_day(word, today)
    if asked is None:
        return VIEW_BAD.format(word=word, example=day_short(today - timedelta(days=1)))
    return asked, asked, day_label(asked)


def average(values: Sequence[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


@view.entry
def show_feedback(msg: Incoming, ctx: Context) -> Reply:
    period = view_period(msg.args, ctx.local_now.date())
    if isinstance(period, str):
        return Reply.end(period)
    first, last, label = period
    rows = list(ctx.db.scalars(select(CanteenFeedback).where(CanteenFeedback.day >= first, CanteenFeedback.day <= last)
                               .order_by(CanteenFeedback.number)))
    if not rows:
        return Reply.end(VIEW_NONE.format(label=label))
    names = ctx.has_role("admin")
    codes = {r.id: r.code for r in rows}
    superseded = sum(1 for r in rows if not r.counted)
    lines = [VIEW_HEADING.format(label=label, count=len(rows), avg=average(counted_ratings(rows)))
             + (VIEW_SUPERSEDED.format(n=superseded) if superseded else ""),
             "；".join(VIEW_GROUPS.format(group=ROLE_NAMES[g], count=len(v), avg=average(v))
                      for g, v in group_ratings(rows).items())]
    lines += [feedback_line(r, names, codes, several_days=first != last) for r in rows[-VIEW_LIMIT:]]
    if len(rows) > VIEW_LIMIT:
        lines.append(MORE.format(n=len(rows) - VIEW_LIMIT))
    lines.append(VIEW_FOOTER)
    return Reply.end("\n".join(lines))


class Rated(Protocol):
    """A feedback as the averages read it: a CanteenFeedback or a ledger's FeedbackLine."""

    @property
    def counted(self) -> bool: ...
    @property
    def rating(self) -> int: ...
    @property
    def role(self) -> str: ...


def counted_ratings(rows: Iterable[Rated]) -> list[int]:
    """The scores that count in an average: a person's latest rating of a day, not the ones it superseded."""
    return [r.rating for r in rows if r.counted]


def group_ratings(rows: Iterable[Rated]) -> dict[str, list[int]]:
    """The counted scores by the givers' group."""
    groups: dict[str, list[int]] = {g: [] for g in ("teacher", "parent", "staff")}
    for row in rows:
        if row.counted:
            groups.setdefault(row.role, []).append(row.rating)
    return {g: v for g, v in groups.items() if v}


def superseded_code(row: CanteenFeedback, codes: dict[int, str]) -> str:
    """The code of the giver's later rating whose score counts instead of this one's, or "" (counted).
    `codes` maps the ids of the rows at hand (the later rating is the same day's) to their codes."""
    if row.superseded_by_id is None:
        return ""
    return codes.get(row.superseded_by_id) or (row.superseded_by.code if row.superseded_by else "?")


def feedback_line(row: CanteenFeedback, names: bool, codes: dict[int, str], several_days: bool = False) -> str:
    group = ROLE_NAMES.get(row.role, row.role)
    who = f"{row.person.name}（{group}）" if names and row.person else group
    if several_days:
        who = f"{row.day.month}/{row.day.day} {who}"
    flags = ("【食品安全】" if row.alert_words else "") + ("【有照片】" if row.photo is not None else "")
    flags += "【已回复】" if row.replies else ""
    flags += FLAG_SUPERSEDED.format(code=superseded_code(row, codes)) if not row.counted else ""
    return VIEW_ROW.format(code=row.code, who=who, rating=row.rating,
                           comment=f"：{row.comment}" if row.comment else "", flags=flags)


# -- 回复 F<n> ---------------------------------------------------------------------------------------
@reply.entry
def answer_feedback(msg: Incoming, ctx: Context) -> Reply:
    match = CODE_RE.fullmatch(" ".join(msg.args))
    if match is None:
        return Reply.end(REPLY_USAGE)
    number, text = int(match[1]), original_tail(" ".join(msg.kept_args), match[2].strip())[:MAX_COMMENT]
    feedback = ctx.db.scalar(select(CanteenFeedback).where(CanteenFeedback.number == number))
    if feedback is None:
        return Reply.end(REPLY_UNKNOWN.format(code=f"F{number}"))
    return Reply.end(reply_feedback(ctx.db, ctx.outbox, feedback, ctx.person, text, ctx.now, ctx.settings.tz))


def reply_feedback(db: Session, outbox: Outbox, feedback: CanteenFeedback, person: Person | None, text: str,
                   now: datetime, tz: tzinfo) -> str:
    """Keep the canteen's reply with the feedback and push it to the giver (who stays anonymous); the
    chat's 回复 F<n> and the console's reply form both come here. Returns what happened."""
    feedback.replies.append(CanteenReply(person=person, text=text, at=now))
    if feedback.person is None:
        return REPLIED_NOBODY.format(code=feedback.code)
    notice = outbox.notify(feedback.person, "canteen_reply", REPLY_PUSH.format(
        day=day_label(feedback.day), code=feedback.code, rating=feedback.rating,
        comment=f"：{feedback.comment}" if feedback.comment else "", text=text),
        fields={"code": feedback.code, "rating": feedback.rating, "comment": feedback.comment, "reply": text})
    fields = {"code": feedback.code, "group": ROLE_NAMES.get(feedback.role, feedback.role)}
    if notice.unreached:  # the giver stays anonymous to the canteen: no name, and no escalation
        reason = notice.unreached[0][1]
        if reason == NOT_BOUND:
            return REPLIED_UNBOUND.format(**fields)
        return REPLIED_UNREACHED.format(**fields, reason=short_reason(reason))
    if notice.held_until is not None:
        return REPLIED_HELD.format(**fields, at=f"{notice.held_until.astimezone(tz):%H:%M}")
    return REPLIED.format(**fields)


# -- surveys ---------------------------------------------------------------------------------------
def question(index: int) -> str:
    return QUESTION.format(n=index + 1, label=QUESTIONS[index][1])


@survey.entry
def start_survey(msg: Incoming, ctx: Context) -> Reply:
    period = term_key(ctx.local_now.date())
    return Reply(f"{SURVEY_INTRO}\n{question(0)}", next=Step.QUESTION,
                 data={"kind": TERM, "period": period, "q": 0, "answers": {}})


@survey.on(Step.QUESTION)
def got_score(msg: Incoming, ctx: Context) -> Reply | None:
    if not msg.text:
        return None
    index = int(ctx.data.get("q", 0))
    score = bare_score(msg.text)
    if score is None:
        return Reply(f"{BAD_SCORE}{question(index)}", next=Step.QUESTION)
    answers = {**ctx.data.get("answers", {}), QUESTIONS[index][0]: score}
    if index + 1 < len(QUESTIONS):
        return Reply(question(index + 1), next=Step.QUESTION, data={"q": index + 1, "answers": answers})
    return Reply(ASK_COMMENT, next=Step.COMMENT, data={"answers": answers})


@survey.on(Step.COMMENT)
def got_comment(msg: Incoming, ctx: Context) -> Reply | None:
    if msg.msg_type == "image":
        return None
    if not msg.text:
        return Reply(ASK_COMMENT_TEXT, next=Step.COMMENT)
    comment = "" if msg.text in SKIP_WORDS else msg.kept_text[:MAX_COMMENT]
    answers = {k: int(v) for k, v in ctx.data.get("answers", {}).items()}
    if set(answers) != {k for k, _ in QUESTIONS}:  # an old state without every answer: start again
        return start_survey(msg, ctx)
    _, again = save_survey(ctx, TERM, str(ctx.data.get("period") or term_key(ctx.local_now.date())),
                           comment, **answers)
    text = SURVEY_DONE.format(**answers, comment=f"，意见：{comment}" if comment else "")
    return Reply.end(text + (SURVEY_REDONE if again else ""))


@survey.on(Step.MONTHLY)
def got_monthly(msg: Incoming, ctx: Context) -> Reply | None:
    if not msg.text:
        return None
    parsed = parse_rating(msg.text, msg.kept_text)
    if parsed is None:
        return Reply(f"{BAD_SCORE}{ASK_MONTHLY}", next=Step.MONTHLY)
    score, comment = parsed
    period = str(ctx.data.get("period") or month_key(ctx.local_now.date()))
    _, again = save_survey(ctx, MONTHLY, period, comment, overall=score)
    month = f"{int(period[5:7])}月" if len(period) == 7 else "本月"
    text = MONTHLY_DONE.format(month=month, rating=score, comment=with_comment(comment))
    return Reply.end(text + (MONTHLY_REDONE if again else ""))


def save_survey(ctx: Context, kind: str, period: str, comment: str, **scores: int) -> tuple[SurveyResponse, bool]:
    """A new answer, always: the person's earlier answers of this kind and period keep their comment and
    food-safety words, and only their scores stop counting in the results (this one's count). Food-safety
    words alert. Returns the answer and whether there was an earlier one."""
    person = ctx.person
    assert person is not None
    # The person's row locked until this request commits: two answers sent at once are taken one after
    # the other, so the second sees the first as earlier and exactly one answer's scores count.
    ctx.db.execute(select(Person.id).where(Person.id == person.id).with_for_update())
    earlier = list(ctx.db.scalars(select(SurveyResponse).where(
        SurveyResponse.person_id == person.id, SurveyResponse.kind == kind, SurveyResponse.period == period)
        .order_by(SurveyResponse.id)))
    response = SurveyResponse(person=person, kind=kind, period=period, role=giver_role(person), comment=comment,
                              at=ctx.now, alert_words="、".join(alert_words_in(ctx.db, comment)),
                              **{key: scores.get(key) for key in SURVEY_SCORES})
    ctx.db.add(response)
    ctx.db.flush()
    for row in earlier:
        if row.counted:
            row.superseded_by = response
    if response.alert_words:
        fields = {"day": day_label(ctx.local_now.date()), "comment": comment, "words": response.alert_words}
        named = {"comment": comment, "words": response.alert_words}
        ctx.outbox.notify(canteen_staff(ctx.db), "canteen_alert",
                          ALERT_SURVEY.format(**fields, who=ROLE_NAMES[response.role]), safety=True, fields=named)
        ctx.outbox.notify(admins(ctx.db), "canteen_alert",
                          ALERT_SURVEY.format(**fields, who=f"{person.name}（{ROLE_NAMES[response.role]}）"),
                          safety=True, fields=named)
    ctx.db.flush()
    return response, bool(earlier)


def open_survey(db: Session, people: Iterable[Person], kind: str, period: str, now: datetime) -> int:
    """Put each recipient's WeChat into the survey, so a plain reply to the push answers it. Someone
    in the middle of another conversation is left alone (they can send 食堂问卷 later). Returns how many."""
    step, data = ((Step.MONTHLY, {"kind": MONTHLY, "period": period}) if kind == MONTHLY
                  else (Step.QUESTION, {"kind": TERM, "period": period, "q": 0, "answers": {}}))
    return open_conversation(db, people, survey.name, step, data, now + SURVEY_PUSH_WINDOW, now)


# -- 陪餐 --------------------------------------------------------------------------------------------
@accompany.entry
def record_accompanied(msg: Incoming, ctx: Context) -> Reply:
    meal = MEAL_WORDS.get(msg.args[0]) if msg.args else None
    if meal not in ACCOMPANIED_MEALS:
        return Reply.end(ACCOMPANY_USAGE)
    person = ctx.person
    assert person is not None
    today = ctx.local_now.date()
    note = " ".join(msg.kept_args[1:])[:MAX_COMMENT]
    ctx.db.add(AccompaniedMeal(person=person, day=today, meal=meal, note=note, at=ctx.now))
    ctx.db.flush()
    records = int(ctx.db.scalar(select(func.count()).select_from(AccompaniedMeal).where(
        AccompaniedMeal.person_id == person.id, AccompaniedMeal.day == today, AccompaniedMeal.meal == meal)) or 0)
    if note:
        canteen = [p for p in people_with_role(ctx.db, "canteen") if p.id != person.id]
        ctx.outbox.notify(canteen, "canteen_accompanied", ACCOMPANY_NOTE.format(
            name=person.name, day=day_label(today), meal=meal, note=note))
    template = ACCOMPANIED_AGAIN if records > 1 else ACCOMPANIED
    return Reply.end(template.format(day=day_label(today), meal=meal, note=f"，意见：{note}" if note else "",
                                     n=records, count=accompanied_count(ctx.db, today)))


def accompanied_count(db: Session, day: date, until: date | None = None) -> int:
    """The meals accompanied in `day`'s month (or from `day` to `until`): a person's several records of
    one meal count once."""
    first, after = (day, until) if until else month_span(day)
    eaten = (select(AccompaniedMeal.person_id, AccompaniedMeal.day, AccompaniedMeal.meal).distinct()
             .where(AccompaniedMeal.day >= first, AccompaniedMeal.day < after).subquery())
    return int(db.scalar(select(func.count()).select_from(eaten)) or 0)


# -- the menu import ---------------------------------------------------------------------------------
MENU_COLUMNS = {"date": ("日期",), "meal": ("餐次", "餐别", "餐", "类别"), "dishes": ("菜品", "菜名", "菜肴", "菜单"),
                "allergens": ("过敏原", "过敏", "致敏物"), "photo": ("照片", "图片", "照片文件")}


@dataclass
class MealRow:
    day: date
    meal: str
    dishes: str
    allergens: str
    photo: Path | None = None


def joined(text: str) -> str:
    return "、".join(w.strip() for w in SEPARATORS.split(text) if w.strip())


def import_menu(db: Session, path: str | Path, storage: Path | None = None, today: date | None = None) -> int:
    """Rows of 日期, 餐次 (早餐/午餐/点心), 菜品, 过敏原 and an optional 照片 file (next to the table;
    copied into `storage`, ignored without one). A row replaces that day's meal; new weeks are drafts."""
    path = Path(path)
    rows = read_table(path, MENU_COLUMNS, required=("date", "meal", "dishes"))
    problems: list[str] = []
    parsed: list[MealRow] = []
    seen: dict[tuple[date, str], int] = {}
    for row in rows:
        day = row.date("date", today)
        meal = MEAL_WORDS.get(row.get("meal"))
        dishes = joined(row.get("dishes"))
        if day is None:
            problems.append(f"第{row.number}行：日期「{row.get('date')}」格式不对（例：2026-11-23）")
        if meal is None:
            problems.append(f"第{row.number}行：餐次「{row.get('meal')}」不对（早餐、午餐或点心）")
        if not dishes:
            problems.append(f"第{row.number}行：菜品为空")
        photo = _photo_file(path, row.get("photo"), row.number, problems) if row.get("photo") else None
        if day is None or meal is None:
            continue
        if (day, meal) in seen:
            problems.append(f"第{row.number}行：{day:%Y-%m-%d} {meal}与第{seen[(day, meal)]}行重复")
        seen[(day, meal)] = row.number
        parsed.append(MealRow(day, meal, dishes, joined(row.get("allergens")), photo))
    if not rows:
        problems.append("文件中没有菜单")
    if problems:
        raise TableError(problems)
    return save_menu(db, parsed, storage)


def _photo_file(table: Path, name: str, number: int, problems: list[str]) -> Path | None:
    photo = (table.parent / name).resolve()
    if photo.suffix.lower() not in PHOTO_SUFFIXES:
        problems.append(f"第{number}行：照片「{name}」不是图片文件（jpg、png、gif、webp）")
    elif not photo.is_file():
        problems.append(f"第{number}行：找不到照片文件「{name}」（放在表格所在的文件夹）")
    else:
        return photo
    return None


def save_menu(db: Session, rows: Iterable[MealRow], storage: Path | None = None) -> int:
    count = 0
    for row in rows:
        year, week = iso_week(row.day)
        found = find_week(db, year, week)
        if found is None:
            found = MenuWeek(year=year, week=week, status=DRAFT)
            db.add(found)
            db.flush()
        item = db.scalar(select(MenuItem).where(MenuItem.day == row.day, MenuItem.meal == row.meal))
        if item is None:
            item = MenuItem(day=row.day, meal=row.meal)
            found.items.append(item)
        item.dishes, item.allergens, item.position = row.dishes, row.allergens, MEALS.index(row.meal)
        if row.photo is not None and storage is not None:
            relative = Path("menus") / found.key / f"{row.day:%Y-%m-%d}-{MEAL_CODES[row.meal]}{row.photo.suffix.lower()}"
            write_private(storage / relative, row.photo.read_bytes())
            item.photo = relative.as_posix()
        count += 1
    db.flush()
    return count


# -- the monthly report ----------------------------------------------------------------------------
FEEDBACK_HEADER = ["编号", "日期", "评价时间", "身份", "姓名", "评分", "意见", "食品安全", "照片", "食堂回复", "计入平均"]
COUNTED, SUPERSEDED_BY = "是", "否（评分已由{code}更新）"
DAILY_HEADER = ["日期", "评价数", "平均分", "教师平均", "家长平均", "后勤平均"]
GROUP_HEADER = ["身份", "评价数", "平均分", "1-2分", "3分", "4-5分"]
WORDS_HEADER = ["词语", "次数"]
SURVEY_HEADER = ["填写时间", "类型", "期次", "身份", "姓名", *SCORE_NAMES.values(), "意见", "食品安全", "计入统计"]
SURVEY_SUPERSEDED_BY = "否（评分已由 {at} 的答卷更新）"
MEALS_HEADER = ["日期", "餐次", "陪餐人", "意见", "记录时间"]
KIND_NAMES = {MONTHLY: "月度调查", TERM: "学期问卷"}
COMPLAINT_AT_MOST = 3  # a rating at or below this makes its comment a complaint
TOP_WORDS = 20
DEGREE_WORDS = re.compile(r"[太很超偏较]")  # degree adverbs jieba glues to the word they grade
STOP_WORDS_TEXT = (
    "的 了 是 有 太 说 很 也 都 就 还 又 在 和 与 及 我 你 他 她 它 们 吧 啊 呀 呢 吗 嘛 哦 这 那 个 些 点 不 没 会 要 让 被 把 给 跟 比"
    " 得 地 着 过 去 来 上 下 里 中 能 可 每 天 次 菜 饭 汤 吃 今天 今日 昨天 孩子 小孩 饭菜 食堂 菜品 有点 一点 一些 有些 比较 感觉 觉得"
    " 没有 不是 一个 可以 希望 建议 非常 特别 还是 但是 就是 什么 怎么 老师 学校 谢谢 大家 我们 他们 每天 时候 因为 所以 如果 而且"
    " 然后 现在 已经 不过 还有 这个 那个 这样 一样 一下 有时 有时候 应该 需要 真的 其实")
STOP_WORDS = frozenset(STOP_WORDS_TEXT.split())


@dataclass
class CanteenReport:
    feedback: list[list[Any]]
    daily: list[list[Any]]
    groups: list[list[Any]]
    words: list[list[Any]]
    surveys: list[list[Any]]
    meals: list[list[Any]]  # every 陪餐 record
    meal_count: int  # the meals accompanied (a person's several records of one meal count once)


def photo_state(photo: FeedbackPhoto | None) -> str:
    """The ledger's 照片 column: the saved file's path under the storage folder, or why there is none."""
    if photo is None:
        return ""
    if photo.status == PHOTO_SAVED:
        return PHOTO_STORED.format(path=photo.path)
    if photo.status == PHOTO_FAILED:
        return PHOTO_LOST.format(error=photo.last_error or "")
    return PHOTO_RETRYING.format(error=photo.last_error) if photo.last_error else PHOTO_FETCHING


def complaint_words(texts: Iterable[str], top: int = TOP_WORDS) -> list[list[Any]]:
    """The most frequent words (jieba) in complaints, less a small stop-word list and punctuation."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    counts: Counter[str] = Counter()
    for text in texts:
        for token in jieba.lcut(text):
            for word in DEGREE_WORDS.split(token.strip()):  # 太咸 → 咸, 菜太凉 → 菜 凉
                if word and word not in STOP_WORDS and all("\u4e00" <= ch <= "\u9fff" or ch.isalpha() for ch in word):
                    counts[word] += 1
    return [[w, n] for w, n in counts.most_common(top)]


def month_feedback(db: Session, month: date, until: date | None = None) -> list[CanteenFeedback]:
    """The feedback on the meals of the month `month` falls in (or from `month` to `until`), by day and
    number, with the givers and the replies: the report's 评价明细 and the console's 食堂评价 page."""
    first, after = (month, until) if until else month_span(month)
    return list(db.scalars(select(CanteenFeedback).where(CanteenFeedback.day >= first, CanteenFeedback.day < after)
                           .options(joinedload(CanteenFeedback.person),
                                    selectinload(CanteenFeedback.replies).joinedload(CanteenReply.person))
                           .order_by(CanteenFeedback.day, CanteenFeedback.number)))


@dataclass(frozen=True)
class FeedbackLine:
    """One feedback as the 食堂台账 reads it: columns, not an ORM object with its person, photo and
    replies loaded one by one (a month of a 2,000-student school has thousands)."""

    id: int
    number: int
    day: date
    given_at: datetime
    role: str
    name: str
    rating: int
    comment: str
    alert_words: str
    superseded_by_id: int | None
    photo: str  # photo_state's text
    replies: str

    @property
    def counted(self) -> bool:
        return self.superseded_by_id is None

    @property
    def code(self) -> str:
        return f"F{self.number}"


def feedback_lines(db: Session, first: date, after: date) -> list[FeedbackLine]:
    """The feedback of the days [first, after), by day and number, read as columns in three queries."""
    span = (CanteenFeedback.day >= first, CanteenFeedback.day < after)
    photos = {row.feedback_id: photo_state(row) for row in db.execute(  # type: ignore[arg-type]
        select(FeedbackPhoto.feedback_id, FeedbackPhoto.status, FeedbackPhoto.path, FeedbackPhoto.last_error)
        .join(CanteenFeedback, FeedbackPhoto.feedback_id == CanteenFeedback.id).where(*span))}
    replies: dict[int, list[str]] = {}
    for feedback_id, text in db.execute(select(CanteenReply.feedback_id, CanteenReply.text)
                                        .join(CanteenFeedback, CanteenReply.feedback_id == CanteenFeedback.id)
                                        .where(*span).order_by(CanteenReply.at, CanteenReply.id)):
        replies.setdefault(feedback_id, []).append(text)
    query = (select(CanteenFeedback.id, CanteenFeedback.number, CanteenFeedback.day, CanteenFeedback.given_at,
                    CanteenFeedback.role, Person.name, CanteenFeedback.rating, CanteenFeedback.comment,
                    CanteenFeedback.alert_words, CanteenFeedback.superseded_by_id)
             .outerjoin(Person, CanteenFeedback.person_id == Person.id).where(*span)
             .order_by(CanteenFeedback.day, CanteenFeedback.number))
    return [FeedbackLine(id=r.id, number=r.number, day=r.day, given_at=r.given_at, role=r.role, name=r.name or "",
                         rating=r.rating, comment=r.comment, alert_words=r.alert_words,
                         superseded_by_id=r.superseded_by_id, photo=photos.get(r.id, ""),
                         replies="；".join(replies.get(r.id, []))) for r in db.execute(query)]


def canteen_report(db: Session, month: date, tz: tzinfo, after: date | None = None) -> CanteenReport:
    """The month's 食堂台账 (or from `month` to `after`, a term)."""
    rows = feedback_lines(db, *((month, after) if after else month_span(month)))
    codes = {r.id: r.code for r in rows}
    feedback = [[r.code, r.day, local_naive(r.given_at, tz), ROLE_NAMES.get(r.role, r.role), r.name, r.rating,
                 r.comment, r.alert_words, r.photo, r.replies,
                 COUNTED if r.counted else SUPERSEDED_BY.format(code=codes.get(r.superseded_by_id or 0, "?"))]
                for r in rows]
    by_day: dict[date, list[FeedbackLine]] = {}
    for r in rows:
        by_day.setdefault(r.day, []).append(r)
    daily = []
    for day, today in by_day.items():  # rows come by day
        by_group = group_ratings(today)
        scores = counted_ratings(today)
        daily.append([day, len(scores), average(scores),
                      *(average(by_group.get(g, [])) for g in ("teacher", "parent", "staff"))])
    groups = [[ROLE_NAMES[g], len(v), average(v), sum(1 for x in v if x <= 2), v.count(3), sum(1 for x in v if x >= 4)]
              for g, v in group_ratings(rows).items()]
    surveys = month_surveys(db, month, tz, after)
    survey_rows = [[local_naive(s.at, tz), KIND_NAMES.get(s.kind, s.kind), s.period, ROLE_NAMES.get(s.role, s.role),
                    s.person.name if s.person else "", *(getattr(s, k) for k in SURVEY_SCORES), s.comment,
                    s.alert_words, survey_counted(s, tz)] for s in surveys]
    complaints = [r.comment for r in rows if r.comment and (r.rating <= COMPLAINT_AT_MOST or r.alert_words)]
    complaints += [s.comment for s in surveys if s.comment and (s.alert_words or min(
        (v for k in SURVEY_SCORES if (v := getattr(s, k)) is not None), default=5) <= COMPLAINT_AT_MOST)]
    meals = [[m.day, m.meal, m.person.name if m.person else "", m.note, local_naive(m.at, tz)]
             for m in month_meals(db, month, after)]
    return CanteenReport(feedback, daily, groups, complaint_words(complaints), survey_rows, meals,
                         accompanied_count(db, month, after))


NAME_ONLY = (lazyload(Person.roles), lazyload(Person.bindings))  # a giver's name is shown: not their roles, bindings


def month_surveys(db: Session, month: date, tz: tzinfo, until: date | None = None) -> list[SurveyResponse]:
    """Every survey answer given in the month `month` falls in (or from `month` to `until`), superseded
    ones too, oldest first: the report's 满意度调查 and the console's."""
    start, end = month_bounds(month, tz)
    if until is not None:
        start, end = day_bounds(month, tz)[0], day_bounds(until, tz)[0]
    return list(db.scalars(select(SurveyResponse).where(SurveyResponse.at >= start, SurveyResponse.at < end)
                           .options(joinedload(SurveyResponse.person).options(*NAME_ONLY),
                                    joinedload(SurveyResponse.superseded_by))
                           .order_by(SurveyResponse.at, SurveyResponse.id)))


def survey_averages(answers: Iterable[SurveyResponse]) -> dict[str, float | None]:
    """Each score's average over the answers that count (not superseded by the person's later answer)."""
    counted = [a for a in answers if a.counted]
    return {key: average([v for a in counted if (v := getattr(a, key)) is not None]) for key in SURVEY_SCORES}


def month_meals(db: Session, month: date, until: date | None = None) -> list[AccompaniedMeal]:
    """Every 陪餐 record of the month `month` falls in (or from `month` to `until`), by day, meal and time."""
    first, after = (month, until) if until else month_span(month)
    return list(db.scalars(select(AccompaniedMeal).where(AccompaniedMeal.day >= first, AccompaniedMeal.day < after)
                           .options(joinedload(AccompaniedMeal.person).options(*NAME_ONLY))
                           .order_by(AccompaniedMeal.day, AccompaniedMeal.meal, AccompaniedMeal.at)))


def survey_counted(answer: SurveyResponse, tz: tzinfo) -> str:
    """The ledger's 计入统计: 是, or when the person's later answer that counts instead was given."""
    later = answer.superseded_by
    if later is None:
        return COUNTED
    return SURVEY_SUPERSEDED_BY.format(at=f"{local_naive(later.at, tz):%Y-%m-%d %H:%M}")


__all__ = ["accompany", "canteen_report", "import_menu", "menu", "publish", "rating", "reply", "survey", "view"]
