"""Canteen: menus (import, drafts, 发布菜单, 菜单/下周菜单/今天吃什么), the Thursday job and its two
fallbacks, feedback (one a day, photos downloaded into storage, who sees what), food-safety alerts, 回复 F<n>, the survey push
and the questionnaire, 陪餐, the digest section and the monthly report."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import Engine, Integer, String, column, func, select, table, text, update
from sqlalchemy.orm import Session

from bot.db import alembic_config, make_engine, upgrade
from bot.engine import IMAGE_UNUSED
from bot.export import read_ledger
from bot.numbering import allocate_number
from bot.school import set_setting
from bot.services import Services
from bot.wechat.fake import fake_jpeg
from bot.wechat.media import media_worker
from handlers.canteen import (
    DAILY_HEADER,
    FEEDBACK_HEADER,
    MEALS_HEADER,
    PHOTO_FIRST,
    SURVEY_HEADER,
    import_menu,
)
from models import (
    AccompaniedMeal,
    Base,
    CanteenFeedback,
    CanteenReply,
    ConversationState,
    FeedbackPhoto,
    MenuItem,
    MenuWeek,
    NumberSeries,
    SurveyResponse,
)
from models.base import UTCDateTime

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-W48 is Monday 23 to Sunday 29 November; 26 November is a Thursday. W49 starts 30 November.
MENU_CSV = """日期,餐次,菜品,过敏原
2026-11-23,早餐,豆浆;肉包,大豆;小麦
2026-11-23,午餐,红烧鸡腿;番茄炒蛋;米饭,鸡蛋
2026-11-23,点心,酸奶,牛奶
2026-11-26,早餐,小米粥;花卷,小麦
2026-11-26,午餐,清蒸鲈鱼;宫保鸡丁;米饭,鱼;花生
2026-11-30,午餐,红烧肉;西红柿炒蛋;米饭,鸡蛋
2026-12-01,午餐,香菇滑鸡;家常豆腐,大豆
"""
PARENTS_AND_TEACHERS = {"张丽", "王强", "陈建国"}


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, clock):
    """宦欢 runs the canteen, 周春明 is admin; two teachers, a parent, a staff member."""
    clock.set("2026-11-26 10:00")  # Thursday
    people.add("周春明", "admin")
    people.add("宦欢", "canteen")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("王强", "teacher")
    people.add("陈建国", "parent")
    people.add("程财宝", "staff", categories="电教;水电;其他")
    return people


@pytest.fixture
def menus(school, services: Services, tmp_path: Path):
    """W48 (this week) and W49 (next week) imported as drafts; W48 published."""
    path = tmp_path / "menu.csv"
    path.write_text(MENU_CSV, encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_menu(s, path) == 7
        this_week = s.scalar(select(MenuWeek).where(MenuWeek.week == 48))
        this_week.status = "published"
    return path


def feedback_rows(services: Services) -> list[CanteenFeedback]:
    with services.factory() as s:
        return list(s.scalars(select(CanteenFeedback).order_by(CanteenFeedback.number)))


def names(rows) -> set[str]:
    return {r.name for r in rows}


# -- menus -----------------------------------------------------------------------------------------
def test_import_makes_drafts_hidden_until_published_then_pushed_at_once(school, houqin, tmp_path: Path,
                                                                         wechat_user, queued, services) -> None:
    path = tmp_path / "menu.csv"
    path.write_text(MENU_CSV, encoding="utf-8")
    result = houqin("menu", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "菜单导入完成：7 条" in result.output
    with services.factory() as s:
        weeks = {w.key: w.status for w in s.scalars(select(MenuWeek))}
    assert weeks == {"2026-W48": "draft", "2026-W49": "draft"}
    parent, canteen = wechat_user("陈建国"), wechat_user("宦欢")
    assert parent.say("菜单").text == "本周菜单还没有公布。每周四下午公布下周菜单。"
    assert "今天（11月26日 周四）没有食堂菜单" in parent.say("今天吃什么").text
    preview = canteen.say("菜单").text
    assert preview.startswith("【草稿，尚未发布】发送「发布菜单 本周」发布。") and "清蒸鲈鱼" in preview
    assert "/menu/" not in preview  # a draft has no public page
    published = houqin("menu", "publish", "2026-W48")  # the CLI runs on the wall clock, not the test's
    assert published.exit_code == 0, published.output
    assert published.output.startswith("已发布菜单（2026-W48，2 天）")
    shown = parent.say("菜单").text
    assert shown.startswith("本周菜单（11月23日–11月26日）")
    assert "周一 11/23\n  早餐：豆浆、肉包（⚠含大豆、小麦）" in shown
    assert "午餐：清蒸鲈鱼、宫保鸡丁、米饭（⚠含鱼、花生）" in shown
    assert shown.endswith("完整菜单（含过敏原、照片）：http://127.0.0.1:5000/menu/2026-W48")
    again = houqin("menu", "publish", "2026-W48")
    assert "菜单（2026-W48）已于" in again.output and "无需重复发布" in again.output
    assert houqin("menu", "publish", "2026-W52").exit_code != 0


def test_import_reports_every_problem_by_row_and_imports_nothing(school, houqin, tmp_path: Path,
                                                                  services: Services) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("日期,餐次,菜品,过敏原,照片\n2026-13-01,午餐,米饭,,\n2026-11-23,夜宵,面条,,\n"
                   "2026-11-24,午餐,,,\n2026-11-25,午餐,米饭,,missing.jpg\n2026-11-25,中餐,面条,,\n", encoding="utf-8")
    result = houqin("menu", "import", str(bad))
    assert result.exit_code == 1
    for expected in ("第2行：日期「2026-13-01」格式不对", "第3行：餐次「夜宵」不对", "第4行：菜品为空",
                     "第5行：找不到照片文件「missing.jpg」", "第6行：2026-11-25 午餐与第5行重复"):
        assert expected in result.output
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(MenuItem)) == 0


def test_anyone_may_ask_today_this_week_and_next_week(menus, wechat_user) -> None:
    stranger = wechat_user("路人甲", bind=False)
    today = stranger.say("今天吃什么").text
    assert today.startswith("今天（11月26日 周四）菜单：\n早餐：小米粥、花卷（⚠含小麦）\n午餐：清蒸鲈鱼")
    assert today.endswith("/menu/2026-W48")
    assert "本周菜单（11月23日–11月26日）" in stranger.click("MENU").text
    assert stranger.say("下周菜单").text == "下周菜单还没有公布。每周四下午公布下周菜单。"
    assert "菜单 / 下周菜单 / 今天吃什么" in stranger.say("帮助").text


def test_canteen_publishes_next_week_and_the_thursday_job_sends_it(menus, wechat_user, runner, queued, deliver,
                                                                     fake_wechat, clock) -> None:
    parent = wechat_user("陈建国")
    canteen = wechat_user("宦欢")
    assert "下周菜单还没有公布" in parent.say("下周菜单").text
    assert canteen.say("发布菜单").text == ("已发布下周菜单（2026-W49，2 天）。将于 11月26日（周四） 16:00 推送给家长和教师。"
                                        "页面：http://127.0.0.1:5000/menu/2026-W49")
    assert queued("weekly_menu") == []  # not before Thursday 16:00
    assert runner.run_now("remind_menu_publish", at("2026-11-26 12:00")).result == "下周菜单 2026-W49 已发布"
    assert "红烧肉" in parent.say("下周菜单").text
    run = runner.run_now("push_weekly_menu", at("2026-11-26 16:00"))
    assert run.result == "已推送下周菜单 2026-W49 给 3 位家长和教师"
    pushed = queued("weekly_menu")
    assert names(pushed) == PARENTS_AND_TEACHERS
    assert pushed[0].text.startswith("【下周菜单】11月30日–12月1日 午餐：\n周一 11/30 红烧肉、西红柿炒蛋、米饭")
    assert queued("menu_reminder") == [] and queued("menu_unpublished") == []
    clock.set("2026-11-26 16:01")
    deliver()
    assert fake_wechat.sent_to("陈建国")[-1].mentions("【下周菜单】", "香菇滑鸡", "http://127.0.0.1:5000/menu/2026-W49")
    # even a forced re-run of the occurrence (`houqin jobs run --force`) does not send the week twice
    assert "已推送过" in runner.run_now("push_weekly_menu", at("2026-11-26 16:00"), force=True).result
    assert len(queued("weekly_menu")) == 3


def test_thursday_noon_reminds_the_canteen_when_unpublished(menus, runner, queued) -> None:
    run = runner.run_now("remind_menu_publish", at("2026-11-26 12:00"))
    assert run.result == "已提醒：宦欢"
    (row,) = queued("menu_reminder")
    assert row.name == "宦欢" and "下周（11月30日–12月4日）菜单还未发布" in row.text and "「发布菜单」" in row.text
    # a week with nothing imported at all
    runner.run_now("remind_menu_publish", at("2026-12-03 12:00"))
    assert "下周（12月7日–12月11日）菜单还没有导入" in queued("menu_reminder")[-1].text


def test_still_unpublished_at_four_tells_admin_and_sends_nothing_until_published(menus, runner, queued,
                                                                                 wechat_user, clock) -> None:
    run = runner.run_now("push_weekly_menu", at("2026-11-26 16:00"))
    assert run.result == "下周菜单未发布（草稿）：已告知管理员，未推送"
    assert queued("weekly_menu") == []
    (told,) = queued("menu_unpublished")
    assert told.name == "周春明" and "到 16:00 仍未发布（草稿），本周没有推送给家长和教师" in told.text
    assert "食堂负责人：宦欢" in told.text
    clock.set("2026-11-26 16:40")  # published late: it goes out at once
    assert "并已推送给 3 位家长和教师" in wechat_user("宦欢").say("发布菜单").text
    assert names(queued("weekly_menu")) == PARENTS_AND_TEACHERS
    # nothing imported for the week after: admin is told that too
    assert "未导入" in runner.run_now("push_weekly_menu", at("2026-12-03 16:00")).result


def test_publish_refusals(menus, wechat_user) -> None:
    assert "仅限" in wechat_user("张丽").say("发布菜单").text
    canteen = wechat_user("宦欢")
    assert canteen.say("发布菜单 下下周").text.endswith("发布菜单 2026-W49")  # the example: next week, from the clock
    assert canteen.say("食堂评价 前天吧").text.endswith("/ 11月25日")  # yesterday, from the clock
    assert canteen.say("发布菜单 2026-W50").text == "2026-W50的菜单还没有导入，无法发布。"
    assert canteen.say("发布菜单 下周").text.startswith("已发布下周菜单（2026-W49")
    assert "本周菜单（2026-W48）已于" in canteen.say("发布菜单 本周").text


# -- feedback --------------------------------------------------------------------------------------
def test_a_second_rating_the_same_day_is_kept_beside_the_first(school, wechat_user, services: Services) -> None:
    parent = wechat_user("陈建国")
    reply = parent.say("食堂 4 米饭有点硬").text
    assert reply.startswith("谢谢评价！已记录今天（11月26日 周四）的食堂评分 4 分，意见：米饭有点硬，编号 F1。")
    assert "10分钟内直接发送即可附在评价上" in reply
    again = parent.say("食堂 2分，菜太咸").text
    assert again.startswith("谢谢评价！已记录今天（11月26日 周四）的食堂评分 2 分，意见：菜太咸，编号 F2。"
                            "你今天之前的评价 F1 仍保留，平均分按你最新的评分计算。")
    assert "食堂评分 5 分" in wechat_user("张丽").say("食堂5").text  # glued to the keyword
    assert "之前的评价 F1、F2 仍保留" in parent.say("食堂 3").text
    rows = feedback_rows(services)
    assert [(r.code, r.role, r.rating, r.comment) for r in rows] == [
        ("F1", "parent", 4, "米饭有点硬"), ("F2", "parent", 2, "菜太咸"), ("F3", "teacher", 5, ""),
        ("F4", "parent", 3, "")]
    assert [r.superseded_by_id for r in rows] == [rows[1].id, rows[3].id, None, None]  # each by the next


def test_a_food_safety_feedback_keeps_its_text_reply_and_alert_after_a_later_rating(
        school, wechat_user, clock, queued, deliver, fake_wechat, runner, houqin, client: FlaskClient,
        tmp_path: Path) -> None:
    """A parent's 头发 complaint, answered, then the same parent's 汤太咸 the same day: both texts stay in
    the 食堂评价 summary, the console's month and the ledger; only the later score counts in the average;
    the apology stays on F1 and the digest still lists F1 as food safety."""
    parent, canteen, admin = wechat_user("陈建国"), wechat_user("宦欢"), wechat_user("周春明")
    clock.set("2026-11-26 12:10")
    assert "编号 F1" in parent.say("食堂 1 饭里有头发").text
    clock.set("2026-11-26 12:20")
    assert canteen.say("回复 F1 已核查 向您致歉").text == "已将回复发送给 F1 的反馈人（家长）。"
    clock.set("2026-11-26 12:40")
    assert "编号 F2" in parent.say("食堂 3 汤太咸").text
    assert "编号 F3" in wechat_user("张丽").say("食堂 5").text
    assert canteen.say("回复 F2 明天少放盐").text == "已将回复发送给 F2 的反馈人（家长）。"
    deliver()
    pushed = sorted(c.text for c in fake_wechat.sent_to("陈建国") if "【食堂回复】" in c.text)
    assert pushed == ["【食堂回复】你11月26日（周四）的食堂评价 F1（1分：饭里有头发）：已核查 向您致歉",
                      "【食堂回复】你11月26日（周四）的食堂评价 F2（3分：汤太咸）：明天少放盐"]

    view = admin.say("食堂评价").text
    assert view.startswith("今天（11月26日 周四）食堂评价：3 条，平均 4.0 分（1 条的评分已被同一人当天的新评分取代，"
                           "不计入平均）\n教师 1 条 5.0 分；家长 1 条 3.0 分\n")
    assert "F1 陈建国（家长） 1分：饭里有头发【食品安全】【已回复】【评分已由F2更新，不计入平均】\n" in view
    assert "F2 陈建国（家长） 3分：汤太咸【已回复】\n" in view
    assert "F1 家长 1分：饭里有头发【食品安全】" in canteen.say("食堂评价").text

    runner.run_now("send_daily_digest", at("2026-11-26 17:00"))
    digest = queued("daily_digest")[0].text
    assert "今日评价 3 条，平均 4.0 分（教师 1 条 5.0 分，家长 1 条 3.0 分）" in digest
    assert "食品安全：F1 家长 1分：饭里有头发" in digest

    out = tmp_path / "ledger.xlsx"
    assert houqin("export", "canteen", "--month", "2026-11", "--out", str(out)).exit_code == 0
    ledger = {r[0]: dict(zip(FEEDBACK_HEADER, r, strict=True))
              for r in read_ledger(out, "评价明细")[1:]}
    assert [(c, r["评分"], r["意见"], r["食品安全"], r["食堂回复"], r["计入平均"]) for c, r in ledger.items()] == [
        ("F1", 1, "饭里有头发", "头发", "已核查 向您致歉", "否（评分已由F2更新）"),
        ("F2", 3, "汤太咸", None, "明天少放盐", "是"), ("F3", 5, None, None, None, "是")]
    assert list(read_ledger(out, "每日平均")[1:]) == [(datetime(2026, 11, 26), 2, 4.0, 5.0, 3.0, None)]

    assert houqin("console-password", "周春明", "--password", "后勤2026secret").exit_code == 0
    login = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/login").get_data(as_text=True))
    assert login is not None
    client.post("/admin/login", data={"csrf": login.group(1), "name": "周春明", "password": "后勤2026secret"})
    page = client.get("/admin/canteen?month=2026-11").get_data(as_text=True)
    assert "共 3 条评价，平均 4.0 分（1 条的评分已被同一人当天的新评分取代，不计入平均）" in page
    console = {code: re.sub(r"<[^>]+>|\s+", " ", row)
               for code, row in re.findall(r"<tr>\s*<td>(F\d+)</td>(.*?)</tr>", page, re.S)}
    assert "饭里有头发" in console["F1"] and "已由 F2 更新，不计入平均" in console["F1"] and "已核查 向您致歉" in console["F1"]
    assert "汤太咸" in console["F2"] and "明天少放盐" in console["F2"] and "已核查" not in console["F2"]


def test_a_comment_is_kept_and_shown_in_the_users_own_characters(school, wechat_user, runner, clock,
                                                                  services: Services) -> None:
    """Full-width punctuation is folded only for matching: the comment stored and echoed is as written,
    in a one-line rating, the rating dialog, the monthly survey's reply and the questionnaire's comment."""
    parent, staff, teacher = wechat_user("陈建国"), wechat_user("程财宝"), wechat_user("张丽")
    said = "孩子说今天的牛肉很好吃，就是汤有点淡，辛苦了！"
    assert f"意见：{said}，编号 F1" in parent.say(f"食堂 4 {said}").text
    staff.click("CANTEEN")
    assert "意见：米饭硬（有点），编号 F2" in staff.say("３，米饭硬（有点）").text
    assert [r.comment for r in feedback_rows(services)] == [said, "米饭硬（有点）"]
    assert "F1 陈建国（家长） 4分：" + said in wechat_user("周春明").say("食堂评价").text
    wechat_user("宦欢").say("回复 F1 谢谢！明天汤会调整，欢迎再提意见。")
    with services.factory() as s:
        assert [r.text for r in s.scalars(select(CanteenReply))] == ["谢谢！明天汤会调整，欢迎再提意见。"]
    runner.run_now("push_canteen_survey", at("2026-11-20 16:30"))
    clock.set("2026-11-20 18:00")
    assert parent.say("4 菜品可以再丰富些，谢谢！").text.endswith("意见：菜品可以再丰富些，谢谢！。")
    clock.set("2026-11-26 12:40")
    done = teacher.dialog([("食堂问卷", "第1题"), ("4", ""), ("4", ""), ("5", ""), ("4", ""), ("汤有点咸，其他都好！", "问卷已提交")])
    assert done[-1].text.endswith("意见：汤有点咸，其他都好！。")
    with services.factory() as s:
        assert sorted(r.comment for r in s.scalars(select(SurveyResponse))) == ["汤有点咸，其他都好！", "菜品可以再丰富些，谢谢！"]


@pytest.mark.parametrize(("typed", "comment"), [
    ("食堂 4 分量可以再多一点", "分量可以再多一点"), ("食堂 4分 分量可以再多一点", "分量可以再多一点"),
    ("食堂 4分量少了点", "分量少了点"), ("食堂 4 分，分量少", "分量少"), ("食堂 4分很好吃", "很好吃"),
    ("食堂 4 分 很好吃", "很好吃"), ("食堂 四星 菜很新鲜", "菜很新鲜")])
def test_the_score_unit_is_read_but_not_the_first_character_of_the_comment(school, wechat_user, typed, comment,
                                                                           services: Services) -> None:
    assert f"食堂评分 4 分，意见：{comment}，编号 F1" in wechat_user("陈建国").say(typed).text
    assert [(r.rating, r.comment) for r in feedback_rows(services)] == [(4, comment)]


def test_rating_dialog_from_the_menu_button(school, wechat_user, services: Services) -> None:
    staff = wechat_user("程财宝")
    assert staff.click("CANTEEN").text.startswith("请为今天的饭菜打分：回复 1-5")
    assert staff.say("挺好").text.startswith("没有看懂评分。请为今天的饭菜打分")
    assert "食堂评分 3 分，意见：量少" in staff.say("3 量少").text
    assert feedback_rows(services)[0].role == "staff"
    staff.say("食堂")
    assert "已取消「食堂」" in staff.say("取消").text
    assert len(feedback_rows(services)) == 1


def test_ratings_are_for_teachers_parents_and_staff_on_school_days(school, wechat_user, clock,
                                                                   services: Services) -> None:
    assert "仅限后勤、教师、家长使用" in wechat_user("周春明").say("食堂 4").text
    assert "仅限" in wechat_user("路人乙", bind=False).say("食堂 4").text
    parent = wechat_user("陈建国")
    assert "没有看懂评分" in parent.say("食堂 10").text
    parent.say("取消")
    clock.set("2026-11-28 12:00")  # Saturday
    assert parent.say("食堂 5").text == "今天不是上课日，食堂不开餐，无需评价。"
    assert feedback_rows(services) == []


def test_an_image_within_ten_minutes_attaches_to_the_rating(school, wechat_user, clock, services: Services) -> None:
    parent = wechat_user("陈建国")
    parent.say("食堂 3 汤是凉的")
    clock.advance(minutes=9)
    assert parent.image(media_id="media_soup").text == "照片已附在食堂评价 F1 上。"
    assert parent.image(media_id="media_soup2").text == "照片已更换（食堂评价 F1）。"
    clock.advance(minutes=2)  # 11 minutes after the rating
    assert parent.image(media_id="media_late").text == IMAGE_UNUSED.format(hint=PHOTO_FIRST)
    (feedback,) = feedback_rows(services)
    assert feedback.photo is not None and (feedback.photo.media_id, feedback.photo.status) == ("media_soup2", "pending")


def test_an_image_after_a_newer_repair_goes_to_the_repair(school, wechat_user, clock, services: Services) -> None:
    teacher = wechat_user("张丽")
    teacher.say("食堂 4")
    clock.advance(minutes=1)
    assert "R1" in teacher.say("报修 三(2)班 投影仪不亮").text
    assert "照片已附在 R1 上" in teacher.image(media_id="media_projector").text
    assert feedback_rows(services)[0].photo is None


def feedback_photo(services: Services) -> FeedbackPhoto:
    with services.factory() as s:
        (photo,) = s.scalars(select(FeedbackPhoto))
        return photo


def ledger_photo(houqin, tmp_path: Path, code: str = "F1") -> str:
    """The 照片 column of the monthly report (食堂台账) for one feedback."""
    out = tmp_path / "ledger.xlsx"
    result = houqin("export", "canteen", "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = {r[0]: r for r in read_ledger(out, "评价明细")[1:]}
    return str(rows[code][FEEDBACK_HEADER.index("照片")] or "")


def test_a_feedback_photo_is_downloaded_into_storage_and_the_ledger_says_where(
        school, wechat_user, clock, services: Services, settings, fetch_media, houqin, tmp_path: Path) -> None:
    teacher = wechat_user("张丽")
    teacher.say("食堂 2 汤里有头发")
    clock.advance(minutes=3)
    assert teacher.image(media_id="media_hair").text == "照片已附在食堂评价 F1 上。"
    assert ledger_photo(houqin, tmp_path) == "下载中"
    assert fetch_media() == 1
    first = feedback_photo(services)
    assert first.status == "saved" and first.path.startswith("canteen/F1/") and first.path.endswith(".jpg")
    assert first.size == len(fake_jpeg("media_hair"))
    assert (settings.storage_dir / first.path).read_bytes() == fake_jpeg("media_hair")
    assert ledger_photo(houqin, tmp_path) == f"已保存 {first.path}"
    assert "F1 教师 2分：汤里有头发【食品安全】【有照片】" in wechat_user("宦欢").say("食堂评价").text

    clock.advance(minutes=2)
    assert teacher.image(media_id="media_hair_closer").text == "照片已更换（食堂评价 F1）。"
    again = feedback_photo(services)
    assert (again.id, again.media_id, again.status, again.path, again.attempts) == (
        first.id, "media_hair_closer", "pending", "", 0)
    assert fetch_media() == 1
    again = feedback_photo(services)
    assert again.status == "saved" and again.path.startswith("canteen/F1/") and again.path != first.path
    assert (settings.storage_dir / again.path).read_bytes() == fake_jpeg("media_hair_closer")
    assert (settings.storage_dir / first.path).read_bytes() == fake_jpeg("media_hair")  # the first file stays
    assert ledger_photo(houqin, tmp_path) == f"已保存 {again.path}"
    assert fetch_media() == 0


def test_a_refused_feedback_photo_is_marked_failed_with_the_reason(
        school, wechat_user, clock, services: Services, fetch_media, houqin, tmp_path: Path) -> None:
    parent = wechat_user("陈建国")
    parent.say("食堂 3")
    clock.advance(minutes=1)
    parent.image(media_id="expired-long-ago")  # the fake answers 40007 invalid media_id
    assert fetch_media() == 1
    photo = feedback_photo(services)
    assert (photo.status, photo.attempts, photo.path) == ("failed", 1, "") and "40007" in (photo.last_error or "")
    assert ledger_photo(houqin, tmp_path) == "下载失败：40007: invalid media_id"
    assert fetch_media() == 0


def test_the_admin_console_shows_a_saved_feedback_photo(school, wechat_user, clock, services: Services, fetch_media,
                                                        houqin, client: FlaskClient) -> None:
    parent = wechat_user("陈建国")
    parent.say("食堂 4")
    parent.image(media_id="media_console_soup")
    url = f"/admin/canteen-photos/{feedback_photo(services).id}"
    assert client.get(url).status_code == 302  # sign in first
    password = "后勤2026secret"
    assert houqin("console-password", "周春明", "--password", password).exit_code == 0
    login = re.search(r'name="csrf" value="([^"]+)"', client.get("/admin/login").get_data(as_text=True))
    assert login is not None
    signed = client.post("/admin/login", data={"csrf": login.group(1), "name": "周春明", "password": password})
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/admin/")
    assert client.get(url).status_code == 404  # not downloaded yet
    fetch_media()
    image = client.get(url)
    assert image.status_code == 200 and image.mimetype == "image/jpeg" and image.data == fake_jpeg("media_console_soup")
    assert client.get("/admin/canteen-photos/999").status_code == 404
    with services.factory() as s, s.begin():
        s.execute(update(FeedbackPhoto).values(path="../../houqin.db"))
    assert client.get(url).status_code == 404  # never a file outside the storage folder


def test_canteen_sees_roles_not_names_and_admin_sees_names(school, wechat_user, clock) -> None:
    wechat_user("陈建国").say("食堂 2 菜太咸")
    wechat_user("张丽").say("食堂 5")
    wechat_user("陈建国").image(media_id="media_salty")
    canteen_view = wechat_user("宦欢").say("食堂评价").text
    assert canteen_view.startswith("今天（11月26日 周四）食堂评价：2 条，平均 3.5 分\n教师 1 条 5.0 分；家长 1 条 2.0 分")
    assert "F1 家长 2分：菜太咸【有照片】" in canteen_view and "F2 教师 5分" in canteen_view
    assert "陈建国" not in canteen_view and "张丽" not in canteen_view
    admin_view = wechat_user("周春明").say("评价汇总").text
    assert "F1 陈建国（家长） 2分：菜太咸" in admin_view and "F2 张丽（教师） 5分" in admin_view
    assert "仅限管理员、食堂使用" in wechat_user("王强").say("食堂评价").text
    clock.set("2026-11-27 09:00")
    canteen = wechat_user("宦欢")
    assert canteen.say("食堂评价").text == "今天（11月27日 周五）还没有食堂评价。"
    assert "11/26 家长 2分" in canteen.say("食堂评价 本周").text
    assert "昨天（11月26日 周四）食堂评价：2 条" in canteen.say("食堂评价 昨天").text
    assert "「下下周」不是日期" in canteen.say("食堂评价 下下周").text


def test_food_safety_words_alert_the_canteen_and_admin_at_once(school, wechat_user, queued, clock) -> None:
    clock.set("2026-11-26 21:30")  # quiet hours do not hold a safety alert
    reply = wechat_user("陈建国").say("食堂 1 饭里有头发，孩子吃完拉肚子").text
    assert "编号 F1" in reply
    # neither has bound: nobody can be reached, and the reply says so instead of claiming it
    assert "你的反馈涉及食品安全，宦欢、周春明暂时无法送达（未绑定微信），已在后勤控制台标红提醒。" in reply
    alerts = {r.name: r for r in queued("canteen_alert")}
    assert set(alerts) == {"宦欢", "周春明"}
    assert all(r.safety and r.due <= at("2026-11-26 21:30") for r in alerts.values())
    assert "F1 11月26日（周四） 家长评价 1 分：饭里有头发，孩子吃完拉肚子（关键词：头发、拉肚子）" in alerts["宦欢"].text
    assert "陈建国" not in alerts["宦欢"].text and "回复 F1 内容" in alerts["宦欢"].text
    assert "陈建国（家长）" in alerts["周春明"].text
    wechat_user("张丽").say("食堂 4 挺好吃")
    assert len(queued("canteen_alert")) == 2  # no words, no alert


def test_reply_reaches_the_person_who_gave_the_feedback(school, wechat_user, queued, deliver, fake_wechat) -> None:
    parent = wechat_user("陈建国")
    parent.say("食堂 2 菜太咸")
    canteen = wechat_user("宦欢")
    assert canteen.say("回复 F1 已调整盐量，谢谢反馈").text == "已将回复发送给 F1 的反馈人（家长）。"
    (row,) = queued("canteen_reply")
    assert row.name == "陈建国"
    assert row.text == "【食堂回复】你11月26日（周四）的食堂评价 F1（2分：菜太咸）：已调整盐量，谢谢反馈"  # as typed
    deliver()
    assert fake_wechat.sent_to("陈建国")[-1].mentions("【食堂回复】", "已调整盐量")
    assert "【已回复】" in canteen.say("食堂评价").text
    assert canteen.say("回复 F9 好的").text == "没有找到食堂评价 F9。"
    assert canteen.say("回复 F1").text.startswith("请按格式发送：回复 F编号 内容")
    assert "仅限" in parent.say("回复 F1 谢谢").text
    assert len(queued("canteen_reply")) == 1


# -- surveys ---------------------------------------------------------------------------------------
def test_monthly_survey_push_and_a_plain_reply_answers_it(school, wechat_user, runner, queued, services: Services,
                                                         clock) -> None:
    parent, teacher = wechat_user("陈建国"), wechat_user("张丽")
    assert runner.run_now("push_canteen_survey", at("2026-11-19 16:30")).result == "未到本月调查日"
    run = runner.run_now("push_canteen_survey", at("2026-11-20 16:30"))  # the 20th, a Friday
    assert run.result == "已推送月度调查给 3 人（2 个微信可直接回复作答）"
    pushed = queued("canteen_survey")
    assert names(pushed) == PARENTS_AND_TEACHERS and "请为11月的食堂饭菜打分" in pushed[0].text
    assert runner.run_now("push_canteen_survey", at("2026-11-23 16:30")).result == "本月已推送满意度调查"
    clock.set("2026-11-20 18:00")
    assert parent.say("10").text.startswith("请回复 1 到 5 之间的一个数字。请回复 1-5 为本月食堂打分")
    assert parent.say("4 菜品可以再丰富些").text == "谢谢参与11月食堂满意度调查！评分 4 分，意见：菜品可以再丰富些。"
    assert teacher.say("菜单").text == "本周菜单还没有公布。每周四下午公布下周菜单。"
    assert "没有听懂" in teacher.say("5").text  # another command ended the survey for her
    with services.factory() as s:
        (row,) = s.scalars(select(SurveyResponse))
        assert (row.kind, row.period, row.overall, row.role) == ("monthly", "2026-11", 4, "parent")
        assert s.scalar(select(func.count()).select_from(ConversationState)) == 0


def test_survey_push_day_is_a_setting_and_term_months_send_the_questionnaire(school, wechat_user, runner, queued,
                                                                             services: Services, clock) -> None:
    parent = wechat_user("陈建国")
    with services.factory() as s, s.begin():
        set_setting(s, "canteen_survey_day", "5")
        set_setting(s, "canteen_term_survey_months", "11;6")
        with pytest.raises(ValueError):
            set_setting(s, "canteen_survey_day", "31")
    run = runner.run_now("push_canteen_survey", at("2026-11-05 16:30"))
    assert run.result.startswith("已推送学期问卷给 3 人")
    assert "第1题：饭菜口味" in queued("canteen_survey")[0].text
    clock.set("2026-11-05 17:00")
    parent.dialog([("5", "第2题：卫生状况"), ("4", "第3题：饭菜分量"), ("3", "第4题：服务态度"),
                   ("4分", "第5题"), ("无", "问卷已提交，谢谢！口味 5、卫生 4、分量 3、服务 4 分。")])
    with services.factory() as s:
        (row,) = s.scalars(select(SurveyResponse))
        assert (row.kind, row.period, row.taste, row.hygiene, row.portion, row.service, row.comment) == (
            "term", "2026秋", 5, 4, 3, 4, "")


def test_the_questionnaire_dialog_with_bad_answers_and_cancel(school, wechat_user, services: Services) -> None:
    teacher = wechat_user("张丽")
    first = teacher.say("食堂问卷").text
    assert first == "食堂满意度问卷（共5题，发送「取消」可退出）。\n第1题：饭菜口味，请回复 1-5 分（5 分最满意）。"
    teacher.dialog([("6", "请回复 1 到 5 之间的一个数字。第1题"), ("好吃", "第1题"), ("五", "第2题"),
                    ("4分", "第3题"), ("3", "第4题")])
    assert "已取消「食堂问卷」" in teacher.say("取消").text
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    teacher.dialog([("满意度调查", "第1题"), ("5", "第2题"), ("5", "第3题"), ("4", "第4题"), ("5", "第5题"),
                    ("米饭偏硬", "意见：米饭偏硬")])
    again = teacher.dialog([("食堂问卷", "第1题"), ("4", ""), ("4", ""), ("4", ""), ("4", ""), ("没有", "")])[-1]
    assert again.text.endswith("（你本学期之前填写的问卷仍保留，统计按这份最新的问卷计算）")
    with services.factory() as s:
        first, second = s.scalars(select(SurveyResponse).order_by(SurveyResponse.id))
        assert (first.taste, first.comment, first.counted, first.superseded_by_id) == (5, "米饭偏硬", False, second.id)
        assert (second.taste, second.comment, second.role, second.counted) == (4, "", "teacher", True)
    assert "仅限" in wechat_user("周春明").say("食堂问卷").text


def test_a_later_survey_answer_supersedes_only_the_scores_and_a_food_safety_comment_stays(
        school, wechat_user, queued, runner, clock, houqin, tmp_path: Path) -> None:
    """The second questionnaire's scores count instead; the first's comment still alerted, stays in the
    digest and in the ledger, marked as not counted and by which answer."""
    teacher = wechat_user("张丽")
    clock.set("2026-11-26 12:40")
    first = teacher.dialog([("食堂问卷", "第1题"), ("2", ""), ("1", ""), ("3", ""), ("3", ""),
                            ("汤里有虫子", "问卷已提交")])[-1]
    assert first.text == "问卷已提交，谢谢！口味 2、卫生 1、分量 3、服务 3 分，意见：汤里有虫子。"
    alerts = queued("canteen_alert")
    assert names(alerts) == {"宦欢", "周春明"} and all(a.safety for a in alerts)
    assert all("汤里有虫子" in a.text and "（关键词：虫）" in a.text for a in alerts)
    clock.set("2026-11-26 13:05")
    again = teacher.dialog([("食堂问卷", "第1题"), ("4", ""), ("4", ""), ("5", ""), ("4", ""), ("无", "")])[-1]
    assert again.text == ("问卷已提交，谢谢！口味 4、卫生 4、分量 5、服务 4 分。"
                          "（你本学期之前填写的问卷仍保留，统计按这份最新的问卷计算）")
    assert len(queued("canteen_alert")) == 2  # the first answer's alert stands; the second has no words
    runner.run_now("send_daily_digest", at("2026-11-26 17:00"))
    assert "汤里有虫子" in queued("daily_digest")[0].text
    out = tmp_path / "canteen.xlsx"
    result = houqin("export", "canteen", "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "调查 2 份" in result.output
    rows = list(read_ledger(out, "满意度调查"))
    assert rows[0] == tuple(SURVEY_HEADER) and rows[0][-1] == "计入统计" and len(rows) == 3
    assert rows[1][0] == datetime(2026, 11, 26, 12, 40)
    assert rows[1][6:] == (2, 1, 3, 3, "汤里有虫子", "虫", "否（评分已由 2026-11-26 13:05 的答卷更新）")
    assert rows[2][6:] == (4, 4, 5, 4, None, None, "是")  # openpyxl reads empty strings back as None


# -- 陪餐, digest ------------------------------------------------------------------------------------
def test_a_second_陪餐_record_of_a_meal_is_kept_and_the_ledger_shows_both(
        school, wechat_user, queued, clock, houqin, tmp_path: Path) -> None:
    admin = wechat_user("周春明")
    clock.set("2026-11-26 12:20")
    admin.say("陪餐 午餐 菜品偏咸")
    clock.set("2026-11-26 12:50")
    assert "第 2 条陪餐记录，之前的记录仍保留" in admin.say("陪餐 午餐 米饭偏硬").text
    assert [n.text.split("：", 1)[1] for n in queued("canteen_accompanied")] == ["菜品偏咸", "米饭偏硬"]
    out = tmp_path / "canteen.xlsx"
    result = houqin("export", "canteen", "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "陪餐 1 次" in result.output  # one meal, recorded twice
    meals = list(read_ledger(out, "陪餐记录"))
    assert meals[1:] == [
        (datetime(2026, 11, 26), "午餐", "周春明", "菜品偏咸", datetime(2026, 11, 26, 12, 20)),
        (datetime(2026, 11, 26), "午餐", "周春明", "米饭偏硬", datetime(2026, 11, 26, 12, 50))]


def test_accompanied_meal_is_recorded_and_counted_in_the_digest(school, wechat_user, queued, runner,
                                                                services: Services) -> None:
    admin = wechat_user("周春明")
    assert admin.say("陪餐 午餐 菜品偏咸，米饭软硬适中").text == (
        "已记录11月26日（周四）午餐陪餐，意见：菜品偏咸，米饭软硬适中。本月全校已陪餐 1 次。")
    (note,) = queued("canteen_accompanied")
    assert note.name == "宦欢" and "【陪餐意见】周春明 11月26日（周四）午餐：菜品偏咸" in note.text
    assert admin.say("陪餐 午饭").text == (
        "已记录11月26日（周四）午餐陪餐。这是你这一餐的第 2 条陪餐记录，之前的记录仍保留（同一餐只计一次）。"
        "本月全校已陪餐 1 次。")
    assert "本月全校已陪餐 2 次" in admin.say("陪餐 早餐").text
    assert admin.say("陪餐").text.startswith("请按格式发送：陪餐 早餐|午餐")
    assert admin.say("陪餐 点心").text.startswith("请按格式发送")
    assert "仅限管理员使用" in wechat_user("张丽").say("陪餐 午餐").text
    wechat_user("陈建国").say("食堂 1 菜里有虫")
    wechat_user("张丽").say("食堂 4")
    runner.run_now("send_daily_digest", at("2026-11-26 17:00"))
    digest = queued("daily_digest")[0].text
    assert "■ 食堂\n今日评价 2 条，平均 2.5 分（教师 1 条 4.0 分，家长 1 条 1.0 分）" in digest
    assert "食品安全：F1 家长 1分：菜里有虫" in digest
    assert "本月陪餐 2 次" in digest and "下周菜单尚未发布" in digest
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(AccompaniedMeal)) == 3  # the 午餐 twice, kept


def test_no_canteen_activity_no_digest_section(school, runner, queued) -> None:
    runner.run_now("send_daily_digest", at("2026-11-26 17:00"))
    assert "■ 食堂" not in queued("daily_digest")[0].text


# -- the report ------------------------------------------------------------------------------------
def test_monthly_report_has_every_rating_averages_words_surveys_meals_and_a_chart(
        school, wechat_user, clock, houqin, tmp_path: Path) -> None:
    clock.set("2026-11-25 12:30")
    wechat_user("陈建国").say("食堂 2 米饭太硬了")
    wechat_user("张丽").say("食堂 5 很好吃")
    clock.set("2026-11-26 12:30")
    wechat_user("陈建国").say("食堂 3 米饭太硬了，菜也凉了")
    wechat_user("程财宝").say("食堂 2 汤是凉的")
    wechat_user("周春明").say("陪餐 午餐 偏咸")
    wechat_user("王强").dialog([("食堂问卷", "第1题"), ("3", ""), ("4", ""), ("4", ""), ("4", ""), ("菜太凉了", "问卷已提交")])
    clock.set("2026-12-01 12:30")
    wechat_user("张丽").say("食堂 1 不在十一月")
    out = tmp_path / "canteen.xlsx"
    result = houqin("export", "canteen", "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2026年11月 食堂评价 4 条，调查 1 份，陪餐 1 次" in result.output
    book = load_workbook(out)
    assert book.sheetnames == ["评价明细", "每日平均", "分组平均", "意见高频词", "满意度调查", "陪餐记录"]
    rows = list(read_ledger(out, "评价明细"))
    assert rows[0] == tuple(FEEDBACK_HEADER) and len(rows) == 5
    assert rows[1][:7] == ("F1", datetime(2026, 11, 25), datetime(2026, 11, 25, 12, 30), "家长", "陈建国", 2, "米饭太硬了")
    daily = list(read_ledger(out, "每日平均"))
    assert daily[0] == tuple(DAILY_HEADER)
    assert daily[1] == (datetime(2026, 11, 25), 2, 3.5, 5.0, 2.0, None)
    assert daily[2] == (datetime(2026, 11, 26), 2, 2.5, None, 3.0, 2.0)
    groups = {r[0]: r[1:3] for r in read_ledger(out, "分组平均")[1:]}
    assert groups == {"教师": (1, 5.0), "家长": (2, 2.5), "后勤": (1, 2.0)}
    words = {r[0]: r[1] for r in read_ledger(out, "意见高频词")[1:]}
    assert words["凉"] == 3 and words["米饭"] == 2 and words["硬"] == 2  # 凉: two complaints and the survey
    assert "好吃" not in words and "了" not in words  # a 5 is no complaint; stop words are dropped
    surveys = list(read_ledger(out, "满意度调查"))
    assert surveys[0] == tuple(SURVEY_HEADER)
    assert surveys[1][1:11] == ("学期问卷", "2026秋", "教师", "王强", None, 3, 4, 4, 4, "菜太凉了")
    meals = list(read_ledger(out, "陪餐记录"))
    assert meals[0] == tuple(MEALS_HEADER) and meals[1][:4] == (datetime(2026, 11, 26), "午餐", "周春明", "偏咸")
    charts = book["每日平均"]._charts
    assert len(charts) == 1 and charts[0].tagname == "lineChart"


def test_report_month_must_be_yyyy_mm(school, houqin, tmp_path: Path) -> None:
    result = houqin("export", "canteen", "--month", "11月", "--out", str(tmp_path / "x.xlsx"))
    assert result.exit_code != 0 and "YYYY-MM" in result.output


def test_demo_has_this_weeks_menu_published_and_next_weeks_as_a_draft(services: Services) -> None:
    from bot.demo import load_demo

    with services.factory() as s, s.begin():
        load_demo(s, at("2026-11-26 10:00"))
    with services.factory() as s:
        weeks = {w.key: (w.status, len(w.items)) for w in s.scalars(select(MenuWeek))}
        assert weeks == {"2026-W48": ("published", 15), "2026-W49": ("draft", 15)}
        first = s.scalar(select(MenuItem).order_by(MenuItem.day, MenuItem.position))
        assert first.day == date(2026, 11, 23) and first.meal == "早餐"


# -- the 0008 migration -----------------------------------------------------------------------------
OLD_FEEDBACK = table("canteen_feedback", column("id", Integer), column("number", Integer), column("role", String),
                     column("day"), column("rating", Integer), column("comment", String),
                     column("alert_words", String), column("photo_media_id", String),
                     column("given_at", UTCDateTime()), column("replaced", Integer))
OLD_REPLIES = table("canteen_replies", column("feedback_id", Integer), column("text", String),
                    column("at", UTCDateTime()))


def on_schema(url: str, statement: str) -> None:
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(statement))
    admin.dispose()


@contextmanager
def database_at(backend, tmp_path: Path, revision: str) -> Iterator[tuple[Engine, str, str | None]]:
    """An engine on a database of its own migrated up to `revision` (PostgreSQL: a schema of its own),
    with its URL and schema."""
    schema = None
    if backend.name == "sqlite":
        url = f"sqlite:///{tmp_path / f'before-{revision}.db'}"
    else:
        url, schema = backend.url, f"houqin_{revision}_" + uuid.uuid4().hex[:8]
        on_schema(url, f'CREATE SCHEMA "{schema}"')
    engine = make_engine(url, schema=schema)
    try:
        upgrade(engine, revision)
        yield engine, url, schema
    finally:
        engine.dispose()
        if schema is not None:
            on_schema(url, f'DROP SCHEMA "{schema}" CASCADE')


def test_migration_0008_moves_media_ids_into_photos_and_keeps_the_replies(backend, settings, fake_wechat,
                                                                         tmp_path: Path) -> None:
    """Feedback given before 0008 keeps its replies; its media id becomes a pending photo that the
    worker downloads; the schema then matches the models; the downgrade puts the media id back."""
    with database_at(backend, tmp_path, "0007") as (engine, url, schema):
        given = at("2026-11-26 12:10")
        with engine.begin() as conn:
            conn.execute(OLD_FEEDBACK.insert(), [
                {"id": 1, "number": 1, "role": "parent", "day": date(2026, 11, 26), "rating": 1, "comment": "有头发",
                 "alert_words": "头发", "photo_media_id": "media_before_0008", "given_at": given, "replaced": 0},
                {"id": 2, "number": 2, "role": "teacher", "day": date(2026, 11, 26), "rating": 5, "comment": "",
                 "alert_words": "", "photo_media_id": "", "given_at": given, "replaced": 0}])
            conn.execute(OLD_REPLIES.insert(), {"feedback_id": 1, "text": "已核查", "at": given})

        upgrade(engine)
        with Session(engine) as s:
            with_photo, without = s.get(CanteenFeedback, 1), s.get(CanteenFeedback, 2)
            assert with_photo is not None and without is not None
            assert [r.text for r in with_photo.replies] == ["已核查"] and without.photo is None
            assert with_photo.photo is not None
            assert (with_photo.photo.media_id, with_photo.photo.status) == ("media_before_0008", "pending")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
        services = Services(settings.with_overrides(database_url=url), engine, schema)
        assert media_worker(services).drain() == 1
        with Session(engine) as s:
            (photo,) = s.scalars(select(FeedbackPhoto))
            assert photo.status == "saved" and photo.path.startswith("canteen/F1/")
            assert (settings.storage_dir / photo.path).read_bytes() == fake_jpeg("media_before_0008")

        command.downgrade(alembic_config(engine), "0007")
        with engine.connect() as conn:
            assert dict(conn.execute(select(OLD_FEEDBACK.c.id, OLD_FEEDBACK.c.photo_media_id)).all()) == {
                1: "media_before_0008", 2: ""}
            assert conn.scalar(select(func.count()).select_from(OLD_REPLIES)) == 1


# -- the 0010 migration -----------------------------------------------------------------------------
FEEDBACK_0008 = table("canteen_feedback", column("id", Integer), column("number", Integer), column("person_id", Integer),
                      column("role", String), column("day"), column("rating", Integer), column("comment", String),
                      column("alert_words", String), column("given_at", UTCDateTime()), column("replaced", Integer))
PEOPLE = table("people", column("id", Integer), column("name", String), column("phone", String),
               column("class_name", String), column("route", String), column("categories", String),
               column("created_at", UTCDateTime()))


def test_migration_0010_keeps_replies_and_photos_and_starts_the_counters_after_the_numbers_given(
        backend, tmp_path: Path) -> None:
    """Feedback given before 0010 keeps its replies and photo through the rebuild (SQLite would delete
    them by cascade); F<n> continues after the largest number. The downgrade refuses while someone has
    two feedback on a day, and works once they do not."""
    with database_at(backend, tmp_path, "0008") as (engine, _, _):
        given = at("2026-11-26 12:10")
        with engine.begin() as conn:
            conn.execute(PEOPLE.insert(), {"id": 1, "name": "陈建国", "phone": "", "class_name": "", "route": "",
                                           "categories": "", "created_at": given})
            conn.execute(FEEDBACK_0008.insert(), [
                {"id": 1, "number": 7, "person_id": 1, "role": "parent", "day": date(2026, 11, 26), "rating": 1,
                 "comment": "有头发", "alert_words": "头发", "given_at": given, "replaced": 0},
                {"id": 2, "number": 9, "person_id": None, "role": "teacher", "day": date(2026, 11, 26), "rating": 5,
                 "comment": "", "alert_words": "", "given_at": given, "replaced": 0}])
            conn.execute(CanteenReply.__table__.insert(), {"feedback_id": 1, "text": "已核查", "at": given})
            conn.execute(FeedbackPhoto.__table__.insert(), {"feedback_id": 1, "media_id": "media_hair"})

        upgrade(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
        with Session(engine) as s, s.begin():
            first = s.get(CanteenFeedback, 1)
            assert first is not None and first.counted and [r.text for r in first.replies] == ["已核查"]
            assert first.photo is not None and first.photo.media_id == "media_hair"
            assert dict(s.execute(select(NumberSeries.series, NumberSeries.last)).all()) == {
                "canteen_feedback": 9, "repair_tickets": 0}
            assert allocate_number(s, CanteenFeedback.number) == 10
            s.add(CanteenFeedback(id=3, number=10, person_id=1, role="parent", day=date(2026, 11, 26), rating=3,
                                  comment="汤太咸", given_at=given))
        config = alembic_config(engine)
        with pytest.raises(RuntimeError, match="more than one canteen feedback on a day"):
            command.downgrade(config, "0008")
        with engine.begin() as conn:
            conn.execute(FEEDBACK_0008.delete().where(FEEDBACK_0008.c.number == 10))
        command.downgrade(config, "0008")
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(CanteenReply.__table__)) == 1
            assert conn.scalar(select(func.count()).select_from(FeedbackPhoto.__table__)) == 1


# -- the 0015 migration -----------------------------------------------------------------------------
SURVEYS_0010 = table("canteen_surveys", column("id", Integer), column("person_id", Integer), column("role", String),
                     column("kind", String), column("period", String), column("overall", Integer),
                     column("comment", String), column("alert_words", String), column("at", UTCDateTime()))
MEALS_0010 = table("accompanied_meals", column("id", Integer), column("person_id", Integer), column("day"),
                   column("meal", String), column("note", String), column("at", UTCDateTime()))


def test_migration_0015_keeps_every_survey_answer_and_陪餐_record(backend, tmp_path: Path) -> None:
    """Answers and records made before 0015 come through the rebuild and count; afterwards a person may
    have several. The downgrade refuses while someone does, and works (keeping the rows) once not."""
    with database_at(backend, tmp_path, "0010") as (engine, _, _):
        given = at("2026-11-26 12:10")
        with engine.begin() as conn:
            conn.execute(PEOPLE.insert(), {"id": 1, "name": "周春明", "phone": "", "class_name": "", "route": "",
                                           "categories": "", "created_at": given})
            conn.execute(SURVEYS_0010.insert(), {"id": 1, "person_id": 1, "role": "teacher", "kind": "monthly",
                                                 "period": "2026-11", "overall": 1, "comment": "有头发",
                                                 "alert_words": "头发", "at": given})
            conn.execute(MEALS_0010.insert(), {"id": 1, "person_id": 1, "day": date(2026, 11, 26), "meal": "午餐",
                                               "note": "偏咸", "at": given})

        upgrade(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
        with Session(engine) as s, s.begin():
            answer, meal = s.get(SurveyResponse, 1), s.get(AccompaniedMeal, 1)
            assert answer is not None and (answer.comment, answer.alert_words, answer.counted) == ("有头发", "头发", True)
            assert meal is not None and meal.note == "偏咸"
            later = SurveyResponse(id=2, person_id=1, role="teacher", kind="monthly", period="2026-11", overall=4,
                                   at=given)
            answer.superseded_by = later
            s.add_all([later, AccompaniedMeal(id=2, person_id=1, day=meal.day, meal="午餐", note="米饭偏硬", at=given)])
        config = alembic_config(engine)
        with pytest.raises(RuntimeError, match="answered a survey more than once"):
            command.downgrade(config, "0010")
        with engine.begin() as conn:
            conn.execute(SURVEYS_0010.delete().where(SURVEYS_0010.c.id == 2))
            conn.execute(MEALS_0010.delete().where(MEALS_0010.c.id == 2))
        command.downgrade(config, "0010")
        with engine.connect() as conn:
            assert conn.execute(select(SURVEYS_0010.c.comment)).scalars().all() == ["有头发"]
            assert conn.execute(select(MEALS_0010.c.note)).scalars().all() == ["偏咸"]
