"""School bus: headcounts against the roster, the left-on-bus alarm until 确认, leave, watchdog, ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.export import read_ledger
from bot.school import set_setting
from bot.services import Services
from handlers.bus import ACK_NOTHING_OPEN, ACK_REFUSED, ALARM_TOLD, MISMATCH_UNCHANGED, import_routes
from models import DeliveryAlert
from models.bus import BusAlarm, BusLeave, BusTrip

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROUTES_CSV = """线路,别名,车牌,司机,司机电话,跟车老师,站点,上学时间,放学时间
1,一号线;龙城线,苏D·12345,钱师傅,13900000001,李娜,龙城花园,07:10,16:55
1,,,,,,青龙路口,07:25,16:40
2,,苏D·67890,吴师傅,,王芳,新北万达,07:15,16:50
"""


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, services: Services, tmp_path: Path, clock):
    """Route 1 (driver 钱师傅, monitor 李娜) carries 陈小明, 刘欣怡, 赵子轩; route 2 carries 孙悦. 宦欢 (canteen) is the
    bus manager; 周春明 the admin; 陈建国 is 陈小明's parent."""
    clock.set("2026-11-23 07:00")  # a Monday
    people.add("周春明", "admin")
    people.add("宦欢", "canteen")
    people.add("李娜", "bus_monitor", "teacher", route="1", phone="13800000002")
    people.add("王芳", "bus_monitor", route="2")
    people.add("张丽", "teacher")
    people.add("陈建国", "parent")
    for name, class_name, route, stop in (("陈小明", "三(2)班", "1", "龙城花园"), ("刘欣怡", "三(2)班", "1", "龙城花园"),
                                          ("赵子轩", "四(1)班", "1", "青龙路口"), ("孙悦", "四(1)班", "2", "新北万达")):
        people.student(name, class_name, route=route, stop=stop)
    csv = tmp_path / "routes.csv"
    csv.write_text(ROUTES_CSV, encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_routes(s, csv) == 2
        set_setting(s, "bus_manager", "宦欢")
    return people


@pytest.fixture
def monitor(school, wechat_user):
    return wechat_user("李娜")


@pytest.fixture
def parent(school, wechat_user, people):
    user = wechat_user("陈建国")
    assert "陈小明" in user.say(f"绑定 {people.code_of('陈小明')}").text
    return user


def trips(services: Services) -> list[BusTrip]:
    with services.factory() as s:
        return list(s.scalars(select(BusTrip).order_by(BusTrip.id)))


def test_boarding_count_that_matches_needs_no_alert(monitor, queued) -> None:
    reply = monitor.say("校车 1号线 上车 3")
    assert reply.text == "1号线 上学趟 上车：应到 3 人，实到 3 人，人数相符。"
    assert queued() == []


def test_boarding_mismatch_alerts_bus_manager_and_admin_with_names(monitor, queued, deliver, fake_wechat,
                                                                   wechat_user) -> None:
    manager = wechat_user("宦欢")  # writes to the bot, so a customer-service message can reach her
    reply = monitor.say("校车 一号线 上车 2")
    assert "应到 3 人，实到 2 人，少 1 人" in reply.text
    # 周春明 (admin) has not bound: the reply says so, and the bus manager is told of it
    assert "核对名单：已通知宦欢；周春明暂时无法送达（未绑定微信），已告知宦欢。" in reply.text
    alerts = queued("bus_mismatch")
    assert {r.name for r in alerts} == {"宦欢", "周春明"}
    assert all(r.safety for r in alerts)
    assert "上车 2 人，应到 3 人（少 1 人）" in alerts[0].text
    assert "陈小明（龙城花园）" in alerts[0].text and "赵子轩（青龙路口）" in alerts[0].text
    assert "报告人：李娜" in alerts[0].text
    deliver()
    assert fake_wechat.sent_to("宦欢")[-1].mentions("校车人数不符", "1号线")
    assert manager is not None


def test_second_report_replaces_the_first_and_says_so(monitor, services: Services) -> None:
    monitor.say("校车 1号线 上车 3")
    reply = monitor.say("校车 1号线 上车 2")
    assert "实到 2 人" in reply.text and "已更新，之前报告为 3 人" in reply.text
    (trip,) = trips(services)
    assert trip.boarded == 2 and trip.trip == "am"


def test_leave_takes_the_child_off_the_expected_count(parent, monitor, queued, services: Services) -> None:
    reply = parent.say("请假 陈小明 今天 上学")
    assert reply.text.startswith("已为陈小明请假：11月23日（周一） 上学校车不乘坐")
    assert "应到 2 人，实到 2 人，人数相符" in monitor.say("校车 1号线 上车 2").text
    assert queued("bus_mismatch") == []
    assert "已为陈小明销假" in parent.say("销假 陈小明 今天").text
    assert "应到 3 人，实到 2 人" in monitor.say("校车 1号线 上车 2").text


def test_leave_for_the_afternoon_does_not_change_the_morning(parent, monitor) -> None:
    parent.say("请假 陈小明 今天 放学")
    assert "应到 3 人" in monitor.say("校车 1号线 上车 3").text


@pytest.mark.parametrize(("typed", "trips"), [("请假 陈小明 今天放学", "pm"), ("请假 今天下午", "pm"),
                                              ("请假 陈小明 今天全天", "all"), ("请假 今天早上", "am")])
def test_a_day_glued_to_its_trip_is_both(parent, services: Services, typed, trips) -> None:
    assert parent.say(typed).text.startswith("已为陈小明请假：11月23日（周一） ")
    with services.factory() as s:
        assert [(lv.day, lv.trips) for lv in s.scalars(select(BusLeave))] == [(date(2026, 11, 23), trips)]


def test_parent_may_only_ask_leave_for_their_own_child(parent, services: Services, wechat_user) -> None:
    assert "没有找到你关联的学生「孙悦」" in parent.say("请假 孙悦 明天").text
    assert "日期「下个月」不对" in parent.say("请假 陈小明 下个月").text
    assert "日期「2020-01-01」不对" in parent.say("请假 陈小明 2020-01-01").text
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(BusLeave)) == 0
    teacher = wechat_user("张丽")
    assert "已为孙悦请假：11月24日（周二） 全天（上学、放学）" in teacher.say("请假 孙悦 明天").text


def test_fewer_off_than_on_raises_the_alarm_repeated_until_acknowledged(monitor, queued, runner, clock,
                                                                        services: Services, wechat_user) -> None:
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    reply = monitor.say("校车 1号线 下车 2")
    assert "1号线 放学趟 下车：上车 3 人，下车 2 人，少 1 人。" in reply.text
    # nobody responsible has bound: the reply must not claim they were told
    assert ALARM_TOLD.format(told="宦欢、周春明暂时无法送达（未绑定微信），已在后勤控制台标红提醒。") in reply.text
    first = queued("bus_alarm")
    assert {r.name for r in first} == {"宦欢", "周春明"}
    assert all(r.safety and r.due == at("2026-11-23 16:35") for r in first)
    assert "可能有 1 名学生仍在车上" in first[0].text and "苏D·12345" in first[0].text
    assert "司机 钱师傅 13900000001，跟车老师 李娜 13800000002" in first[0].text
    assert runner.run_now("repeat_bus_alarms", at("2026-11-23 16:38")).result == "没有未确认的警报"
    runner.run_now("repeat_bus_alarms", at("2026-11-23 16:40"))
    repeated = queued("bus_alarm")[len(first):]
    assert {r.name for r in repeated} == {"宦欢", "周春明"} and "第2次提醒" in repeated[0].text
    # the office was told once, when the alarm was raised, that neither could be reached; the repeat
    # does not raise that again
    with services.factory() as s:
        assert sorted(s.scalars(select(DeliveryAlert.name))) == sorted(["周春明", "宦欢"])
    # a teacher may not acknowledge; the bus manager (not an admin) may
    assert wechat_user("张丽").say("确认 1号线").text.startswith(ACK_REFUSED)
    clock.set("2026-11-23 16:42")
    ack = wechat_user("宦欢").say("确认 1号线")
    assert ack.text.startswith("已确认1号线警报（1条），确认人：宦欢，时间 16:42。未填写情况")
    assert ack.text.endswith("已通知李娜；周春明暂时无法送达（未绑定微信），已告知宦欢。")
    told = queued("bus_alarm_ack")
    assert {r.name for r in told} == {"李娜", "周春明"} and "宦欢" in told[0].text and "未填写情况" in told[0].text
    assert runner.run_now("repeat_bus_alarms", at("2026-11-23 16:50")).result == "没有未确认的警报"
    with services.factory() as s:
        alarm = s.scalar(select(BusAlarm))
        assert alarm.pushes == 2 and alarm.acknowledged_by.name == "宦欢"
    assert "目前没有未确认的警报" in wechat_user("宦欢").say("确认 1号线").text


def test_more_off_than_on_is_a_data_error_not_an_alarm(monitor, queued, services: Services) -> None:
    monitor.say("校车 1号线 上车 2")
    reply = monitor.say("校车 1号线 下车 3")
    assert "下车人数多于上车人数（3 > 2）" in reply.text
    assert queued("bus_alarm") == []
    assert trips(services)[0].data_error


def test_voice_and_glued_reports(monitor, services: Services) -> None:
    assert "1号线 上学趟 上车：应到 3 人，实到 3 人" in monitor.voice("一号线上车三人。").text
    assert "下车：上车 3 人，下车 3 人，人数相符" in monitor.say("1号线下车3").text
    assert trips(services)[0].alighted == 3


def test_bad_input_gets_a_clear_answer_and_records_nothing(monitor, wechat_user, services: Services) -> None:
    assert "没有找到线路「9」" in monitor.say("校车 9号线 上车 3").text
    assert "人数「三百」不对" in monitor.say("校车 1号线 上车 三百").text
    assert "人数「abc」不对" in monitor.say("校车 1号线 上车 abc").text
    assert "请按格式发送" in monitor.say("校车").text
    assert "仅限管理员、跟车老师使用" in wechat_user("张丽").say("校车 1号线 上车 3").text
    assert trips(services) == []


def test_watchdog_reminds_the_monitor_then_tells_admin(school, runner, queued, monitor) -> None:
    assert runner.run_now("watch_bus_reports", at("2026-11-23 08:14")).result == "各趟人数已报告或未到时间"
    runner.run_now("watch_bus_reports", at("2026-11-23 08:15"))
    reminders = queued("bus_report_missing")
    assert [r.name for r in reminders] == ["李娜", "王芳"]
    assert "1号线 上学趟还没有报告上车、下车人数" in reminders[0].text
    runner.run_now("watch_bus_reports", at("2026-11-23 08:20"))
    assert len(queued("bus_report_missing")) == 2
    runner.run_now("watch_bus_reports", at("2026-11-23 08:30"))
    escalations = queued("bus_report_missing")[2:]
    assert {r.name for r in escalations} == {"周春明"} and len(escalations) == 2


def test_reported_trip_is_not_chased(school, runner, queued, monitor, clock) -> None:
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 3")
    runner.run_now("watch_bus_reports", at("2026-11-23 08:31"))
    assert {r.name for r in queued("bus_report_missing")} == {"王芳", "周春明"}  # only route 2 is late


def test_subscribed_parent_hears_the_morning_bus_arrive(parent, monitor, queued, clock) -> None:
    assert "已订阅：陈小明的上学校车到校时会通知你" in parent.say("订阅 校车").text
    monitor.say("校车 1号线 上车 3")
    clock.set("2026-11-23 07:52")
    monitor.say("校车 1号线 下车 3")
    (notice,) = queued("bus_arrival")
    assert notice.name == "陈建国" and "陈小明乘坐的1号线校车已于 07:52 到校" in notice.text
    assert parent.say("退订 校车").text == "已退订校车到校通知。"


def test_digest_has_a_bus_section(monitor, runner, queued, clock) -> None:
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 2")
    runner.run_now("send_daily_digest", at("2026-11-23 17:00"))
    text = queued("daily_digest")[0].text
    assert "■ 校车" in text and "1号线放学：下车少 1 人的警报，提醒 1 次，未确认！" in text


def test_digest_shows_what_the_acknowledger_found(monitor, runner, queued, clock, wechat_user) -> None:
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 2")
    wechat_user("宦欢").say("确认 1号线 车厢已查，无人滞留")
    runner.run_now("send_daily_digest", at("2026-11-23 17:00"))
    assert "1号线放学：下车少 1 人的警报，提醒 1 次，已由宦欢确认（车厢已查，无人滞留）" in queued("daily_digest")[0].text


def test_bus_ledger_export(monitor, wechat_user, services: Services, tmp_path: Path, backend, clock) -> None:
    from bot.export import Sheet, write_workbook
    from handlers.bus import LEAVE_HEADER, TRIP_HEADER, bus_ledger

    wechat_user("张丽").say("请假 孙悦 今天 上学")
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 2")
    wechat_user("宦欢").say("确认 1号线 后排发现赵子轩睡着了，已送回家")
    out = tmp_path / "bus.xlsx"
    if backend.name == "sqlite":  # the real command, on the test's database file
        env = {"WECHAT_TOKEN": "busToken12345678", "WECHAT_APPID": "wxbus", "WECHAT_SECRET": "s", "WECHAT_AES_KEY": "",
               "HOUQIN_SECRET_KEY": "x" * 32, "DATABASE_URL": services.settings.database_url,
               "HOUQIN_INSTANCE": str(tmp_path)}
        result = CliRunner().invoke(__import__("bot.cli").cli.main,
                                    ["export", "bus", "--month", "2026-11", "--out", str(out)], env=env)
        assert result.exit_code == 0, result.output
    else:
        with services.factory() as s:
            trips_rows, leave_rows = bus_ledger(s, date(2026, 11, 1), services.settings.tz)
        write_workbook(out, [Sheet("校车台账", TRIP_HEADER, trips_rows), Sheet("请假记录", LEAVE_HEADER, leave_rows)])
    rows = list(read_ledger(out, "校车台账"))
    assert rows[0][:6] == ("日期", "线路", "趟次", "应到", "上车", "下车")
    (trip,) = rows[1:]
    assert trip[1:6] == ("1号线", "放学", 3, 3, 2)
    assert "少1人" in trip[9] and trip[10] == "宦欢 16:35 情况：后排发现赵子轩睡着了，已送回家"
    leaves = list(read_ledger(out, "请假记录"))
    # the route as the trips sheet names it (1号线), not the bare number the students import stores
    assert leaves[1][1:5] == ("孙悦", "四(1)班", "2号线", "上学") and leaves[1][5] == "张丽"


def test_students_route_written_any_way_rides_that_bus(school, services: Services, wechat_user, tmp_path: Path,
                                                       clock) -> None:
    """三号线, 3路 and 03 in the students sheet all name route 3 of the routes import."""
    from handlers.identity import import_students

    (tmp_path / "kids.csv").write_text("姓名,班级,线路,站点\n甲,一(1)班,三号线,东门\n乙,一(1)班,3路,东门\n"
                                       "丙,一(2)班,03,东门\n", encoding="utf-8")
    (tmp_path / "route3.csv").write_text("线路,跟车老师,站点,上学时间\n3号线,李娜,东门,07:00\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        import_routes(s, tmp_path / "route3.csv")
        import_students(s, tmp_path / "kids.csv", services.now())
    assert "3号线 上学趟 上车：应到 3 人，实到 3 人，人数相符" in wechat_user("李娜").say("校车 三号线 上车 3").text


def test_corrected_boarding_count_tells_those_alerted_and_repeats_are_not_realerted(
        monitor, queued, services: Services, wechat_user) -> None:
    wechat_user("宦欢")  # bound; the admin 周春明 is not
    assert ("少 1 人。请校车管理和管理员核对名单：已通知宦欢；周春明暂时无法送达（未绑定微信），已告知宦欢。"
            in monitor.say("校车 1号线 上车 2").text)
    assert len(queued("bus_mismatch")) == 2
    # the same count again: the office already knows this difference
    reply = monitor.say("校车 1号线 上车 2")
    assert reply.text.endswith(f"少 1 人。{MISMATCH_UNCHANGED}（已更新，之前报告为 2 人）")
    assert len(queued("bus_mismatch")) == 2
    # the bus manager changes meanwhile: the correction still goes to those who got the alert
    with services.factory() as s, s.begin():
        set_setting(s, "bus_manager", "王芳")
    reply = monitor.say("校车 1号线 上车 3")
    assert ("应到 3 人，实到 3 人，人数相符。之前的人数不符提醒已更正：已通知宦欢；周春明暂时无法送达（未绑定微信），"
            "已在后勤控制台标红提醒。"  # the bus manager is now 王芳, who has not bound either
            in reply.text)
    corrections = queued("bus_mismatch")[2:]
    assert {r.name for r in corrections} == {"周春明", "宦欢"}
    assert all(r.safety and "已更正：人数相符" in r.text and "上车 3 人" in r.text for r in corrections)
    assert monitor.say("校车 1号线 上车 3").text.startswith("1号线 上学趟 上车：应到 3 人，实到 3 人，人数相符。（")
    # a new difference is a new full alert, to whoever is responsible now
    assert "多 1 人。请校车管理和管理员核对名单：" in monitor.say("校车 1号线 上车 4").text
    again = queued("bus_mismatch")[4:]
    assert {r.name for r in again} == {"周春明", "王芳"} and "（多 1 人）" in again[0].text


def test_reporting_fewer_off_again_does_not_raise_a_second_alarm(monitor, queued, clock, services: Services) -> None:
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 2")
    reply = monitor.say("校车 1号线 下车 2")
    assert "本趟下车少 1 人的警报仍未确认" in reply.text
    assert len(queued("bus_alarm")) == 2
    reply = monitor.say("校车 1号线 下车 3")
    assert "上车 3 人，下车 3 人，人数相符" in reply.text and "之前的警报仍待确认" in reply.text
    assert "确认 1号线 情况" in reply.text
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(BusAlarm)) == 1


def test_off_count_reply_adds_up_against_the_on_count(parent, monitor) -> None:
    reply = monitor.say("校车 1号线 上车 2")
    assert "应到 3 人，实到 2 人，少 1 人" in reply.text
    assert "下车：上车 2 人，下车 2 人，人数相符。" in monitor.say("校车 1号线 下车 2").text
    assert "下车：上车 2 人，下车 3 人，多 1 人。下车人数多于上车人数（3 > 2）" in monitor.say("校车 1号线 下车 3").text


def test_acknowledging_records_what_was_found_and_tells_the_monitor(monitor, queued, clock, services: Services,
                                                                   wechat_user, deliver, fake_wechat) -> None:
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 2")
    manager = wechat_user("宦欢")
    clock.set("2026-11-23 16:41")
    reply = manager.say("确认 1号线 后排发现赵子轩睡着了，已送回家")
    assert reply.text == ("已确认1号线警报（1条），确认人：宦欢，时间 16:41。情况：后排发现赵子轩睡着了，已送回家。"
                          "已通知李娜；周春明暂时无法送达（未绑定微信），已告知宦欢。")
    told = queued("bus_alarm_ack")
    assert {r.name for r in told} == {"李娜", "周春明"} and all(r.safety for r in told)
    assert "情况：后排发现赵子轩睡着了，已送回家" in told[0].text
    deliver()
    assert fake_wechat.sent_to("李娜")[-1].mentions("已由宦欢于 16:41 确认", "赵子轩睡着了")
    with services.factory() as s:
        assert s.scalar(select(BusAlarm.note)) == "后排发现赵子轩睡着了，已送回家"  # the user's own comma


def test_bare_acknowledge_takes_the_one_open_alarm_or_asks_which(monitor, wechat_user, queued, clock,
                                                                 services: Services) -> None:
    admin = wechat_user("周春明")
    assert admin.say("确认").text == ACK_NOTHING_OPEN
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 2")
    assert admin.say("确认 车厢已查，无人").text.startswith("已确认1号线警报（1条），确认人：周春明，时间 16:35。情况：车厢已查，无人。")
    clock.set("2026-11-23 16:50")
    monitor.say("校车 1号线 下车 1")
    wang = wechat_user("王芳")
    wang.say("校车 2号线 上车 1")
    wang.say("校车 2号线 下车 0")
    assert "司机 吴师傅（电话未登记），跟车老师 王芳（电话未登记）" in queued("bus_alarm")[-1].text
    asked = admin.say("确认 都查过了")
    assert asked.text == ("有 2 条线路的警报未确认：\n1号线（放学趟 16:50 少2人）\n2号线（放学趟 16:50 少1人）\n"
                          "请回复要确认的线路，例如：1号线。")
    assert "请回复上面列出的线路（1号线、2号线）" in admin.say("5号线").text
    done = admin.say("2号线")
    assert done.text.startswith("已确认2号线警报（1条），确认人：周春明，时间 16:50。情况：都查过了。")
    assert "已通知王芳；宦欢暂时无法送达（未绑定微信）" in done.text
    with services.factory() as s:
        open_routes = [a.trip.route.number for a in s.scalars(select(BusAlarm).where(BusAlarm.acknowledged_at.is_(None)))]
    assert open_routes == ["1"]
    assert "没有找到线路「9号线」" in admin.say("确认 9号线").text
    wang.say("校车 2号线 下车 1")
    wang.say("校车 2号线 下车 0")  # a new alarm on route 2: two routes are open again
    assert admin.say("确认 又查了一遍").text.startswith("有 2 条线路的警报未确认")
    assert "情况：又查了一遍。" in admin.say("确认 1号线").text  # the answer as a command keeps the 情况
    assert admin.say("确认 2号线").text.startswith("已确认2号线警报（1条）")
    assert admin.say("确认").text == ACK_NOTHING_OPEN


# -- said the way parents and monitors write (issue 14) ---------------------------------------------------
@pytest.mark.parametrize("typed", ["明天小明不坐校车", "小明明天不坐校车了", "明天请假", "请假 小明 明天", "请假明天",
                                   "请假 陈小明 明天"])
def test_a_parent_names_the_child_as_they_call_it_or_not_at_all(parent, services: Services, typed) -> None:
    reply = parent.say(typed).text
    assert reply.startswith("已为陈小明请假：11月24日（周二） 全天（上学、放学）校车不乘坐"), reply
    with services.factory() as s:
        assert [(lv.day, lv.trips) for lv in s.scalars(select(BusLeave))] == [(date(2026, 11, 24), "all")]


@pytest.mark.parametrize("typed", ["怎么请假", "孩子明天不坐校车怎么请假", "明天可以请假吗？", "如何请假"])
def test_a_parent_asking_how_to_take_leave_is_told_how_and_no_leave_is_taken(parent, services: Services,
                                                                            typed) -> None:
    reply = parent.say(typed).text
    assert "请假" in reply and "已为" not in reply and "没有听懂" not in reply, reply
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(BusLeave)) == 0


def test_a_parent_sentence_with_a_trip_and_a_partial_name(parent) -> None:
    assert parent.say("请假 小明 明天 上学").text.startswith("已为陈小明请假：11月24日（周二） 上学校车不乘坐")
    assert parent.say("周五小明放学不坐车").text.startswith("已为陈小明请假：11月27日（周五） 放学校车不乘坐")


def test_a_parent_with_two_children_is_asked_which(parent, people, services: Services, wechat_user) -> None:
    with services.factory() as s, s.begin():
        from models import ParentLink, Person, Student

        me = s.scalar(select(Person).where(Person.name == "陈建国"))
        other = s.scalar(select(Student).where(Student.name == "刘欣怡"))
        s.add(ParentLink(person=me, student=other))
    assert parent.say("明天请假").text.startswith("请写明是哪个孩子（")
    assert parent.say("欣怡明天不坐校车").text.startswith("已为刘欣怡请假：11月24日（周二）")


@pytest.mark.parametrize(("typed", "day"), [("周五", "11月27日（周五）"), ("下周一", "11月30日（周一）"),
                                             ("星期三", "11月25日（周三）"), ("礼拜一", "11月23日（周一）")])
def test_weekday_names_are_dates(school, wechat_user, typed, day) -> None:
    assert wechat_user("张丽").say(f"请假 刘欣怡 {typed}").text.startswith(f"已为刘欣怡请假：{day}")


def test_the_example_date_of_a_refusal_lies_ahead(school, wechat_user, clock) -> None:
    teacher = wechat_user("张丽")  # bound before the bind codes expire
    clock.set("2026-12-30 07:00")
    refusal = teacher.say("请假 刘欣怡 上周五").text
    assert "日期「上周五」不对" in refusal and "（如 12月31日）" in refusal


@pytest.mark.parametrize("typed", ["3号线上车 40人", "3号线上车40", "三号线 上车 四十人", "3路上车：40人", "3号线 40人上车",
                                   "校车 3 上车 40"])
def test_every_form_of_a_headcount_reaches_the_bus(monitor, services: Services, typed) -> None:
    assert monitor.say(typed).text.startswith("没有找到线路「3」。现有线路：")
    assert trips(services) == []


def test_headcount_forms_for_a_known_route(monitor, services: Services) -> None:
    assert "实到 3 人" in monitor.say("1号线 3人上车").text
    assert "实到 2 人" in monitor.say("1号线上车人数：2").text
    assert "实到 1 人" in monitor.say("今天1号线上车1人").text
    assert "实到 3 人" in monitor.say("1号线上车3人 👌").text
    (trip,) = trips(services)
    assert trip.boarded == 3


def test_a_repeated_alarm_has_one_heading(monitor, queued, runner, clock) -> None:
    """Nested or doubled brackets read as no one would write them: 【校车警报·第2次提醒】【校车警报】."""
    clock.set("2026-11-23 16:35")
    monitor.say("校车 1号线 上车 3")
    monitor.say("校车 1号线 下车 2")
    runner.run_now("repeat_bus_alarms", at("2026-11-23 16:40"))
    repeated = queued("bus_alarm")[-1].text
    assert repeated.startswith("【校车警报·第2次提醒】1号线") and repeated.count("【") == 1, repeated
