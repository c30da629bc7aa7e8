"""Duty check-ins: QR, location and text within the slot window; stand-ins, reminders, misses,
handovers (代班/同意), imports and the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.export import read_ledger
from bot.school import set_setting
from bot.services import Services
from bot.tables import TableError
from handlers.duty import SHIFT_HEADER, import_posts, import_roster
from models.duty import DutyCheckin, DutyPost, DutyShift

SHANGHAI = ZoneInfo("Asia/Shanghai")
POSTS = "岗位,纬度,经度,半径\n一楼东楼梯,31.810350,119.974210,30\n校门口,,,\n"
ROSTER = "星期,时段,岗位,教师\n周一,课间,一楼东楼梯,张丽\n周一,午间,校门口,王强\n"
STAIRS = (31.810350, 119.974210)


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, services: Services, tmp_path: Path, clock):
    clock.set("2026-11-23 09:35")  # Monday, five minutes before 课间 09:40-10:00
    people.add("周春明", "admin")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("王强", "teacher")
    people.add("陈建国", "parent")
    (tmp_path / "posts.csv").write_text(POSTS, encoding="utf-8")
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    with services.factory() as s, s.begin():
        set_setting(s, "school_latitude", "31.810000")
        set_setting(s, "school_longitude", "119.974000")
        set_setting(s, "school_radius", "200")
        assert import_posts(s, tmp_path / "posts.csv") == 2
        assert import_roster(s, tmp_path / "roster.csv") == 2
    return people


def post_id(services: Services, name: str) -> int:
    with services.factory() as s:
        return int(s.scalar(select(DutyPost.id).where(DutyPost.name == name)))


def checkins(services: Services) -> list[DutyCheckin]:
    with services.factory() as s:
        return list(s.scalars(select(DutyCheckin).order_by(DutyCheckin.id)))


def test_scanning_the_post_code_is_a_verified_check_in(school, wechat_user, services: Services) -> None:
    reply = wechat_user("张丽").scan(f"post:{post_id(services, '一楼东楼梯')}")
    assert reply.text == "已签到：一楼东楼梯 课间（09:40–10:00），09:35，已验证（扫码）。"
    (row,) = checkins(services)
    assert row.method == "qr" and row.verified and not row.stand_in


def test_location_inside_the_post_radius_is_verified_and_late_is_marked(school, wechat_user, clock,
                                                                          services: Services) -> None:
    clock.set("2026-11-23 09:43")
    reply = wechat_user("张丽").location(STAIRS[0] + 0.0001, STAIRS[1])  # about 11 m away
    assert reply.text == "已签到：一楼东楼梯 课间（09:40–10:00），09:43（迟到），已验证（定位）。"
    (row,) = checkins(services)
    assert row.method == "location" and row.distance is not None and row.distance < 30


def test_location_outside_every_post_is_refused(school, wechat_user, services: Services) -> None:
    reply = wechat_user("张丽").location(31.830000, 119.990000)
    assert "你不在值日岗位范围内" in reply.text and "约 2.6 公里" in reply.text
    assert checkins(services) == []



def test_a_far_location_says_how_far_in_kilometres(school, wechat_user, services: Services) -> None:
    reply = wechat_user("张丽").location(STAIRS[0] + 0.03, STAIRS[1])  # 0.03° of latitude: about 3.3 km
    assert "（离最近的岗位「一楼东楼梯」约 3.3 公里）" in reply.text, reply.text  # not 「约 3336 米」
    assert checkins(services) == []

def test_location_picker_from_the_menu_checks_in_too(school, wechat_user, services: Services) -> None:
    user = wechat_user("张丽")
    reply = user.event("location_select", "CHECKIN", SendLocationInfo={
        "Location_X": STAIRS[0], "Location_Y": STAIRS[1], "Scale": 15, "Label": "一楼东楼梯", "Poiname": ""})
    assert "已验证（定位）" in reply.text
    # WeChat's automatic LOCATION report is not a check-in
    assert user.event("LOCATION", Latitude=STAIRS[0], Longitude=STAIRS[1], Precision=30).text == ""
    assert len(checkins(services)) == 1


def test_text_check_in_uses_the_roster_and_is_unverified(school, wechat_user, services: Services) -> None:
    reply = wechat_user("张丽").say("签到")
    assert "已签到：一楼东楼梯 课间" in reply.text and "文字签到，未验证位置" in reply.text
    assert checkins(services)[0].verified is False


def test_menu_click_checks_in_like_text(school, wechat_user, services: Services) -> None:
    assert "已签到：一楼东楼梯 课间" in wechat_user("张丽").click("CHECKIN").text
    assert len(checkins(services)) == 1


def test_outside_the_window_nothing_is_recorded(school, wechat_user, clock, services: Services) -> None:
    user = wechat_user("张丽")
    clock.set("2026-11-23 09:29")
    assert "现在不在值日签到时间" in user.say("签到").text
    clock.set("2026-11-23 10:01")
    assert "课间（09:40–10:00）" in user.say("签到").text
    clock.set("2026-11-22 09:45")  # Sunday
    assert user.say("签到").text == "今天不是上课日，没有值日安排。"
    assert checkins(services) == []


def test_someone_else_checking_in_is_a_stand_in_and_the_rostered_teacher_is_told(
        school, wechat_user, services: Services, queued) -> None:
    reply = wechat_user("王强").say("签到 东楼梯")
    assert "已记为代班（原排班：张丽）" in reply.text
    (told,) = queued("duty_stand_in")
    assert told.name == "张丽" and "王强于 09:35 在一楼东楼梯为你值日" in told.text
    assert checkins(services)[0].stand_in


def test_unrostered_text_without_a_post_asks_which(school, wechat_user, services: Services) -> None:
    reply = wechat_user("王强").say("签到")
    assert "你在课间（09:40–10:00）没有排班" in reply.text and "一楼东楼梯" in reply.text
    assert "没有找到岗位「操场」" in wechat_user("王强").say("签到 操场").text
    assert checkins(services) == []


def test_second_check_in_is_not_recorded_twice(school, wechat_user, services: Services) -> None:
    user = wechat_user("张丽")
    user.say("签到")
    assert "你已于 09:35 在一楼东楼梯签到" in user.say("签到").text
    assert len(checkins(services)) == 1


def test_parents_cannot_check_in(school, wechat_user, services: Services) -> None:
    assert "仅限管理员、后勤、教师使用" in wechat_user("陈建国").say("签到").text


def test_reminder_ten_minutes_before_the_slot_once(school, runner, queued) -> None:
    assert runner.run_now("remind_duty", at("2026-11-23 09:29")).result == "没有需要提醒的值日"
    runner.run_now("remind_duty", at("2026-11-23 09:30"))
    runner.run_now("remind_duty", at("2026-11-23 09:31"))
    (row,) = queued("duty_reminder")
    assert row.name == "张丽" and "09:40 开始课间（09:40–10:00）值日，岗位：一楼东楼梯" in row.text


def test_no_check_in_ten_minutes_after_start_is_recorded_as_missed(school, runner, queued, services: Services,
                                                                   wechat_user) -> None:
    assert runner.run_now("record_missed_duty", at("2026-11-23 09:49")).result == "没有缺岗"
    runner.run_now("record_missed_duty", at("2026-11-23 09:50"))
    runner.run_now("record_missed_duty", at("2026-11-23 09:55"))
    (row,) = queued("duty_missed")
    assert row.name == "张丽" and "已记为缺岗" in row.text
    runner.run_now("send_daily_digest", at("2026-11-23 17:00"))
    digest = queued("daily_digest")[0].text
    assert "■ 值日" in digest and "缺岗：张丽 课间 一楼东楼梯" in digest
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(DutyShift).where(DutyShift.missed_at.is_not(None))) == 1


def test_checked_in_teacher_is_not_marked_missed(school, runner, queued, wechat_user) -> None:
    wechat_user("张丽").say("签到")
    runner.run_now("record_missed_duty", at("2026-11-23 09:50"))
    assert queued("duty_missed") == []


def test_handover_with_daiban_and_tongyi(school, wechat_user, runner, queued, services: Services, clock) -> None:
    clock.set("2026-11-23 08:00")
    zhang, wang = wechat_user("张丽"), wechat_user("王强")
    assert "对方回复「同意」后生效" in zhang.say("代班 王强 今天 课间").text
    (request,) = queued("duty_swap_request")
    assert request.name == "王强" and "张丽请你代班：11月23日（周一） 课间（09:40–10:00） 一楼东楼梯" in request.text
    assert "已接受代班" in wang.say("同意").text
    assert queued("duty_swap_accepted")[0].name == "张丽"
    assert wang.say("同意").text == "目前没有待你同意的代班请求。"
    runner.run_now("remind_duty", at("2026-11-23 09:30"))
    assert [r.name for r in queued("duty_reminder")] == ["王强"]
    clock.set("2026-11-23 09:38")
    reply = wang.say("签到")
    assert "已签到：一楼东楼梯" in reply.text and "代班" not in reply.text
    with services.factory() as s:
        shift = s.scalar(select(DutyShift))
        assert shift.note == "代班：张丽→王强"


def test_handover_to_a_colleague_who_cannot_be_reached_says_so(school, wechat_user, clock) -> None:
    clock.set("2026-11-23 08:00")
    reply = wechat_user("张丽").say("代班 王强 今天 课间").text  # 王强 has not bound
    assert "已向王强发出代班请求" not in reply
    assert reply == ("已记录代班请求：11月23日（周一） 课间（09:40–10:00） 一楼东楼梯，但王强暂时无法送达（未绑定微信）。"
                     "请当面告知王强，对方回复「同意」后生效。")


def test_handover_bad_input(school, wechat_user, services: Services) -> None:
    zhang = wechat_user("张丽")
    assert "没有找到同事「李四」" in zhang.say("代班 李四").text
    assert zhang.say("代班 张丽").text == "不能请自己代班。"
    assert "没有值日安排" in zhang.say("代班 王强 明天").text
    assert "「下周」不是日期或时段" in zhang.say("代班 王强 下周").text
    assert "请按格式发送" in zhang.say("代班").text


def test_imports_list_every_problem_and_change_nothing(school, services: Services, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("星期,时段,岗位,教师\n周八,课间,一楼东楼梯,张丽\n周二,晚自习,一楼东楼梯,张丽\n"
                   "周二,课间,操场,张丽\n周二,课间,一楼东楼梯,李四\n", encoding="utf-8")
    with services.factory() as s, s.begin(), pytest.raises(TableError) as err:
        import_roster(s, bad)
    assert [p[:3] for p in err.value.problems] == ["第2行", "第3行", "第4行", "第5行"]
    bad_posts = tmp_path / "bad_posts.csv"
    bad_posts.write_text("岗位,纬度,经度\n操场,abc,119.9\n花园,31.8,\n", encoding="utf-8")
    with services.factory() as s, s.begin(), pytest.raises(TableError) as err2:
        import_posts(s, bad_posts)
    assert len(err2.value.problems) == 2
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(DutyPost)) == 2


def test_duty_ledger(school, wechat_user, runner, houqin, tmp_path: Path) -> None:
    wechat_user("张丽").say("签到")  # 09:35: on time; nobody checks in at 午间
    runner.run_now("record_missed_duty", at("2026-11-23 12:10"))
    out = tmp_path / "duty.xlsx"
    result = houqin("export", "duty", "--month", "2026-11", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(read_ledger(out, "值日台账"))
    assert rows[0] == tuple(SHIFT_HEADER)
    assert rows[1][1:8] == ("一楼东楼梯", "课间（09:40–10:00）", "张丽", "张丽", "文字（未验证）",
                           datetime(2026, 11, 23, 9, 35), "按时")
    assert rows[2][1] == "校门口" and rows[2][3] == "王强" and rows[2][7] == "缺岗"
    summary = {r[0]: r[1:] for r in read_ledger(out, "教师汇总")[1:]}
    assert summary["张丽"] == (1, 1, 0, 0, 0, 0) and summary["王强"] == (1, 0, 0, 1, 0, 0)


def test_qr_sheet_for_posts(school, fake_wechat, services: Services, houqin, tmp_path: Path) -> None:
    out = tmp_path / "posts.pdf"
    result = houqin("qr", "posts", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF") and "新建 2 个" in result.output
    scenes = [c.body["action_info"]["scene"]["scene_str"] for c in fake_wechat.calls if c.endpoint == "qrcode/create"]
    assert sorted(scenes) == sorted(f"post:{post_id(services, n)}" for n in ("一楼东楼梯", "校门口"))
    again = houqin("qr", "posts", "--out", str(out))
    assert "新建 0 个" in again.output


def test_a_staff_patrol_round_checks_in_at_each_checkpoint(school, people, wechat_user, runner, queued, clock,
                                                           services: Services, tmp_path: Path) -> None:
    """日巡视制: one staff member rostered at several checkpoints in one slot scans each of them."""
    people.add("程财宝", "staff", categories="安全")
    roster = tmp_path / "patrol.csv"
    roster.write_text("星期,时段,岗位,教师\n周一,放学,一楼东楼梯,程财宝\n周一,放学,校门口,程财宝\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        import_roster(s, roster)
    runner.run_now("remind_duty", at("2026-11-23 15:50"))
    assert [r.name for r in queued("duty_reminder")] == ["程财宝", "程财宝"]
    clock.set("2026-11-23 15:58")
    guard = wechat_user("程财宝")
    assert "已签到：一楼东楼梯 放学" in guard.scan(f"post:{post_id(services, '一楼东楼梯')}").text
    runner.run_now("record_missed_duty", at("2026-11-23 16:10"))
    (missed,) = queued("duty_missed")
    assert "校门口" in missed.text  # the checkpoint he did not reach


def test_checking_in_where_the_rostered_teacher_already_is_is_not_a_stand_in(school, wechat_user, services: Services,
                                                                            queued, tmp_path: Path) -> None:
    (tmp_path / "wang.csv").write_text("星期,时段,岗位,教师\n周一,课间,校门口,王强\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        import_roster(s, tmp_path / "wang.csv")
    zhang, wang = wechat_user("张丽"), wechat_user("王强")
    zhang.say("签到")
    reply = wang.scan(f"post:{post_id(services, '一楼东楼梯')}")
    assert reply.text == ("张丽已于 09:35 在一楼东楼梯签到（课间（09:40–10:00）），你不是代班，本次没有记录签到。"
                          "你本时段的岗位是「校门口」，是要在那里签到吗？回复「是」签到（文字签到），或扫描该岗位二维码。")
    assert queued("duty_stand_in") == []
    assert len(checkins(services)) == 1
    answer = wang.say("是")
    assert answer.text.startswith("已签到：校门口 课间（09:40–10:00），09:35") and "代班" not in answer.text
    rows = checkins(services)
    assert len(rows) == 2 and not rows[1].stand_in and rows[1].method == "text"
    # his own post is done now: nothing to offer, nothing recorded
    assert wang.say("签到 东楼梯").text.endswith("你不是代班，本次没有记录签到。")
    assert len(checkins(services)) == 2


def test_declining_the_own_post_question_records_nothing(school, wechat_user, services: Services,
                                                         tmp_path: Path) -> None:
    (tmp_path / "wang.csv").write_text("星期,时段,岗位,教师\n周一,课间,校门口,王强\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        import_roster(s, tmp_path / "wang.csv")
    wechat_user("张丽").say("签到")
    wang = wechat_user("王强")
    assert "是要在那里签到吗" in wang.say("签到 东楼梯").text
    assert wang.say("不是").text == "好的，没有签到。需要时请发送「签到 岗位名」或扫描岗位二维码。"
    assert len(checkins(services)) == 1


def test_unrostered_teacher_where_the_rostered_one_checked_in_is_told_so(school, people, wechat_user,
                                                                         services: Services, queued) -> None:
    people.add("刘洋", "teacher")
    wechat_user("张丽").say("签到")
    reply = wechat_user("刘洋").say("签到 东楼梯")
    assert reply.text == "张丽已于 09:35 在一楼东楼梯签到（课间（09:40–10:00）），你不是代班，本次没有记录签到。"
    assert len(checkins(services)) == 1 and queued("duty_stand_in") == []


def test_declining_a_handover_tells_the_asker(school, wechat_user, queued, services: Services, clock) -> None:
    from models.duty import DutySwap

    clock.set("2026-11-23 08:00")
    zhang, wang = wechat_user("张丽"), wechat_user("王强")
    zhang.say("代班 王强 今天 课间")
    assert "「不同意」拒绝" in queued("duty_swap_request")[0].text
    assert wang.say("不同意").text == "已拒绝张丽的代班请求：11月23日（周一） 课间（09:40–10:00） 一楼东楼梯。"
    (told,) = queued("duty_swap_declined")
    assert told.name == "张丽" and "王强不能代你值日：11月23日（周一） 课间（09:40–10:00） 一楼东楼梯" in told.text
    assert wang.say("同意").text == "目前没有待你同意的代班请求。"
    with services.factory() as s:
        swap = s.scalar(select(DutySwap))
        assert swap.declined_at is not None and swap.accepted_at is None
        assert s.scalar(select(func.count()).select_from(DutyShift)) == 0  # the roster is unchanged


def test_with_two_requests_the_answer_asks_which(school, people, wechat_user, queued, services: Services,
                                                 clock) -> None:
    people.add("刘洋", "teacher")
    clock.set("2026-11-23 08:00")
    zhang, wang, liu = wechat_user("张丽"), wechat_user("王强"), wechat_user("刘洋")
    zhang.say("代班 刘洋 今天 课间")
    wang.say("代班 刘洋 今天 午间")
    asked = liu.say("同意")
    assert asked.text == ("你有 2 个待答复的代班请求：\n1. 张丽：11月23日（周一） 课间（09:40–10:00） 一楼东楼梯\n"
                          "2. 王强：11月23日（周一） 午间（12:00–12:40） 校门口\n请回复「同意 序号」或「同意 姓名」，例如：同意 1")
    assert queued("duty_swap_accepted") == []
    assert "没有找到「李四」对应的代班请求" in liu.say("李四").text
    assert "没有找到「5」对应的代班请求" in liu.say("同意 5").text
    assert liu.say("2").text.startswith("已接受代班：11月23日（周一） 午间")
    assert [r.name for r in queued("duty_swap_accepted")] == ["王强"]
    assert liu.say("不同意 张丽").text.startswith("已拒绝张丽的代班请求")
    assert [r.name for r in queued("duty_swap_declined")] == ["张丽"]
    assert liu.say("不同意").text == "目前没有待你同意的代班请求。"


def test_daiban_asks_which_colleague_when_two_share_the_name(school, wechat_user, queued, services: Services,
                                                             clock) -> None:
    from models.duty import DutySwap

    clock.set("2026-11-23 08:00")
    school.add("王强", "teacher", class_name="五(3)班", phone="13800000009")
    zhang = wechat_user("张丽")

    asked = zhang.say("代班 王强 今天 课间").text

    assert asked == "有两位「王强」：王强（教师）、王强（五(3)班，138****0009）——请写 王强 五(3)班 或手机号后四位"
    assert queued("duty_swap_request") == []
    assert "王强" in zhang.say("代班 王强 0009 今天 课间").text
    with services.factory() as s:
        (swap,) = s.scalars(select(DutySwap))
        assert (swap.to_person.phone, swap.slot) == ("13800000009", "课间")
