"""Repairs and hazards through the webhook and the fake WeChat: filing (dialog, one-shot, QR), places,
routing, urgency, duplicates, photos, the lifecycle with its notifications and wrong-role / bad-input
answers, 我的报修, 巡查, 撤销 and giving up, text kept as written, escalation jobs and the digest section."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from bot.engine import IMAGE_UNUSED, NOT_UNDERSTOOD
from bot.export import read_ledger
from bot.school import DEFAULT_SETTINGS, get_setting, set_setting
from bot.services import Services
from bot.wechat.fake import fake_jpeg
from handlers.assets.register import import_assets
from handlers.repair.chat import HELP_REPAIR, NO_OPEN, NO_WORK, PHOTO_FIRST
from handlers.repair.ledger import import_categories, import_rooms
from handlers.repair.rules import categorize
from models import RepairTicket, Room, SchoolSetting, TicketFollower, TicketPhoto
from scheduler.runner import NOT_SCHOOL_DAY, Runner
from tests.conftest import asset_id, at, heard, import_register, room_id, seeds_staff

ROOMS = """楼栋,楼层,房间,别名,负责人
教学楼,3,三(2)班,,张丽
教学楼,4,四(1)班,,
综合楼,2,科学室,科学教室;实验室,程财宝
"""
ASSETS = """编号,名称,类别,房间
DJ-0302,投影仪,电教,三(2)班
SD-0302,空调,水电,三(2)班
"""


@pytest.fixture
def school(people, services: Services, tmp_path: Path, clock):
    """The 分工 of seeds/001 (tests.conftest.seeds_staff), the rooms and two assets."""
    clock.set("2026-11-23 08:00")  # a Monday; bind codes are issued now and last 14 days
    seeds_staff(people)
    import_register(services, tmp_path, ROOMS, ASSETS, import_assets, now=services.now())
    clock.set("2026-11-23 08:00")  # a Monday
    return people


@dataclass
class Ticket:
    code: str
    place: str
    room: str | None
    asset: str | None
    category: str
    description: str
    status: str
    reporter: str
    assignee: str | None
    urgent: bool
    hazard: bool
    rating: int | None
    note: str
    reopen_count: int
    followers: list[str]
    photos: list[tuple[str, str, str]]  # kind, status, path


def ticket(services: Services, number: int) -> Ticket:
    with services.factory() as s:
        t = s.scalar(select(RepairTicket).where(RepairTicket.number == number))
        assert t is not None, f"no ticket R{number}"
        return Ticket(t.code, t.place, t.room.name if t.room else None, t.asset.code if t.asset else None,
                      t.category, t.description, t.status, t.reporter.name if t.reporter else "",
                      t.assignee.name if t.assignee else None, t.urgent, t.hazard, t.rating, t.note, t.reopen_count,
                      sorted(f.person.name for f in t.followers), [(p.kind, p.status, p.path) for p in t.photos])


def ticket_count(services: Services) -> int:
    with services.factory() as s:
        return int(s.scalar(select(func.count()).select_from(RepairTicket)) or 0)



FALLBACK = NOT_UNDERSTOOD.split("「")[0]  # 没有听懂


def names(rows) -> set[str]:
    return {r.name for r in rows}


# -- filing -----------------------------------------------------------------------------------------
def test_repair_dialog_files_ticket_and_notifies_staff(school, wechat_user, fake_wechat, deliver, services) -> None:
    teacher = wechat_user("张丽")
    wechat_user("殷奇")
    wechat_user("程财宝")
    teacher.dialog([("报修", "地点"), ("三年级2班", "描述"), ("投影仪不亮", "R1"), ("跳过", "R1")])
    deliver()
    assert heard(fake_wechat, "殷奇", "R1", "三(2)班", "投影仪不亮", "张丽", "接单 R1")
    assert fake_wechat.sent_to("程财宝") == []  # 电教 is 殷奇's
    t = ticket(services, 1)
    assert (t.room, t.category, t.reporter, t.status, t.urgent) == ("三(2)班", "电教", "张丽", "open", False)


def test_menu_button_starts_the_dialog_and_cancel_ends_it(school, wechat_user, services) -> None:
    teacher = wechat_user("张丽")
    assert "地点" in teacher.click("REPAIR").text
    assert "已取消「报修」" in teacher.say("取消").text
    assert ticket_count(services) == 0


@pytest.mark.parametrize("written", ["三(2)班", "三年级2班", "3-2", "三2班", "三（2）班", "三年级二班"])
def test_every_way_of_writing_a_class_names_the_registered_room(school, wechat_user, services, written) -> None:
    reply = wechat_user("张丽").say(f"报修 {written} 桌子腿断了")
    assert "R1" in reply.text and "三(2)班" in reply.text
    t = ticket(services, 1)
    assert (t.room, t.place, t.category) == ("三(2)班", "三(2)班", "桌椅")


def test_forms_of_one_room_are_one_room_for_duplicates_and_unknown_places_are_kept(school, wechat_user,
                                                                                  services) -> None:
    teacher = wechat_user("张丽")
    assert "R1" in teacher.say("报修 3-2 窗户关不上").text
    assert "你已报修过 R1" in teacher.say("报修 三年级2班 窗户把手掉了").text
    assert "已提交报修 R2：操场东北角" in teacher.say("报修 操场东北角 地砖松动").text
    assert "已提交报修 R3：科学室" in teacher.say("报修 实验室 门锁坏了").text  # an alias
    assert ticket(services, 2).room is None and ticket(services, 2).place == "操场东北角"
    assert ticket_count(services) == 3


def test_one_shot_glued_and_place_only(school, wechat_user, services) -> None:
    teacher = wechat_user("张丽")
    reply = teacher.say("报修三年级二班投影仪不亮")  # as voice input arrives: no spaces at all
    assert "已提交报修 R1：三(2)班 · 电教 · 投影仪不亮" in reply.text
    teacher.dialog([("报修 四(1)班", "描述"), ("灯管闪", "R2")])
    assert ticket(services, 2).room == "四(1)班" and ticket(services, 2).category == "水电"


def test_scanning_a_room_code_knows_the_place(school, wechat_user, services, fake_wechat, deliver) -> None:
    teacher = wechat_user("张丽")
    wechat_user("程财宝")
    reply = teacher.scan(f"room:{room_id(services, '三(2)班')}")
    assert "地点：三(2)班" in reply.text and "描述" in reply.text
    assert "R1" in teacher.say("灯管不亮").text
    deliver()
    assert heard(fake_wechat, "程财宝", "R1", "三(2)班", "灯管不亮")
    assert ticket(services, 1).room == "三(2)班"


def test_scanning_an_asset_code_takes_its_category(school, wechat_user, services) -> None:
    teacher = wechat_user("张丽")
    reply = teacher.scan(f"asset:{asset_id(services, 'DJ-0302')}")
    assert "三(2)班 投影仪" in reply.text
    teacher.say("没有声音")  # no keyword: the asset says 电教
    t = ticket(services, 1)
    assert (t.asset, t.room, t.category) == ("DJ-0302", "三(2)班", "电教")


def test_following_the_account_by_scanning_a_room_code(school, wechat_user, services) -> None:
    teacher = wechat_user("张丽")
    reply = teacher.subscribe(f"room:{room_id(services, '科学室')}")
    assert "地点：科学室" in reply.text
    assert "R1" in teacher.say("水龙头关不紧").text


def test_an_unknown_code_asks_for_the_place(school, wechat_user) -> None:
    reply = wechat_user("张丽").scan("room:999")
    assert "不在登记表中" in reply.text and "地点" in reply.text


def test_category_routing_falls_back_to_admin(school, wechat_user, fake_wechat, deliver, services,
                                              tmp_path: Path) -> None:
    (tmp_path / "categories.csv").write_text("类别,关键词\n绿化,树;草坪\n电教,投影\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_categories(s, tmp_path / "categories.csv") == 2
    wechat_user("周春明")
    wechat_user("张丽").say("报修 操场 树枝断了要掉下来")
    deliver()
    assert ticket(services, 1).category == "绿化"  # the school's own map; nobody has 绿化
    assert heard(fake_wechat, "周春明", "R1", "树枝断了")



def test_a_session_reads_the_map_and_settings_it_changed(school, services, tmp_path: Path) -> None:
    """The category map and an unset setting are read once per session, and a change in that session —
    an import of the map, a setting set or added — is what it reads next."""
    (tmp_path / "categories.csv").write_text("类别,关键词\n绿化,树;草坪\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        assert categorize(s, "树枝断了") != "绿化" and get_setting(s, "loan_days") == DEFAULT_SETTINGS["loan_days"]
        import_categories(s, tmp_path / "categories.csv")
        assert categorize(s, "树枝断了") == "绿化"
        set_setting(s, "loan_days", "9")
        assert get_setting(s, "loan_days") == "9"
        assert get_setting(s, "key_loan_days") == DEFAULT_SETTINGS["key_loan_days"]
        s.add(SchoolSetting(key="key_loan_days", value="3"))
        assert get_setting(s, "key_loan_days") == "3"
    with services.factory() as s:
        assert (categorize(s, "草坪坏了"), get_setting(s, "loan_days"), get_setting(s, "key_loan_days")) == ("绿化", "9", "3")


def test_a_long_lived_session_reads_anew_in_its_next_transaction(school, services, tmp_path: Path) -> None:
    """What a transaction remembered (the map, a setting found unset) ends with it: a worker's or a job's
    session that lives on sees, in its next transaction, a change the console committed meanwhile."""
    (tmp_path / "categories.csv").write_text("类别,关键词\n绿化,树;草坪\n", encoding="utf-8")
    with services.factory() as long:
        with long.begin():
            assert get_setting(long, "loan_days") == DEFAULT_SETTINGS["loan_days"]
            assert categorize(long, "树枝断了") != "绿化"
        with services.factory() as console, console.begin():
            set_setting(console, "loan_days", "11")
            import_categories(console, tmp_path / "categories.csv")
        with long.begin():
            assert get_setting(long, "loan_days") == "11"
            assert categorize(long, "树枝断了") == "绿化"


def test_urgent_words_alert_staff_and_admin_at_once(school, wechat_user, fake_wechat, deliver, queued,
                                                   services, clock) -> None:
    clock.set("2026-11-23 22:30")  # late: safety pushes are never held
    for name in ("周春明", "程财宝", "殷奇"):
        wechat_user(name)
    reply = wechat_user("张丽").say("报修 三(2)班 插座冒烟了")
    assert "紧急报修 R1" in reply.text
    alerts = queued("repair_urgent")
    assert names(alerts) == {"周春明", "程财宝"} and all(a.safety for a in alerts)
    deliver()
    assert heard(fake_wechat, "程财宝", "紧急", "R1", "插座冒烟了")
    assert heard(fake_wechat, "周春明", "紧急", "R1")
    assert fake_wechat.sent_to("殷奇") == []
    assert ticket(services, 1).urgent


def test_a_duplicate_follows_the_open_ticket_and_hears_its_progress(school, wechat_user, fake_wechat, deliver,
                                                                   services) -> None:
    zhang, wang, staff = wechat_user("张丽"), wechat_user("王强"), wechat_user("殷奇")
    zhang.say("报修 三(2)班 投影仪不亮")
    reply = wang.say("报修 三年级2班 投影仪没画面")
    assert "已有报修 R1" in reply.text and "关注" in reply.text
    assert ticket_count(services) == 1 and ticket(services, 1).followers == ["王强"]
    assert "R1" in wang.say("报修 3-2 投影坏了").text
    assert ticket(services, 1).followers == ["王强"]  # followed once
    staff.say("接单 R1")
    deliver()
    assert heard(fake_wechat, "张丽", "R1", "殷奇已接单")
    assert heard(fake_wechat, "王强", "R1", "殷奇已接单")
    assert "R1" in wang.say("我的报修").text



def test_a_report_of_an_open_fault_adds_to_its_history_without_reading_it(school, wechat_user, services) -> None:
    """A busy room's open ticket gathers reports: a further one is added to the history (in order, with
    who said it) without loading the history first, and asks for no setting or the category map twice."""
    zhang, wang = wechat_user("张丽"), wechat_user("王强")
    zhang.say("报修 三(2)班 投影仪不亮")
    assert "已有报修 R1" in wang.say("报修 三年级2班 投影仪没画面").text
    run: list[tuple[str, str]] = []

    def record(conn, cursor, statement, parameters, *args) -> None:
        run.append((" ".join(statement.split()), repr(parameters)))

    event.listen(services.db_engine, "before_cursor_execute", record)
    try:
        assert "R1" in zhang.say("报修 3-2 投影坏了").text
    finally:
        event.remove(services.db_engine, "before_cursor_execute", record)
    selects = [r for r in run if r[0].startswith("SELECT")]
    assert not [s for s, _ in selects if "FROM ticket_events" in s], selects
    assert len({r for r in selects if "FROM school_settings" in r[0]}) == len(
        [r for r in selects if "FROM school_settings" in r[0]]), selects
    assert len([s for s, _ in selects if "FROM repair_categories" in s]) <= 1, selects
    with services.factory() as s:
        t = s.scalar(select(RepairTicket).where(RepairTicket.number == 1))
        assert t is not None
        assert [(e.who, e.text) for e in t.follow_ups] == [("王强", "投影仪没画面"), ("张丽", "投影坏了")]


def test_urgent_words_in_a_followers_report_alert_at_once(school, wechat_user, queued, services, clock) -> None:
    clock.set("2026-11-23 22:30")  # late: safety pushes are never held
    wechat_user("张丽").say("报修 三(2)班 插座没电")
    assert queued("repair_urgent") == []
    reply = wechat_user("王强").say("报修 三(2)班 插座冒火花了")
    assert "R1" in reply.text and "紧急" in reply.text and ticket_count(services) == 1
    assert ticket(services, 1).urgent
    alerts = queued("repair_urgent")
    assert names(alerts) == {"程财宝", "周春明"} and all(a.safety for a in alerts)
    assert all("插座冒火花了" in a.text and "王强" in a.text for a in alerts)
    wechat_user("张丽").say("报修 三(2)班 插座打火")  # the ticket is urgent already: still alerted
    assert len(queued("repair_urgent")) == 4


@pytest.mark.parametrize("words", ["火花", "打火", "冒火", "烧焦味", "冒烟", "焦糊味"])
def test_sparks_and_burning_smells_are_urgent_by_default(school, wechat_user, services, words) -> None:
    assert "紧急报修 R1" in wechat_user("张丽").say(f"报修 三(2)班 插座{words}").text


# -- the same fault, or another -------------------------------------------------------------------------
@pytest.mark.parametrize(("first", "second", "same"), [
    ("空调漏水", "空调在漏水", True),
    ("投影仪不亮", "投影仪没画面", True),
    ("灯管不亮", "灯不亮了", True),
    ("空调漏水", "插座冒火花", False),
    ("空调漏水", "灯管闪烁", False),
    ("天花板漏水", "水管漏水", False),  # sharing only how it is broken is not the same fault
    ("窗户关不上", "门关不上", False),
])
def test_a_report_is_a_duplicate_only_of_the_same_fault(school, wechat_user, services, first, second,
                                                        same) -> None:
    wechat_user("张丽").say(f"报修 三(2)班 {first}")
    reply = wechat_user("王强").say(f"报修 三年级2班 {second}")
    if same:
        assert "已有报修 R1" in reply.text and f"「{second}」已补充到 R1" in reply.text
        assert ticket_count(services) == 1 and ticket(services, 1).followers == ["王强"]
    else:
        assert "已提交" in reply.text and "R2" in reply.text and "R1" not in reply.text
        assert ticket_count(services) == 2 and ticket(services, 1).followers == []
        assert ticket(services, 2).description == second


def test_a_different_fault_in_the_same_room_is_never_swallowed(school, wechat_user, fake_wechat, deliver, queued,
                                                               services) -> None:
    """三(2)班: 插座冒火花 was merged into 空调漏水 (no ticket, no push, and later "R1 已修好");
    灯管闪烁 from the same reporter got "你已报修过"."""
    zhang, wang, cheng = wechat_user("张丽"), wechat_user("王强"), wechat_user("程财宝")
    zhang.say("报修 三(2)班 空调漏水")
    assert "紧急报修 R2" in wang.say("报修 三(2)班 插座冒火花").text
    assert names(queued("repair_urgent")) == {"程财宝", "周春明"}
    assert "已提交报修 R3" in zhang.say("报修 三(2)班 灯管闪烁").text
    assert [ticket(services, n).description for n in (1, 2, 3)] == ["空调漏水", "插座冒火花", "灯管闪烁"]
    cheng.say("完成 R1 换了排水管")
    deliver()
    assert heard(fake_wechat, "张丽", "R1", "已修好")
    assert not heard(fake_wechat, "王强", "R1")


def test_the_same_asset_is_the_same_fault_and_another_asset_is_not(school, wechat_user, services) -> None:
    zhang, wang = wechat_user("张丽"), wechat_user("王强")
    zhang.scan(f"asset:{asset_id(services, 'DJ-0302')}")
    zhang.say("没有声音")
    assert "已有报修 R1" in wang.say("报修 DJ-0302 遥控器没反应").text  # the same projector
    assert "已有报修 R1" in wang.say("报修 三(2)班 投影仪一直闪").text  # the room, naming the asset's thing
    assert "已提交报修 R2" in wang.say("报修 SD-0302 不制冷").text  # the air conditioner
    assert ticket_count(services) == 2


def test_a_followers_words_and_photos_are_kept_and_the_worker_is_told(school, wechat_user, fake_wechat, deliver,
                                                                      services, clock, houqin,
                                                                      tmp_path: Path) -> None:
    zhang, wang, yin = wechat_user("张丽"), wechat_user("王强"), wechat_user("殷奇")
    zhang.say("报修 三(2)班 投影仪不亮")
    clock.advance(minutes=5)
    wang.dialog([("报修", "地点"), ("三年级2班", "描述"), ("投影仪没画面，只有蓝屏", "照片")])
    assert "照片已附在 R1 上" in wang.image(media_id="media_wang").text
    deliver()
    assert heard(fake_wechat, "殷奇", "【报修补充】R1", "王强", "投影仪没画面，只有蓝屏", "接单 R1")
    view = zhang.say("R1").text
    assert "补充：王强 11月23日 08:05「投影仪没画面，只有蓝屏」（照片 1 张）" in view
    assert ticket(services, 1).photos[0][:2] == ("report", "pending")

    yin.say("接单 R1")
    wechat_user("程财宝")
    deliver()
    clock.advance(minutes=5)
    zhang.say("报修 3-2 投影仪还是不亮，今天有公开课")  # the reporter again: kept too, told to 殷奇 alone
    deliver()
    assert heard(fake_wechat, "殷奇", "R1", "张丽", "投影仪还是不亮，今天有公开课")
    assert fake_wechat.sent_to("程财宝") == []
    assert "今天有公开课" in wang.say("R1").text

    out = tmp_path / "ledger.xlsx"
    assert houqin("export", "repairs", "--month", "2026-11", "--out", str(out)).exit_code == 0
    rows = [list(r) for r in read_ledger(out, "报修台账")]
    follow_ups = rows[1][rows[0].index("补充报告")]
    assert "王强 11月23日 08:05「投影仪没画面，只有蓝屏」（照片 1 张）" in follow_ups
    assert "张丽 11月23日 08:10「投影仪还是不亮，今天有公开课」" in follow_ups


# -- changing one's mind -----------------------------------------------------------------------------------
@pytest.mark.parametrize("words", ["算了", "不报了", "不用了", "取消"])
def test_giving_up_mid_dialog_ends_it_at_any_step(school, wechat_user, services, words) -> None:
    teacher = wechat_user("张丽")
    teacher.dialog([("报修", "地点"), (words, "已取消「报修」")])
    teacher.dialog([("报修", "地点"), ("三(2)班", "描述"), (words, "已取消「报修」")])
    # not taken as the description: a sentence with a fault, asked about afresh (where?)
    assert teacher.say("投影仪不亮").text.startswith("要报修吗？请告诉我地点")
    assert "已取消「报修」" in teacher.say(words).text
    assert ticket_count(services) == 0
    assert FALLBACK in teacher.say("不报了").text  # with no dialog it means nothing special


def test_global_words_mid_dialog_are_answered_not_taken_as_place_or_description(school, wechat_user,
                                                                              services) -> None:
    teacher = wechat_user("张丽")
    teacher.dialog([("报修", "地点"), ("帮助", HELP_REPAIR), ("三(2)班", "描述")])  # help keeps the dialog
    assert NO_OPEN in teacher.say("我的报修").text
    assert teacher.say("投影仪不亮").text.startswith("要报修吗？请告诉我地点")  # the dialog gave way: asked afresh
    teacher.dialog([("报修", "地点"), ("我的报修", NO_OPEN)])
    teacher.dialog([("报修 三(2)班", "描述"), ("菜单", "菜单")])
    assert ticket_count(services) == 0


def test_cancelling_at_the_photo_step_does_not_pretend_the_ticket_is_gone(school, wechat_user, services) -> None:
    teacher = wechat_user("张丽")
    teacher.dialog([("报修 三(2)班", "描述"), ("桌子晃", "照片")])
    reply = teacher.say("算了")
    assert "R1 已经提交" in reply.text and "撤销 R1" in reply.text and "已取消" not in reply.text
    assert ticket(services, 1).status == "open"


def test_the_reporter_withdraws_before_it_is_accepted(school, wechat_user, fake_wechat, deliver, services,
                                                      runner: Runner, queued, clock, houqin, tmp_path: Path) -> None:
    zhang, wang, cheng = wechat_user("张丽"), wechat_user("王强"), wechat_user("程财宝")
    zhang.say("报修 三(2)班 空调漏水")
    wang.say("报修 三(2)班 空调在漏水")  # a follower
    deliver()
    clock.advance(minutes=20)
    reply = zhang.say("撤销 R1 其实是窗户渗水，已经擦干了")
    assert "已撤销 R1" in reply.text and "（理由：其实是窗户渗水，已经擦干了）" in reply.text and "程财宝" in reply.text
    assert ticket(services, 1).status == "withdrawn"
    deliver()
    assert heard(fake_wechat, "程财宝", "【报修撤销】R1", "张丽已撤销", "其实是窗户渗水，已经擦干了")
    assert heard(fake_wechat, "王强", "【报修撤销】R1")
    assert not heard(fake_wechat, "张丽", "【报修撤销】")

    # it leaves the open lists and the jobs, and stays on the record as 已撤销 with its reason
    assert NO_OPEN in zhang.say("我的报修").text and NO_OPEN in wang.say("我的报修").text
    assert "R1" not in cheng.say("我的报修").text
    assert runner.run_now("escalate_unaccepted_repairs", at("2026-11-27 10:00")).result == "没有超时未接单的报修"
    assert runner.run_now("escalate_overdue_repairs", at("2026-11-27 10:00")).result == "没有逾期未完成的报修"
    assert queued("repair_escalation") == []
    view = zhang.say("R1").text
    assert "状态：已撤销" in view and "撤销：张丽 11月23日 08:20，理由：其实是窗户渗水，已经擦干了" in view
    assert "R1 已撤销，无需再操作" in cheng.say("接单 R1").text
    assert "R1 已撤销，不能重新打开" in zhang.say("未修好 R1").text
    assert "R1 已撤销，无需再操作" in zhang.say("撤销 R1").text
    assert ticket(services, 1).status == "withdrawn"

    out = tmp_path / "ledger.xlsx"
    assert houqin("export", "repairs", "--month", "2026-11", "--out", str(out)).exit_code == 0
    rows = [list(r) for r in read_ledger(out, "报修台账")]
    assert rows[1][rows[0].index("状态")] == "已撤销"
    assert rows[1][rows[0].index("撤销")] == "张丽 11月23日 08:20，理由：其实是窗户渗水，已经擦干了"


def test_only_the_reporter_before_acceptance_or_admin_may_withdraw(school, wechat_user, fake_wechat, deliver,
                                                                   services) -> None:
    zhang, wang, yin, admin = wechat_user("张丽"), wechat_user("王强"), wechat_user("殷奇"), wechat_user("周春明")
    zhang.say("报修 三(2)班 投影仪不亮")
    assert "R1 不是你提交的报修" in wang.say("撤销 R1").text
    assert "R1 不是你提交的报修" in yin.say("撤销 R1 不用修").text
    yin.say("接单 R1")
    assert "R1 已由殷奇接单，不能再撤销" in zhang.say("撤销 R1 好了").text
    assert ticket(services, 1).status == "accepted"
    assert "请按格式发送：撤销 R编号" in zhang.say("撤销").text
    assert "没有找到报修单 R9" in zhang.say("撤销 R9").text
    assert "请按格式发送：撤销 R编号" in zhang.say("撤销 三(2)班").text
    assert "抱歉，「撤销报修」仅限" in wechat_user("陈建国").say("撤销 R1").text
    assert ticket(services, 1).status == "accepted"

    assert "已撤销 R1" in admin.say("撤销 R1 重复报修").text  # admin, any time
    deliver()
    assert heard(fake_wechat, "殷奇", "【报修撤销】R1", "周春明已撤销", "重复报修")
    assert heard(fake_wechat, "张丽", "【报修撤销】R1")
    zhang.say("报修 三(2)班 投影仪不亮")  # R1 withdrawn: a new report is a new ticket
    assert ticket_count(services) == 2 and ticket(services, 2).status == "open"


# -- the user's own characters -----------------------------------------------------------------------------
@pytest.mark.parametrize("said", ["报修 三(2)班 投影仪不亮了，开机后一直黑屏",
                                  "报修　三（2）班　投影仪不亮了，开机后一直黑屏",
                                  "报修三（2）班投影仪不亮了，开机后一直黑屏"])
def test_the_description_is_kept_as_written(school, wechat_user, fake_wechat, deliver, services, said) -> None:
    wechat_user("殷奇")
    reply = wechat_user("张丽").say(said)
    assert "已提交报修 R1：三(2)班 · 电教 · 投影仪不亮了，开机后一直黑屏" in reply.text
    assert ticket(services, 1).description == "投影仪不亮了，开机后一直黑屏"
    deliver()
    assert heard(fake_wechat, "殷奇", "投影仪不亮了，开机后一直黑屏")


def test_voice_keeps_its_punctuation_less_what_recognition_appends(school, wechat_user, services) -> None:
    reply = wechat_user("张丽").voice("报修三年级二班投影仪不亮了，一直黑屏。")
    assert "已提交报修 R1：三(2)班 · 电教 · 投影仪不亮了，一直黑屏。" in reply.text
    assert ticket(services, 1).description == "投影仪不亮了，一直黑屏"


def test_place_and_notes_are_kept_as_written_too(school, wechat_user, services) -> None:
    zhang, cheng = wechat_user("张丽"), wechat_user("程财宝")
    zhang.dialog([("报修", "地点"), ("操场东北角（靠近旗杆）", "描述"), ("地砖松动！", "R1")])
    assert (ticket(services, 1).place, ticket(services, 1).description) == ("操场东北角（靠近旗杆）", "地砖松动！")
    cheng.say("完成 R1 已更换地砖，注意养护（24小时）")
    assert ticket(services, 1).note == "已更换地砖，注意养护（24小时）"
    wechat_user("王强").say("巡查 二楼东楼梯 扶手松动，有尖角！")
    assert ticket(services, 2).description == "扶手松动，有尖角！"


# -- the lifecycle ----------------------------------------------------------------------------------
def test_whole_lifecycle_accept_finish_rate_reopen(school, wechat_user, fake_wechat, deliver, services,
                                                   clock) -> None:
    zhang, yin = wechat_user("张丽"), wechat_user("殷奇")
    zhang.say("报修 三(2)班 投影仪不亮")
    clock.advance(minutes=30)
    reply = yin.say("接单 R1")
    assert "已接单 R1" in reply.text and "张丽 13800000011" in reply.text
    assert ticket(services, 1).status == "accepted" and ticket(services, 1).assignee == "殷奇"
    deliver()
    assert heard(fake_wechat, "张丽", "R1", "殷奇已接单")

    clock.advance(hours=2)
    assert "已完成 R1" in yin.say("完成 R1 更换了灯泡").text
    deliver()
    assert heard(fake_wechat, "张丽", "R1", "已修好", "更换了灯泡", "1-5", "未修好 R1")
    t = ticket(services, 1)
    assert (t.status, t.note) == ("done", "更换了灯泡")

    assert "谢谢评价！R1 评分 5 分" in zhang.say("5").text
    deliver()
    assert heard(fake_wechat, "殷奇", "R1", "5 分")
    assert (ticket(services, 1).status, ticket(services, 1).rating) == ("closed", 5)
    assert NOT_UNDERSTOOD.split("「")[0] in zhang.say("4").text  # nothing left to rate

    reply = zhang.say("未修好 R1 又不亮了")
    assert "已重新打开 R1" in reply.text and "殷奇" in reply.text
    t = ticket(services, 1)
    assert (t.status, t.rating, t.reopen_count) == ("accepted", None, 1)
    deliver()
    assert heard(fake_wechat, "殷奇", "R1", "仍未修好", "又不亮了")

    yin.say("完成 R1 换了投影仪")
    assert "R1 评分 3 分" in zhang.say("三").text
    view = zhang.say("R1").text
    assert "报修单 R1" in view and "评价：3 分" in view and "返修：1 次" in view and "换了投影仪" in view


def test_transfer_moves_the_ticket_and_tells_everyone(school, wechat_user, fake_wechat, deliver, services) -> None:
    zhang, cheng = wechat_user("张丽"), wechat_user("程财宝")
    yin = wechat_user("殷奇")
    zhang.say("报修 三(2)班 白板松了")  # 白板 → 电教, but it is a mounting job
    yin.say("接单 R1")
    assert "已将 R1 转派给程财宝" in yin.say("转派 R1 程财宝").text
    t = ticket(services, 1)
    assert (t.status, t.assignee) == ("open", "程财宝")
    deliver()
    assert heard(fake_wechat, "程财宝", "R1", "殷奇转派给你", "接单 R1")
    assert heard(fake_wechat, "张丽", "R1", "已转交程财宝")
    assert "已接单 R1" in cheng.say("接单 r1").text
    assert "R1 由程财宝负责" in yin.say("完成 R1").text  # no longer his
    assert "已完成 R1" in cheng.say("完成R1").text


def test_admin_may_finish_anyones_ticket(school, wechat_user, services) -> None:
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")
    wechat_user("殷奇").say("接单 R1")
    assert "已完成 R1" in wechat_user("周春明").say("完成 R1 已联系厂家维修").text
    assert ticket(services, 1).assignee == "殷奇"


def test_ticket_view_for_reporter_staff_and_admin_only(school, wechat_user) -> None:
    zhang = wechat_user("张丽")
    zhang.say("报修 三(2)班 投影仪不亮")
    for name in ("张丽", "殷奇", "程财宝", "周春明"):
        view = (zhang if name == "张丽" else wechat_user(name)).say("R1").text
        assert "报修单 R1" in view and "投影仪不亮" in view and "待接单" in view, name
        assert "地点：三(2)班（教学楼 3楼，房间负责人：张丽）" in view
    assert "R1 不是你提交或关注的报修" in wechat_user("王强").say("R1").text
    assert "没有找到报修单 R7" in zhang.say("R7").text
    assert NOT_UNDERSTOOD.split("「")[0] in wechat_user("陈建国").say("R1").text  # parents have no repairs


def test_my_repairs_lists_open_tickets_and_the_staff_queue(school, wechat_user, services) -> None:
    zhang = wechat_user("张丽")
    assert "没有未完成的报修" in zhang.say("我的报修").text
    zhang.say("报修 三(2)班 投影仪不亮")
    zhang.say("报修 科学室 水龙头漏水")
    zhang.say("报修 四(1)班 椅子坏了")
    cheng = wechat_user("程财宝")
    cheng.say("完成 R3")
    zhang.say("5")  # R3 closed: no longer listed
    mine = zhang.click("MY_REPAIRS").text
    assert "R1" in mine and "R2" in mine and "R3" not in mine and "待接单" in mine
    queue = cheng.say("我的报修").text
    assert "待你处理" in queue and "R2" in queue and "R1" not in queue


def test_staff_asking_for_their_work_orders_get_the_work_waiting_for_them_first(school, wechat_user) -> None:
    """维修工 say 我的工单 / 工单 / 工单列表 for the tickets assigned to them (or theirs by category): the
    work first, then what they reported themselves; a teacher who says 我的工单 gets her own reports."""
    zhang = wechat_user("张丽")
    zhang.say("报修 三(2)班 投影仪不亮")  # R1: 电教, 殷奇's
    zhang.say("报修 四(1)班 椅子坏了")  # R2: 桌椅, 程财宝's
    zhang.say("报修 四(1)班 窗户关不上")  # R3: 门窗, 程财宝's
    cheng = wechat_user("程财宝")
    assert "已接单" in cheng.say("接单 R3").text
    assert "R4" in cheng.say("报修 科学室 黑板掉了").text  # his own report (其他: his too)
    for typed in ("我的工单", "工单", "工单列表"):
        work = cheng.say(typed).text
        assert work.startswith("待你处理："), (typed, work)
        assert "R2" in work and "R3" in work and "R1" not in work, (typed, work)
        assert work.index("待你处理") < work.index("你的报修：") and "R4" in work.split("你的报修：")[1]
    assert "报修单 R2" in cheng.say("工单 R2").text and "报修单 R3" in cheng.say("工单R3").text
    assert "完成 R3" in cheng.say("工单R3修好了").text  # asked back, as for R3 修好了
    assert cheng.say("我的报修").text.startswith("你的报修：")  # 我的报修 keeps its order
    assert "R1" in wechat_user("殷奇").say("我的工单").text
    mine = zhang.say("我的工单").text
    assert mine.startswith("你的报修：") and all(f"R{n}" in mine for n in (1, 2, 3)) and "待你处理" not in mine
    assert NO_OPEN in wechat_user("王强").say("我的工单").text
    assert wechat_user("周春明").say("工单").text == NO_WORK  # admin: nothing waiting (not late), none reported


def test_patrol_records_a_hazard_in_category_safety(school, wechat_user, fake_wechat, deliver, services) -> None:
    wechat_user("程财宝")
    reply = wechat_user("王强").say("巡查 二楼东楼梯 扶手松动")
    assert "已登记安全隐患 R1：二楼东楼梯 · 扶手松动" in reply.text
    t = ticket(services, 1)
    assert (t.category, t.hazard, t.place) == ("安全", True, "二楼东楼梯")
    deliver()
    assert heard(fake_wechat, "程财宝", "安全隐患", "R1", "扶手松动")
    assert "巡查 地点 问题" in wechat_user("张丽").say("巡查 楼梯").text
    assert ticket_count(services) == 1


# -- wrong roles and bad input change nothing ---------------------------------------------------------
def test_workers_commands_refuse_teachers_parents_and_strangers(school, wechat_user, services) -> None:
    zhang = wechat_user("张丽")
    zhang.say("报修 三(2)班 投影仪不亮")
    parent, stranger = wechat_user("陈建国"), wechat_user("路人", bind=False)
    before = ticket(services, 1)
    for text in ("接单 R1", "完成 R1", "转派 R1 殷奇"):
        assert "仅限管理员、后勤使用" in zhang.say(text).text, text
        assert "仅限管理员、后勤使用" in parent.say(text).text, text
        assert "需要先绑定身份" in stranger.say(text).text, text
    for text in ("报修 三(2)班 灯不亮", "巡查 楼梯 扶手松动", "我的报修", "未修好 R1"):
        assert "仅限管理员、后勤、教师使用" in parent.say(text).text, text
    assert ticket(services, 1) == before and ticket_count(services) == 1


def test_bad_input_gets_a_clear_answer_and_changes_nothing(school, wechat_user, services) -> None:
    zhang, wang, yin = wechat_user("张丽"), wechat_user("王强"), wechat_user("殷奇")
    zhang.say("报修 三(2)班 投影仪不亮")
    before = ticket(services, 1)
    answers = [
        (yin, "接单", "请按格式发送：接单 R编号"),
        (yin, "接单 abc", "请按格式发送：接单 R编号"),
        (yin, "接单 R99", "没有找到报修单 R99"),
        (yin, "完成", "请按格式发送：完成 R编号"),
        (yin, "完成 R42", "没有找到报修单 R42"),
        (yin, "转派 R1", "请按格式发送：转派 R编号 姓名"),
        (yin, "转派 R1 张三", "没有找到名为「张三」的后勤或管理员，无法转派 R1"),
        (yin, "转派 R1 张丽", "没有找到名为「张丽」的后勤或管理员"),  # a teacher cannot take repairs
        (zhang, "未修好", "请按格式发送：未修好 R编号"),
        (zhang, "未修好 R1", "R1 还在处理中（待接单）"),
        (wang, "未修好 R1", "R1 不是你提交或关注的报修"),
        (zhang, "未修好 R5", "没有找到报修单 R5"),
    ]
    for user, said, expected in answers:
        assert expected in user.say(said).text, said
    assert ticket(services, 1) == before
    yin.say("接单 R1")
    assert "R1 已由殷奇接单" in wechat_user("程财宝").say("接单 R1").text
    assert "你已接单 R1" in yin.say("接单 R1").text
    yin.say("完成 R1")
    assert "R1 已完成待评价，无需再操作" in yin.say("完成 R1").text
    assert "R1 已完成待评价，无需再操作" in yin.say("转派 R1 程财宝").text
    assert ticket(services, 1).status == "done"


@pytest.mark.parametrize(("typed", "asked"), [("接R1", "接单 R1"), ("R1 我来处理", "接单 R1"), ("收到 R1 马上过去", "接单 R1"),
                                              ("R1 修好了", "完成 R1"), ("R1已修好，换了个镇流器", "完成 R1")])
def test_staff_writing_about_a_ticket_in_their_own_words_are_asked_which_command(school, wechat_user, services,
                                                                                 typed, asked) -> None:
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")
    assert wechat_user("殷奇").say(typed).text.startswith(f"你是想「{asked}」吗？发送「{asked[:2]}")
    assert ticket(services, 1).status == "open"  # nothing done on a guess
    assert "没有听懂" in wechat_user("张丽").say("R1 修好了").text  # a teacher's is no work


def test_rating_is_the_reporters_alone(school, wechat_user, services) -> None:
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")
    wechat_user("殷奇").say("完成 R1")
    reply = wechat_user("王强").say("5")
    assert NOT_UNDERSTOOD.split("「")[0] in reply.text
    assert ticket(services, 1).rating is None


# -- photos -----------------------------------------------------------------------------------------
def test_photos_are_attached_downloaded_and_shown(school, wechat_user, services, clock, fetch_media,
                                                  settings) -> None:
    zhang = wechat_user("张丽")
    zhang.dialog([("报修", "地点"), ("三(2)班", "描述"), ("窗户玻璃裂了", "照片")])
    assert "照片已附在 R1 上（第1张）" in zhang.image(media_id="media_first").text
    clock.advance(minutes=5)
    assert "照片已附在 R1 上（第2张）" in zhang.image(media_id="media_second").text  # within 10 minutes
    clock.advance(minutes=6)
    assert zhang.image(media_id="media_late").text == IMAGE_UNUSED.format(hint=PHOTO_FIRST)  # 11 minutes after filing
    assert [p[:2] for p in ticket(services, 1).photos] == [("report", "pending"), ("report", "pending")]

    assert fetch_media() == 2
    photos = ticket(services, 1).photos
    assert [p[1] for p in photos] == ["saved", "saved"]
    for (_, _, path), media in zip(photos, ("media_first", "media_second"), strict=True):
        stored = settings.storage_dir / path
        assert stored.is_file() and stored.read_bytes() == fake_jpeg(media)
        assert path.startswith("repairs/R1/") and path.endswith(".jpg")
    assert "照片：报修 2 张，完成 0 张（已保存 2 张）" in zhang.say("R1").text


def test_a_completion_photo_from_the_one_who_finished(school, wechat_user, services, clock, fetch_media) -> None:
    wechat_user("张丽").say("报修 三(2)班 门锁坏了")
    cheng = wechat_user("程财宝")
    clock.advance(hours=3)
    cheng.say("完成 R1 换了新锁")
    assert "完成照片已附在 R1 上" in cheng.image(media_id="media_done").text
    fetch_media()
    assert ticket(services, 1).photos[0][:2] == ("completion", "saved")


def test_skip_ends_the_photo_step(school, wechat_user, services) -> None:
    zhang = wechat_user("张丽")
    zhang.dialog([("报修 三(2)班", "描述"), ("桌子晃", "跳过"), ("跳过", "R1 已提交")])
    assert ticket(services, 1).photos == []


# -- escalation, digest ----------------------------------------------------------------------------------
def test_unaccepted_for_two_working_hours_goes_to_admin_once(school, wechat_user, runner: Runner, queued,
                                                              clock) -> None:
    clock.set("2026-11-23 16:00")  # one working hour left on Monday
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")
    assert runner.run_now("escalate_unaccepted_repairs", at("2026-11-23 17:00")).result == "没有超时未接单的报修"
    assert runner.run_now("escalate_unaccepted_repairs", at("2026-11-24 08:20")).result == "没有超时未接单的报修"
    run = runner.run_now("escalate_unaccepted_repairs", at("2026-11-24 08:30"))
    assert run.result == "1 张报修已报管理员：R1"
    (row,) = queued("repair_escalation")
    assert row.name == "周春明" and "R1" in row.text and "2个工作小时" in row.text and "殷奇" in row.text
    runner.run_now("escalate_unaccepted_repairs", at("2026-11-24 09:30"))
    assert len(queued("repair_escalation")) == 1


def test_a_weekend_does_not_count_and_accepted_tickets_are_left_alone(school, wechat_user, runner: Runner,
                                                                      queued, clock) -> None:
    clock.set("2026-11-27 16:30")  # Friday
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")
    wechat_user("王强").say("报修 四(1)班 投影仪不亮")
    wechat_user("殷奇").say("接单 R2")
    assert runner.run_now("escalate_unaccepted_repairs", at("2026-11-28 12:00")).result == NOT_SCHOOL_DAY
    assert runner.run_now("escalate_unaccepted_repairs", at("2026-11-30 08:50")).result == "没有超时未接单的报修"
    assert runner.run_now("escalate_unaccepted_repairs", at("2026-11-30 09:00")).result == "1 张报修已报管理员：R1"


def test_not_done_in_three_days_or_four_hours_if_urgent(school, wechat_user, runner: Runner, queued,
                                                        clock) -> None:
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")  # Monday 08:00
    wechat_user("殷奇").say("接单 R1")
    clock.set("2026-11-23 09:00")
    wechat_user("王强").say("报修 四(1)班 水管漏水了")  # urgent
    assert runner.run_now("escalate_overdue_repairs", at("2026-11-23 12:59")).result == "没有逾期未完成的报修"
    assert runner.run_now("escalate_overdue_repairs", at("2026-11-23 13:00")).result == "1 张报修已报管理员：R2"
    (row,) = queued("repair_escalation")
    assert "R2" in row.text and "4小时" in row.text and row.safety
    assert runner.run_now("escalate_overdue_repairs", at("2026-11-26 07:59")).result == "没有逾期未完成的报修"
    assert runner.run_now("escalate_overdue_repairs", at("2026-11-26 08:00")).result == "1 张报修已报管理员：R1"
    assert "R1" in queued("repair_escalation")[-1].text and "殷奇" in queued("repair_escalation")[-1].text
    runner.run_now("escalate_overdue_repairs", at("2026-11-27 08:00"))
    assert len(queued("repair_escalation")) == 2


def test_done_tickets_are_not_escalated(school, wechat_user, runner: Runner, queued) -> None:
    wechat_user("张丽").say("报修 三(2)班 投影仪不亮")
    wechat_user("殷奇").say("完成 R1")
    runner.run_now("escalate_unaccepted_repairs", at("2026-11-24 16:00"))
    runner.run_now("escalate_overdue_repairs", at("2026-11-30 16:00"))
    assert queued("repair_escalation") == []


def test_digest_section_shows_late_tickets_and_repeat_failures(school, wechat_user, runner: Runner, queued,
                                                              services, clock) -> None:
    zhang, yin = wechat_user("张丽"), wechat_user("殷奇")
    clock.set("2026-09-01 09:00")
    zhang.say("报修 DJ-0302 投影仪不亮")
    yin.say("完成 R1")
    clock.set("2026-10-20 09:00")
    zhang.say("报修 DJ-0302 投影仪又不亮")
    yin.say("完成 R2")
    clock.set("2026-11-18 09:00")
    zhang.say("报修 DJ-0302 投影仪闪烁")
    clock.set("2026-11-24 10:00")
    wechat_user("王强").say("报修 四(1)班 窗户关不上")
    runner.run_now("send_daily_digest", at("2026-11-24 17:00"))
    (row,) = queued("daily_digest")
    assert "■ 报修" in row.text
    assert "今日报修 1 张" in row.text and "未完成共 2 张" in row.text
    assert "逾期：R3 三(2)班 投影仪 · 投影仪闪烁" in row.text
    assert "重复故障：三(2)班 投影仪（DJ-0302） 90天内报修 3 次" in row.text
    assert ticket(services, 3).asset == "DJ-0302"


def test_withdrawn_reports_are_not_repeat_failures(school, wechat_user, runner: Runner, queued, clock) -> None:
    zhang = wechat_user("张丽")
    for n, day in enumerate(("2026-11-02", "2026-11-09", "2026-11-16"), start=1):
        clock.set(f"{day} 09:00")
        zhang.say("报修 DJ-0302 投影仪不亮")
        assert f"已撤销 R{n}" in zhang.say(f"撤销 R{n} 是遥控器没电了").text
    runner.run_now("send_daily_digest", at("2026-11-24 17:00"))
    (row,) = queued("daily_digest")
    assert "重复故障" not in row.text


def test_digest_has_no_repairs_section_when_there_are_none(school, runner: Runner, queued) -> None:
    runner.run_now("send_daily_digest", at("2026-11-24 17:00"))
    assert "■ 报修" not in queued("daily_digest")[0].text


# -- imports ------------------------------------------------------------------------------------------
def test_room_and_asset_imports_check_every_row(school, services, tmp_path: Path) -> None:
    from bot.tables import TableError

    bad_rooms = tmp_path / "bad_rooms.csv"
    bad_rooms.write_text("楼栋,房间,别名,负责人\n教学楼,五(1)班,,无名氏\n教学楼,,,\n教学楼,5-1,,\n", encoding="utf-8")
    bad_assets = tmp_path / "bad_assets.csv"
    bad_assets.write_text("编号,名称,类别,房间\nX-1,音箱,音响,三(2)班\nX-2,柜子,,九(9)班\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        with pytest.raises(TableError) as rooms_error:
            import_rooms(s, bad_rooms)
        with pytest.raises(TableError) as assets_error:
            import_assets(s, bad_assets, now=services.now())
        assert import_rooms(s, tmp_path / "rooms.csv") == 3  # re-import updates in place
    assert [p[:3] for p in rooms_error.value.problems] == ["第2行", "第3行", "第4行"]
    assert "无名氏" in rooms_error.value.problems[0] and "重复" in rooms_error.value.problems[2]
    assert "音响" in assets_error.value.problems[0] and "九(9)班" in assets_error.value.problems[1]
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(Room)) == 3
        assert s.scalar(select(Room.aliases).where(Room.name == "科学室")) == "科学教室;实验室"
        assert s.scalar(select(func.count()).select_from(TicketFollower)) == 0
        assert s.scalar(select(func.count()).select_from(TicketPhoto)) == 0


def test_transfer_asks_which_worker_when_two_share_the_name(school, wechat_user, services) -> None:
    school.add("程财宝", "staff", phone="13900000042", class_name="")
    zhang, yin = wechat_user("张丽"), wechat_user("殷奇")
    zhang.say("报修 三(2)班 白板松了")

    asked = yin.say("转派 R1 程财宝").text

    assert asked == ("有两位「程财宝」：程财宝（138****0002）、程财宝（139****0042）——"
                     "请在姓名后加手机号后四位，例如 程财宝 0002")
    assert ticket(services, 1).assignee is None
    assert "已将 R1 转派给程财宝" in yin.say("转派 R1 程财宝 0042").text
    with services.factory() as s:
        moved = s.scalar(select(RepairTicket).where(RepairTicket.number == 1))
        assert moved is not None and moved.assignee is not None and moved.assignee.phone == "13900000042"


# -- said the way people write (issue 14) -----------------------------------------------------------
def test_a_sentence_naming_a_place_and_a_fault_is_asked_then_filed(school, wechat_user, services) -> None:
    zhang = wechat_user("张丽")
    assert zhang.say("三年级二班的投影仪坏了").text == "要报修吗？三(2)班 · 投影仪坏了（回复「是」提交）"
    assert ticket_count(services) == 0
    assert "已提交报修 R1：三(2)班 · 电教 · 投影仪坏了" in zhang.say("是").text
    t = ticket(services, 1)
    assert (t.place, t.room, t.description, t.reporter) == ("三(2)班", "三(2)班", "投影仪坏了", "张丽")


def test_a_sentence_taken_for_a_repair_and_declined_files_nothing(school, wechat_user, services) -> None:
    zhang = wechat_user("张丽")
    assert zhang.say("老师，科学室水龙头关不上了").text == "要报修吗？科学室 · 水龙头关不上了（回复「是」提交）"
    assert zhang.say("不用").text == "好的，没有提交报修。"
    assert zhang.say("是").text != "" and ticket_count(services) == 0
    # no place: the bot asks for one, keeping the fault
    assert "请告诉我地点" in zhang.say("投影仪坏了").text
    assert "已提交报修 R1：三(2)班 · 电教 · 投影仪坏了" in zhang.say("三年级二班").text
    # a parent's sentence is not a repair (parents cannot 报修)
    assert ticket_count(services) == 1
    assert "要报修吗" not in wechat_user("陈建国").say("三年级二班的投影仪坏了").text


@pytest.mark.parametrize("typed", ["保修 三(2)班 窗户关不上", "报秀 三(2)班 窗户关不上", "保修三(2)班窗户关不上"])
def test_a_command_word_that_sounds_the_same_is_taken_for_it(school, wechat_user, services, typed) -> None:
    assert "已提交报修 R1：三(2)班 · 门窗 · 窗户关不上" in wechat_user("张丽").say(typed).text
    assert ticket(services, 1).description == "窗户关不上"


@pytest.mark.parametrize("typed", ["怎么报修", "请问怎么报修？", "报表", "报修怎么弄", "报修如何操作？"])
def test_asking_about_a_command_or_one_character_off_is_asked_back(school, wechat_user, services, typed) -> None:
    reply = wechat_user("张丽").say(typed).text
    assert reply.startswith("你是想「报修」吗？发送「报修 [地点 描述]」") and ticket_count(services) == 0


@pytest.mark.parametrize("typed", ["报修：三年级二班的空调漏水", "报修 三年级二班的空调漏水", "报修，三年级二班的空调漏水",
                                   "报修:三年级二班空调漏水", "报修 三(2)班 的空调漏水", "报修一下 三(2)班 空调漏水",
                                   "报修一下：三年级二班的空调漏水", "报修？三(2)班 空调漏水"])
def test_punctuation_and_particles_are_not_part_of_the_place_or_description(school, wechat_user, services,
                                                                             typed) -> None:
    assert "报修 R1：三(2)班 · 水电 · 空调漏水" in wechat_user("张丽").say(typed).text  # 漏水 is urgent
    t = ticket(services, 1)
    assert (t.place, t.room, t.description) == ("三(2)班", "三(2)班", "空调漏水")


def test_skip_after_a_one_shot_report_is_understood(school, wechat_user) -> None:
    zhang = wechat_user("张丽")
    assert "如有照片" in zhang.say("报修 三(2)班 投影仪不亮").text
    assert zhang.say("跳过").text == "好的，R1 已提交，处理进展会通知你。"


def test_a_rating_out_of_range_and_thanks_after_a_finished_repair(school, wechat_user, services) -> None:
    zhang, yin = wechat_user("张丽"), wechat_user("殷奇")
    zhang.say("报修 三(2)班 投影仪不亮")
    yin.say("完成 R1 换了灯泡")
    assert zhang.say("6").text == "请回复 1-5 为 R1 的维修打分（5 分最满意）。"
    thanks = zhang.say("很好，谢谢师傅").text
    assert thanks.startswith("不客气") and "R1" in thanks and "1-5" in thanks
    assert ticket(services, 1).rating is None
    assert "R1 评分 5 分" in zhang.say("5").text


@pytest.mark.parametrize(("typed", "score"), [("5。", 5), ("5！", 5), ("５", 5), ("4分~", 4), ("四星!", 4),
                                            ("5星好评", 5), ("满分！", 5)])
def test_a_rating_typed_with_punctuation_or_full_width_rates_the_finished_repair(
        school, wechat_user, services, typed, score) -> None:
    wang = wechat_user("王强")
    wang.say("报修 四(1)班 灯不亮")
    wechat_user("程财宝").say("完成 R1")
    assert wang.say("6！").text == "请回复 1-5 为 R1 的维修打分（5 分最满意）。"
    assert f"谢谢评价！R1 评分 {score} 分" in wang.say(typed).text
    assert ticket(services, 1).rating == score


def test_my_repairs_for_admin_lists_the_work_waiting_and_what_is_late(school, wechat_user, services, clock) -> None:
    zhang, admin = wechat_user("张丽"), wechat_user("周春明")
    for typed in ("报修 四(1)班 窗户关不上", "报修 科学室 灯不亮", "报修 三(2)班 椅子坏了", "报修 四(1)班 黑板掉了"):
        zhang.say(typed)
    wechat_user("程财宝").say("接单 R2")
    with services.factory() as s, s.begin():  # as the escalation jobs leave them: reported to admin
        for t in s.scalars(select(RepairTicket)):
            t.unaccepted_escalated_at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    listing = admin.say("我的报修").text
    assert "你目前没有未完成的报修" not in listing and "已逾期" in listing
    assert all(f"R{n}" in listing for n in range(1, 5))
    cheng = wechat_user("程财宝").say("我的报修").text
    assert "已逾期" in cheng and "R2" in cheng  # staff: their own late work
    assert "你的报修" in zhang.say("我的报修").text  # the reporter: their own tickets


def test_admin_sees_tickets_past_their_time_before_any_escalation_job_ran(school, wechat_user, clock) -> None:
    clock.set("2026-11-19 09:00")
    wechat_user("张丽").say("报修 四(1)班 窗户关不上")
    clock.set("2026-11-20 09:00")
    admin = wechat_user("周春明")
    assert "你目前没有未完成的报修" in admin.say("我的报修").text  # a day old: not late yet, not the admin's
    clock.set("2026-11-24 10:00")  # five days: past repair_done_days (3), whatever the jobs did
    listing = admin.say("我的报修").text
    assert "已逾期：" in listing and "R1" in listing


def test_a_photo_from_someone_who_cannot_report_is_not_told_to_report(school, wechat_user) -> None:
    reply = wechat_user("陈建国").image(media_id="media_parent").text
    assert "报修" not in reply and "食堂" in reply


def test_a_place_given_to_a_sentence_is_confirmed_unless_registered(school, wechat_user, services) -> None:
    zhang = wechat_user("张丽")
    zhang.say("电脑坏了")
    assert zhang.say("算了吧").text == "要报修吗？算了吧 · 电脑坏了（回复「是」提交）"  # not filed on a guess
    assert zhang.say("不是").text == "好的，没有提交报修。"
    zhang.say("电脑坏了")
    assert zhang.say("不用").text == "好的，没有提交报修。"
    assert ticket_count(services) == 0
