"""Issue 15's isolation, all of it: every capability and every console page with several schools, each
seeing only its own; every reminding, digesting or escalating job run per school in its own timezone and
calendar; the bureau's links to each school's read-only pages; the shared account's choice kept in the log;
a school's own account's template reports going to its own webhook."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from bot.services import Services
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
    from bot.county import County, report_webhooks

    north.services.templates_now(fresh=True)  # the template ids just set, without waiting TEMPLATES_TTL
    default_hook, resolve = report_webhooks(County.of(north.services), transport)
    assert (default_hook.appid, default_hook.path) == (settings.wechat_appid, "/wechat")
    hook = resolve("wxnorth")
    assert (hook.appid, hook.path) == ("wxnorth", "/wechat/north") and resolve("wxnobody") is None
    fake_wechat.fake.webhook, fake_wechat.fake.state.resolve = default_hook, resolve
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
    # a school's admin sees no other school's figures or records, the home school's admin included (a leak
    # found: the overview, its XLSX and the bureau's 通知 were open to the home school's admin)
    home_admin = app.test_client()
    _sign_in(home_admin, "default", "周春明")
    for path in ("/admin/county", "/admin/county/export.xlsx", "/admin/county/notices/1",
                 "/admin/county/north/repairs?state=open", "/admin/county/default/bus"):
        assert home_admin.get(path).status_code == 403, path
    page = home_admin.get("/admin/").get_data(as_text=True)
    assert "北城小学" not in page and "区县概览" not in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    refused = home_admin.post("/admin/county/notify", data={"csrf": token[1], "scope": "all", "title": "x", "body": "y"})
    assert refused.status_code == 403
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


# -- every capability and every console page, three schools, each with its own words ------------------------
MARKS = {"default": "东甲", "north": "北乙", "south": "南丙"}  # every name and text of a school carries its mark


def _arrange_school(school: School, mark: str, tmp_path: Any, houqin: Any) -> None:
    """A school's people, rooms, assets, bus route, duty post and a task, every word carrying `mark`."""
    from bot.school import set_setting
    from handlers.assets.register import import_assets
    from handlers.bus import import_routes
    from handlers.duty import import_posts, import_roster
    from handlers.repair import import_rooms

    p = school.people
    p.add(f"{mark}校长", "admin")
    p.add(f"{mark}老师", "teacher", class_name="三(2)班")
    p.add(f"{mark}师傅", "staff", categories="水电;消防;安全;电教")
    p.add(f"{mark}食堂", "canteen")
    p.add(f"{mark}跟车", "bus_monitor", "teacher", route="1")
    p.add(f"{mark}家长", "parent")
    p.student(f"{mark}小明", "三(2)班", route="1", stop=f"{mark}花园")
    folder = tmp_path / school.slug
    folder.mkdir()
    files = {
        "rooms.csv": f"楼栋,楼层,房间,别名,负责人\n{mark}楼,1,{mark}器材室,,{mark}师傅\n",
        "assets.csv": "编号,名称,类别,房间,保管人,购置日期,价格,状态,数量,可借,需审批,类型\n"
                      f"TY-001,{mark}篮球,其他,{mark}器材室,{mark}师傅,2024-03-01,120,在用,10,是,否,资产\n",
        "routes.csv": "线路,别名,车牌,司机,司机电话,跟车老师,站点,上学时间,放学时间\n"
                      f"1,{mark}线,苏D·{abs(hash(mark)) % 90000 + 10000},{mark}司机,,{mark}跟车,{mark}花园,07:10,16:55\n",
        "posts.csv": f"岗位,纬度,经度,半径\n{mark}校门口,,,\n",
        "roster.csv": f"星期,时段,岗位,教师\n周二,午间,{mark}校门口,{mark}老师\n",
        "tasks.csv": f"任务,规则,负责,提醒提前天数,逾期上报天数,检查项\n{mark}月报,每月25日,{mark}师傅,1,2,\n",
    }
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    svc = school.services
    with svc.factory() as s, s.begin():
        import_rooms(s, folder / "rooms.csv")
        import_assets(s, folder / "assets.csv", now=svc.now())
        assert import_routes(s, folder / "routes.csv") == 1
        assert import_posts(s, folder / "posts.csv") == 1
        assert import_roster(s, folder / "roster.csv") == 1
        set_setting(s, "bus_manager", f"{mark}食堂")
    done = houqin("tasks", "import", str(folder / "tasks.csv"), "--school", school.slug)
    assert done.exit_code == 0, done.output
    assert houqin("console-password", f"{mark}校长", "--password", test_schools.PASSWORD,
                  "--school", school.slug).exit_code == 0


def _texts_of_xlsx(data: bytes) -> str:
    from io import BytesIO

    from openpyxl import load_workbook

    book = load_workbook(BytesIO(data))
    return " ".join(str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row
                    if c.value is not None)


def _texts_of_pdf(data: bytes) -> str:
    from io import BytesIO

    from pypdf import PdfReader

    return " ".join(page.extract_text() or "" for page in PdfReader(BytesIO(data)).pages)


def test_every_capability_and_console_page_keeps_each_school_to_itself(
        schools: dict[str, School], app: Flask, houqin: Any, fake_wechat: Any, clock: Any, tmp_path: Any) -> None:
    import re
    from datetime import UTC, datetime

    from bot.county import scene_for
    from bot.outbox import Outbox
    from handlers.notices import send_notice
    from models import DutyPost, Person, Room
    from scheduler.runner import Runner

    client = app.test_client()
    for slug, school in schools.items():
        _arrange_school(school, MARKS[slug], tmp_path, houqin)
    heard: dict[str, list[str]] = {slug: [] for slug in schools}  # every reply each school's people got
    users: dict[str, dict[str, Any]] = {}
    for slug, school in schools.items():
        m = MARKS[slug]
        users[slug] = {role: school.user(client, f"{m}{role}") for role in ("校长", "老师", "师傅", "食堂", "跟车")}
        parent = school.user(client, f"{m}家长", bind=False)
        heard[slug].append(parent.say(f"绑定 {school.people.code_of(f'{m}小明')}").text)
        users[slug]["家长"] = parent
    clock.set("2026-11-24 12:05")  # Tuesday: the lunch duty (午间) is on
    for slug, school in schools.items():
        m, u = MARKS[slug], users[slug]
        said = heard[slug]
        said.append(u["老师"].say("我").text)
        assert f"{m}老师" in said[-1]
        said.append(u["老师"].say(f"报修 {m}器材室 {m}窗户漏风").text)
        assert "R1" in said[-1], said[-1]  # every school numbers its own
        said.append(u["老师"].say(f"食堂 4 {m}的汤很好").text)
        assert "F1" in said[-1], said[-1]
        said.append(u["校长"].say(f"演练 完成 3.5 {m}二楼拥挤").text)
        said.append(u["老师"].say(f"借 {m}篮球 1").text)
        assert "J1" in said[-1], said[-1]
        said.append(u["老师"].say("我借的").text)
        assert f"{m}篮球" in said[-1], said[-1]
        said.append(u["老师"].say(f"意见 {m}厕所的水龙头漏水").text)
        assert "Y1" in said[-1], said[-1]
        with school.services.factory() as s:
            post = s.scalar(select(DutyPost.id))
            room = s.scalar(select(Room.id))
        said.append(u["老师"].scan(scene_for(school.services, f"post:{post}")).text)
        assert f"{m}校门口" in said[-1], said[-1]  # the school's own post code, on the shared account too
        said.append(u["师傅"].scan(scene_for(school.services, f"room:{room}")).text)
        assert f"{m}器材室" in said[-1], said[-1]
        with school.services.factory() as s, s.begin():
            admin = s.scalar(select(Person).where(Person.name == f"{m}校长"))
            sent = send_notice(s, Outbox(s, school.services.settings, school.services.now()), admin, "教师",
                               f"{m}防溺水通知", f"{m}请各位老师提醒学生")
            assert sent.notice.code == "N1"
        assert Runner(school.services).run_now("remind_tasks", datetime(2026, 11, 24, 0, 0, tzinfo=UTC)).status == "done"
    clock.set("2026-11-24 16:35")
    for slug, school in schools.items():
        m, u = MARKS[slug], users[slug]
        heard[slug].append(u["跟车"].say("校车 1号线 上车 1").text)
        heard[slug].append(u["跟车"].say("校车 1号线 下车 0").text)
        assert "少 1 人" in heard[slug][-1], heard[slug][-1]
        school.deliver()
    for slug, school in schools.items():
        m, u = MARKS[slug], users[slug]
        heard[slug].append(u["老师"].say("收到").text)
        assert "N1" in heard[slug][-1], heard[slug][-1]
        heard[slug].append(u["校长"].say("通知 N1").text)
        heard[slug].append(u["师傅"].say("任务").text)
        assert f"{m}月报" in heard[slug][-1] and "T1" in heard[slug][-1], heard[slug][-1]
        heard[slug].append(u["校长"].say("R1").text + u["校长"].say("评价汇总 今天").text)
        school.deliver()
    # a default-school code scanned by a follower of 南丙 alone is the default school's, never 南丙's room 1
    south_only = users["south"]["师傅"]
    with schools["default"].services.factory() as s:
        default_room = s.scalar(select(Room.id))
    reply = south_only.scan(f"room:{default_room}").text
    assert "南丙器材室" not in reply, reply
    # what each school's people were told and pushed: their own school's words, no other's
    for slug in schools:
        pushed = [c.text for u in users[slug].values() for c in fake_wechat.sent_to(u.openid)]
        kinds = " ".join(pushed)
        for word in ("窗户漏风", "司机", "防溺水通知", "月报"):  # the ticket, the alarm, the notice, the task
            assert f"{MARKS[slug]}{word}" in kinds, (slug, word)
        everything = "\n".join(heard[slug] + pushed)
        for other, mark in MARKS.items():
            if other != slug:
                assert mark not in everything, (slug, other, [t for t in heard[slug] + pushed if mark in t])
    # the console: each admin walks every page of the navigation, the detail pages, every ledger and slip
    for slug in schools:
        m = MARKS[slug]
        browser = app.test_client()
        test_schools._sign_in(browser, slug, f"{m}校长")
        home = browser.get("/admin/").get_data(as_text=True)
        nav = re.findall(r'<nav>(.*?)</nav>', home, re.S)
        paths = set(re.findall(r'href="(/admin/[^"#?]*)"', nav[0])) if nav else set()
        assert len(paths) >= 15, paths
        shown = []
        for path in sorted(paths):
            res = browser.get(path)
            assert res.status_code == 200, path
            shown.append(res.get_data(as_text=True))
        # the detail pages each list links to, one level down
        details = {href for page in shown for href in re.findall(r'href="(/admin/[^"]+)"', page)
                   if not href.startswith(("/admin/logout", "/admin/login")) and "download" not in href}
        for path in sorted(details - paths)[:150]:
            res = browser.get(path.replace("&amp;", "&"))
            if res.status_code == 200 and res.mimetype == "text/html":
                shown.append(res.get_data(as_text=True))
        ledgers = browser.get("/admin/ledgers?month=2026-11").get_data(as_text=True)
        files = []
        for href in sorted(set(re.findall(r'href="(/admin/ledgers/[^"]+)"', ledgers))):
            res = browser.get(href.replace("&amp;", "&"))
            assert res.status_code == 200, href
            files.append(_texts_of_xlsx(res.data))
        assert len(files) >= 5
        slips = browser.get("/admin/people/slips?class=三(2)班")  # the bind-code slips (text via pypdf)
        assert slips.status_code == 200 and slips.mimetype == "application/pdf"
        files.append(_texts_of_pdf(slips.data))
        assert f"{m}小明" in files[-1], files[-1][:300]
        text = "\n".join(shown + files)
        for word in ("窗户漏风", "的汤很好", "篮球", "校门口", "防溺水通知", "月报", "小明"):
            assert f"{m}{word}" in text, (slug, word)
        for other, mark in MARKS.items():
            if other != slug:
                leaked = [t[max(0, t.index(mark) - 200):t.index(mark) + 100] for t in shown + files if mark in t]
                assert not leaked, (slug, other, leaked[:2])


def test_keys_supplies_disposals_surveys_duty_swaps_and_bind_codes_stay_in_their_school(
        schools: dict[str, School], app: Flask, houqin: Any, fake_wechat: Any, clock: Any, tmp_path: Any) -> None:
    from handlers.assets.register import import_assets
    from handlers.assets.supplies import import_supplies

    client = app.test_client()
    for slug, school in schools.items():
        m = MARKS[slug]
        _arrange_school(school, m, tmp_path, houqin)
        keys, supplies = tmp_path / slug / "keys.csv", tmp_path / slug / "supplies.csv"
        keys.write_text("编号,名称,类别,房间,保管人,购置日期,价格,状态,数量,可借,需审批,类型\n"
                        f"YS-1,{m}门钥匙,门窗,{m}器材室,{m}师傅,,,,2,是,否,钥匙\n", encoding="utf-8")
        supplies.write_text(f"物品,单位,库存,补货线,需审批,负责人\n{m}粉笔,盒,50,10,否,{m}师傅\n", encoding="utf-8")
        with school.services.factory() as s, s.begin():
            import_assets(s, keys, now=school.services.now())
            assert import_supplies(s, supplies) == 1
    clock.set("2026-11-24 11:00")  # Tuesday, before the lunch duty
    heard: dict[str, list[str]] = {}
    for slug, school in schools.items():
        m = MARKS[slug]
        teacher, other = school.user(client, f"{m}老师"), school.user(client, f"{m}跟车")
        admin = school.user(client, f"{m}校长")
        said = heard[slug] = []
        said.append(teacher.say(f"领钥匙 {m}器材室").text)
        assert f"{m}门钥匙" in said[-1] and "第1把" in said[-1], said[-1]
        said.append(teacher.say(f"还钥匙 {m}器材室").text)
        assert "已归还" in said[-1] and "J1" in said[-1], said[-1]  # the loan numbers are the school's own
        said.append(teacher.say(f"代班 {m}跟车 今天 午间").text)
        assert "同意" in said[-1], said[-1]
        said.append(other.say("同意").text)
        assert "已接受代班" in said[-1] and f"{m}校门口" in said[-1], said[-1]
        said.append(teacher.say(f"领用 {m}粉笔 2").text)
        assert "L1" in said[-1] and f"{m}粉笔" in said[-1], said[-1]  # supplies: L<n> per school
        staff = school.user(client, f"{m}师傅")
        said.append(staff.say(f"报废 TY-001 {m}篮球破了").text)
        assert "BF1" in said[-1], said[-1]  # disposals: BF<n> per school
        said.append(admin.say("批准 BF1").text)
        assert "已批准 BF1" in said[-1], said[-1]
        said.append(admin.say(f"盘点 开始 {m}楼").text)
        assert f"已开始盘点：{m}楼" in said[-1], said[-1]  # the stocktake, of the school's own register
        said.append(staff.say(f"盘点 {m}器材室 YS-1").text)
        said.append(staff.say("盘点").text)
        assert "已盘 1/" in said[-1], said[-1]
        started = houqin("survey", "start", "--days", "7", "--school", slug)
        assert started.exit_code == 0, started.output
        said.append(teacher.say("5 4 4 3 5 4 5").text)
        assert "测评已提交" in said[-1], said[-1]
        said.append(admin.say("我").text)
        school.deliver()
        pushed = [c.text for u in (teacher, other, admin, staff) for c in fake_wechat.sent_to(u.openid)]
        assert any(f"{m}老师请你代班" in t for t in pushed), pushed
        said.extend(pushed)
    for slug in schools:
        for other, mark in MARKS.items():
            if other != slug:
                assert not any(mark in t for t in heard[slug]), (slug, other)
    for slug in schools:
        result = houqin("survey", "results", "--out", str(tmp_path / f"{slug}.xlsx"), "--school", slug)
        assert result.exit_code == 0, result.output
        assert "1" in result.output and not any(mark in result.output for o, mark in MARKS.items() if o != slug)
    # bind codes on the shared account: a code decides its school, by text or by a slip's QR scene; the
    # default school's code binds there even for a follower bound elsewhere before
    default, south = schools["default"], schools["south"]
    default.people.add("东甲保安", "staff")
    south.people.add("南丙保安", "staff")
    guard = south.user(client, "南丙保安", openid="o_guard_of_two")
    assert "南丙保安" in guard.say("我").text
    bound = guard.subscribe(f"bind:{default.people.code_of('东甲保安')}").text
    assert "绑定成功" in bound and "东甲保安" in bound, bound
    newcomer = default.user(client, "南丙家长", openid="o_newcomer", bind=False)
    south.people.add("南丙新家长", "parent")
    by_scan = newcomer.scan(f"bind:{south.people.code_of('南丙新家长')}").text
    assert "南丙新家长" in by_scan and "东甲" not in by_scan, by_scan


def test_each_schools_qr_sheets_carry_its_own_codes_and_scanning_them_reaches_it(
        schools: dict[str, School], app: Flask, houqin: Any, fake_wechat: Any, clock: Any, tmp_path: Any) -> None:
    client = app.test_client()
    for slug, school in schools.items():
        _arrange_school(school, MARKS[slug], tmp_path, houqin)
    for slug, school in schools.items():
        m = MARKS[slug]
        before = len(fake_wechat.calls)
        texts = []
        for kind in ("rooms", "posts", "assets"):
            out = tmp_path / f"{slug}-{kind}.pdf"
            made = houqin("qr", kind, "--out", str(out), "--school", slug)
            assert made.exit_code == 0, made.output
            texts.append(_texts_of_pdf(out.read_bytes()))
        sheet = "\n".join(texts)
        assert f"{m}器材室" in sheet and f"{m}校门口" in sheet, sheet[:300]
        assert not any(mark in sheet for o, mark in MARKS.items() if o != slug)
        scenes = [str(c.body["action_info"]["scene"]["scene_str"]) for c in fake_wechat.calls[before:]
                  if c.endpoint == "qrcode/create"]
        assert len(scenes) == 3, scenes
        # a school on the shared account names itself; the default's and a school with its own account's don't
        assert all(s.startswith("south/") for s in scenes) if slug == "south" else not any("/" in s for s in scenes)
        staff = school.user(client, f"{m}师傅")
        room_scene = next(s for s in scenes if "room:" in s)
        reply = staff.scan(room_scene).text
        assert f"{m}器材室" in reply and not any(mark in reply for o, mark in MARKS.items() if o != slug), reply
