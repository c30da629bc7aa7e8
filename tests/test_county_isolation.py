"""Issue 15's isolation, all of it: every capability and every console page with several schools, each
seeing only its own; every reminding, digesting or escalating job run per school in its own timezone and
calendar; the bureau's links to each school's read-only pages; the shared account's choice kept in the log;
a school's own account's template reports going to its own webhook."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from bot.services import Services
from bot.wechat.fake import Webhook
from models import Delivery, InboundMessage, Push, RepairTicket
from tests import test_schools
from tests.test_schools import School

county = test_schools.county  # the fixtures of tests/test_schools.py: the county and its three schools
schools = test_schools.schools

REPAIR_TPL = '{"character_string1": "{code}", "thing2": "{place}", "thing3": "{description}", "time4": "{time}"}'


def _inbound(services: Services) -> list[tuple[str, str]]:
    with services.factory() as db:
        return [(m.content, m.reply or "") for m in db.scalars(select(InboundMessage).order_by(InboundMessage.id))]


# -- the shared account: nothing a follower sends is lost ----------------------------------------------------
def test_the_school_choice_and_every_waiting_message_are_kept(schools: dict[str, School], app: Flask,
                                                              clock: Any) -> None:
    client = app.test_client()
    default, south = schools["default"], schools["south"]
    default.people.add("陈老师", "teacher")
    south.people.add("陈老师", "teacher")
    south.people.add("南校长", "admin")
    openid = "o_chen_in_two"
    chen = default.user(client, "陈老师", openid=openid)
    south.user(client, "陈老师", openid=openid, bind=False).say(f"绑定 {south.people.code_of('陈老师')}")
    assert "哪所学校" in chen.say("报修 三(2)班 南城灯不亮").text
    assert "哪所学校" in chen.say("食堂 4 南城的汤很好").text  # a second message while asked waits too
    picked = chen.say("2").text
    assert "南城小学" in picked and "R1" in picked and "F1" in picked
    kept = _inbound(south.services)
    assert ("2", picked.split("\n\n")[0]) in kept  # the choice itself, with the answer it got
    assert any("南城灯不亮" in c for c, _ in kept) and any("南城的汤很好" in c for c, _ in kept)
    assert not any(c == "2" for c, _ in _inbound(default.services))
    with south.services.factory() as db:
        assert db.scalar(select(RepairTicket.description)) == "南城灯不亮"
    # 切换学校 is kept in the log of the school the conversation was with
    assert "哪所学校" in chen.say("切换学校").text
    assert any(c == "切换学校" for c, _ in _inbound(south.services))
    assert "本校" in chen.say("1").text
    assert any(c == "1" for c, _ in _inbound(default.services))


# -- the fake WeChat: a school's own account reports to its own webhook -----------------------------------------
def test_a_template_report_for_a_school_of_its_own_account_goes_to_its_webhook(
        schools: dict[str, School], app: Flask, houqin: Any, fake_wechat: Any, clock: Any, transport: Any,
        settings: Any) -> None:
    client = app.test_client()
    north = schools["north"]
    assert houqin("templates", "set", "repair_new=TPL_REPAIR", "--school", "north", "--data", REPAIR_TPL).exit_code == 0
    from bot.county import County, apply_school_templates, own_account_webhooks

    apply_school_templates(north.services)  # the template ids just set, as a process started now has them
    fake_wechat.fake.webhook = Webhook(settings.wechat_token, settings.wechat_appid, transport, settings.wechat_aes_key)
    (hook,) = own_account_webhooks(County.of(north.services), transport)
    assert (hook.appid, hook.path) == ("wxnorth", "/wechat/north")
    fake_wechat.fake.add_webhook(hook)
    north.people.add("北校长", "admin")
    north.people.add("北老师", "teacher")
    north.user(client, "北校长")
    assert "R1" in north.user(client, "北老师").say("报修 三(2)班 北城窗户漏风").text
    north.deliver()
    with north.services.factory() as db:
        sent = db.scalars(select(Delivery).join(Push).where(Push.kind == "repair_new")).one()
    assert sent.msgid and sent.confirmed_at is None
    assert fake_wechat.finish_template_job(sent.msgid, "success") == 200
    with north.services.factory() as db:
        assert db.get(Delivery, sent.id).confirmed_at is not None  # type: ignore[union-attr]
        assert any(m.event == "templatesendjobfinish" for m in db.scalars(select(InboundMessage)))
    with schools["default"].services.factory() as db:  # not posted to the default account's /wechat
        assert not any(m.event == "templatesendjobfinish" for m in db.scalars(select(InboundMessage)))


# -- the bureau: each figure of the overview links to that school's read-only records ------------------------
def test_each_county_figure_opens_that_schools_read_only_records_for_the_bureau_only(
        schools: dict[str, School], app: Flask, houqin: Any) -> None:
    import re

    from bot.county import County
    from tests.test_county_report import arrange
    from tests.test_schools import PASSWORD, _sign_in

    arrange(County.of(schools["default"].services))  # home: an overdue repair; north: an alarm, 异物, a failed push
    default, north = schools["default"], schools["north"]
    default.people.add("王局长", "bureau")
    default.people.add("周春明", "admin")
    north.people.add("北校长", "admin")
    for slug, name in (("default", "王局长"), ("default", "周春明"), ("north", "北校长")):
        assert houqin("console-password", name, "--password", PASSWORD, "--school", slug).exit_code == 0
    bureau = app.test_client()
    _sign_in(bureau, "default", "王局长")
    overview = bureau.get("/admin/county").get_data(as_text=True)
    links = {href.replace("&amp;", "&") for href in re.findall(r'href="(/admin/county/[a-z]+/[a-z]+\?[^"]*)"', overview)}
    def find(slug: str, page: str) -> str | None:
        path, _, state = page.partition("?")
        return next((x for x in links if x.startswith(f"/admin/county/{slug}/{path}?") and state in x), None)

    for slug in ("default", "north", "south"):
        for page in ("repairs?state=open", "repairs?state=overdue", "safety", "bus", "canteen", "outbox"):
            assert find(slug, page) is not None, (slug, page, links)

    def read(slug: str, page: str) -> str:
        link = find(slug, page)
        assert link is not None
        res = bureau.get(link)
        assert res.status_code == 200, link
        body = res.get_data(as_text=True)
        main = body[body.index("<main>"):]
        assert "<form" not in main and "<button" not in main and "<input" not in main  # read-only
        return main

    overdue = read("default", "repairs?state=overdue")
    assert "R1" in overdue and "投影仪不亮" in overdue and "本校" in overdue
    assert "投影仪不亮" not in read("north", "repairs?state=open")
    north_bus = read("north", "bus")
    assert "北城小学" in north_bus and "未确认" in north_bus and "2（" in north_bus
    assert "未确认" not in read("default", "bus")  # the home school's alarm was acknowledged after 6 minutes
    assert "6.0" in read("default", "bus")
    assert "菜里有异物" in read("north", "canteen") and "异物" not in read("default", "canteen")
    assert "4.50" in read("default", "canteen")
    assert "notice" in read("north", "outbox") and "notice" not in read("default", "outbox")
    assert "消防疏散" in read("default", "safety") and "未完成" in read("north", "safety")
    # read-only: a POST is refused, and changes nothing; an unknown school or page is not found
    csrf = re.search(r'name="csrf" value="([^"]+)"', overview)
    assert csrf is not None
    assert bureau.post("/admin/county/north/repairs", data={"csrf": csrf[1]}).status_code == 403
    assert bureau.get("/admin/county/nowhere/repairs").status_code == 404
    assert bureau.get("/admin/county/north/people").status_code == 404
    assert bureau.get("/admin/county/north/repairs?state=all").status_code == 400
    # a school's admin opens no other school's records: the home school's admin sees the figures, unlinked
    home_admin = app.test_client()
    _sign_in(home_admin, "default", "周春明")
    assert "/admin/county/north/" not in home_admin.get("/admin/county").get_data(as_text=True)
    assert home_admin.get("/admin/county/north/repairs?state=open").status_code == 403
    north_admin = app.test_client()
    _sign_in(north_admin, "north", "北校长")
    for slug in ("default", "south", "north"):
        assert north_admin.get(f"/admin/county/{slug}/bus").status_code in (403, 404)


# -- jobs: every reminder, digest and escalation, per school, in its own timezone and calendar ------------------
def test_every_job_runs_per_school_in_its_timezone_and_calendar_once(county: Any, services: Services) -> None:
    """Every job of the registry, one at a time, on a Thursday (and Friday) that is a holiday at 北城小学 only, with 西城小学
    two hours behind (Asia/Urumqi): each school runs it at its own local fire time, in its own namespace
    and without error; a school-days-only job is skipped at 北城小学 alone; a second scheduler runs nothing."""
    from datetime import UTC, date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from models import CalendarDay, JobRun
    from models.school import HOLIDAY
    from scheduler.county import NOT_HOME
    from scheduler.registry import JOBS
    from scheduler.runner import DONE, NOT_SCHOOL_DAY, CountyRunner, trigger_for

    county.add("north", "北城小学")
    county.add("west", "西城小学", tz_name="Asia/Urumqi")
    thursday = date(2026, 11, 26)
    with county.services("north").factory() as db, db.begin():
        db.add(CalendarDay(day=thursday, kind=HOLIDAY, note="校庆"))
        db.add(CalendarDay(day=thursday + timedelta(days=1), kind=HOLIDAY, note="校庆"))  # the Friday talk's day
    zones = {"default": ZoneInfo("Asia/Shanghai"), "north": ZoneInfo("Asia/Shanghai"), "west": ZoneInfo("Asia/Urumqi")}
    # the jobs whose first fire on that Thursday depends on the hour (not "every N minutes, every hour")
    hourly = {j.id for j in JOBS if "hour" in j.cron}
    seen: dict[str, set[str]] = {}
    for job in JOBS:
        first = {slug: trigger_for(job, tz).get_next_fire_time(
            None, datetime(thursday.year, thursday.month, thursday.day, tzinfo=tz)).astimezone(UTC)
            for slug, tz in zones.items()}
        # every job fires that Thursday (the Friday talk the day after)
        assert first["default"].astimezone(zones["default"]).date() - thursday <= timedelta(days=1), job.id
        runner, other = CountyRunner(services, [job]), CountyRunner(services, [job])
        done = runner.tick(first["default"])
        ran = {slug for slug, runs in done.items() if any(r.occurrence == first["default"] for r in runs)}
        if job.id in hourly:  # two hours behind, 西城 is not there yet
            assert ran == {"default", "north"}, (job.id, ran)
            assert first["west"] - first["default"] == timedelta(hours=2), job.id
        else:
            assert {"default", "north"} <= ran, (job.id, ran)
        results = {}
        for slug, runs in done.items():
            for run in runs:
                assert run.status in (DONE, "skipped"), (job.id, slug, run.error)
                if run.occurrence == first["default"]:
                    results[slug] = run.result
        if job.school_days_only:
            assert results["north"] == NOT_SCHOOL_DAY and results["default"] != NOT_SCHOOL_DAY, job.id
        else:
            assert results["north"] != NOT_SCHOOL_DAY, job.id
        if job.id == "send_county_digest":  # the bureau's: at the county office's home only
            assert results["north"] in (NOT_HOME, NOT_SCHOOL_DAY)
        assert not any(r.status == DONE for runs in other.tick(first["default"]).values() for r in runs), job.id
        later = runner.tick(first["west"])
        assert any(r.occurrence == first["west"] and r.status == DONE for r in later.get("west", [])), job.id
        if job.school_days_only:
            (west_run,) = [r for r in later["west"] if r.occurrence == first["west"]]
            assert west_run.result != NOT_SCHOOL_DAY, job.id  # the holiday is 北城's alone
        assert not any(r.status == DONE and r.occurrence == first["west"]
                       for runs in other.tick(first["west"]).values() for r in runs), job.id
        seen[job.id] = set(ran)
    assert len(seen) == len(JOBS) >= 25
    for slug in zones:  # each school's claims are in its own namespace
        with county.services(slug).factory() as db:
            assert {r for r in db.scalars(select(JobRun.job_id))} == {j.id for j in JOBS}, slug
