"""The bureau's county overview (issue 15): one row per school computed in each school's own namespace,
as `houqin county report` (month and term, XLSX), the console page, and the 17:30 county digest to the
bureau's people."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from bot.county import County
from bot.county_report import HEADER, MONTH, TERM, county_digest, county_rows
from bot.services import Services
from models import (
    BusAlarm,
    BusRoute,
    BusTrip,
    CanteenFeedback,
    Delivery,
    Drill,
    FireCheck,
    Push,
    RepairTicket,
)
from models.outbox import FAILED, SENT
from scheduler import JobContext
from scheduler.county import NOT_HOME, send_county_digest
from tests.test_console import PASSWORD, csrf


@pytest.fixture
def county(services: Services, clock) -> Iterator[County]:
    clock.set("2026-11-24 17:30")
    county = County.of(services)
    county.add("north", "北城小学")
    yield county
    schemas = [county.schema_of(e.slug) for e in county.schools() if not e.is_default]
    county.dispose()
    if services.db_engine.dialect.name == "postgresql":
        with services.db_engine.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def arrange(county: County) -> None:
    """Home school: a drill logged, the fire self-check done, a repair overdue, a bus alarm acknowledged
    after 6 minutes, two ratings. 北城小学: an alarm nobody acknowledged, a food-safety word, a push undelivered."""
    home, north = county.default, county.services("north")
    now = home.now()
    with home.factory() as db, db.begin():
        db.add(Drill(day=date(2026, 11, 12), at=now.time(), kind="消防疏散", logged_at=now))
        db.add(FireCheck(month="2026-11", done_at=now))
        db.add(RepairTicket(number=1, place="三(2)班", category="电教", description="投影仪不亮",
                            filed_at=now - timedelta(days=5)))
        route = BusRoute(number="1")
        db.add(route)
        db.flush()
        trip = BusTrip(route_id=route.id, day=date(2026, 11, 20), trip="pm")
        db.add(trip)
        db.flush()
        raised = now - timedelta(days=4)
        db.add(BusAlarm(trip_id=trip.id, raised_at=raised, missing=1, acknowledged_at=raised + timedelta(minutes=6)))
        db.add(CanteenFeedback(number=1, role="parent", day=date(2026, 11, 23), rating=4))
        db.add(CanteenFeedback(number=2, role="teacher", day=date(2026, 11, 23), rating=5))
    with north.factory() as db, db.begin():
        route = BusRoute(number="2")
        db.add(route)
        db.flush()
        trip = BusTrip(route_id=route.id, day=date(2026, 11, 24), trip="pm")
        db.add(trip)
        db.flush()
        db.add(BusAlarm(trip_id=trip.id, raised_at=now - timedelta(minutes=20), missing=2))
        db.add(CanteenFeedback(number=1, role="parent", day=date(2026, 11, 24), rating=2, comment="菜里有异物",
                               alert_words="异物"))
        push = Push(kind="notice", text="通知", created_at=now - timedelta(hours=2))
        push.deliveries.append(Delivery(openid="o_north", status=FAILED, next_attempt_at=now))
        push.deliveries.append(Delivery(openid="o_north2", status=SENT, next_attempt_at=now))
        db.add(push)


def test_each_school_has_its_row_from_its_own_namespace(county: County) -> None:
    arrange(county)
    period, (home, north) = county_rows(county, MONTH)
    assert (period.first, period.last) == (date(2026, 11, 1), date(2026, 11, 30))
    assert (home.slug, north.slug, north.name) == ("default", "north", "北城小学")
    assert (home.drills, home.drills_due, home.fire_closed, home.fire_due) == (1, 1, 1, 1)
    assert (home.repairs_open, home.repairs_overdue) == (1, 1)
    assert (home.bus_alarms, home.bus_unacknowledged, home.bus_ack_minutes) == (1, 0, 6.0)
    assert (home.food_alerts, home.canteen_average, home.undelivered) == (0, 4.5, 0)
    assert (north.drills, north.fire_closed, north.repairs_open) == (0, 0, 0)
    assert (north.bus_alarms, north.bus_unacknowledged, north.bus_ack_minutes) == (1, 1, None)
    assert (north.food_alerts, north.canteen_average, north.undelivered) == (1, 2.0, 1)
    october, rows = county_rows(county, MONTH, date(2026, 10, 1))
    assert october.last == date(2026, 10, 31) and all(r.drills == 0 and r.bus_alarms == 0 for r in rows)
    term, rows = county_rows(county, TERM)  # no term marks: September to today
    assert (term.first, term.last) == (date(2026, 9, 1), date(2026, 11, 24))
    assert rows[0].drills_due == 3 and rows[0].drills == 1


def test_houqin_county_report_prints_and_exports_the_same_table(county: County, houqin, tmp_path) -> None:
    arrange(county)
    shown = houqin("county", "report")
    assert shown.exit_code == 0, shown.output
    assert "北城小学" in shown.output and "2026-11-01至2026-11-30" in shown.output
    path = tmp_path / "county.xlsx"
    written = houqin("county", "report", "--term", "--xlsx", str(path))
    assert written.exit_code == 0, written.output
    sheet = load_workbook(path).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == HEADER
    assert rows[1][:6] == ["本校", "default", "1/3", "1/3", 1, 1]
    assert rows[2][0] == "北城小学" and rows[2][7] == 1 and rows[2][9] == 1 and rows[2][11] == 1
    bad = houqin("county", "report", "--month", "十一月")
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output


def test_the_county_digest_goes_to_the_bureau_at_the_home_school_only(county: County, people, wechat_user,
                                                                      queued) -> None:
    arrange(county)
    people.add("教育局王科长", "bureau")
    wechat_user("教育局王科长")
    text_ = county_digest(county)
    lines = text_.splitlines()
    assert lines[0] == "【教育局日报】11月24日，2所学校"
    assert "本校：逾期报修1件" in lines
    assert "北城小学：校车警报1起未确认，今日食品安全反馈1条，本月尚未记录演练，本月消防自检未完成，今日推送未送达1条" in lines
    home = county.default
    with home.factory() as db, db.begin():
        ctx = JobContext(db=db, settings=home.settings, now=home.now(), services=home)
        assert send_county_digest(ctx, home.now()) == lines[0]
    (sent,) = queued(kind="county_digest")
    assert sent.name == "教育局王科长" and "北城小学" in sent.text
    north = county.services("north")
    with north.factory() as db, db.begin():
        assert send_county_digest(JobContext(db=db, settings=north.settings, now=north.now(), services=north),
                                  north.now()) == NOT_HOME


def test_the_console_shows_the_overview_read_only(county: County, people, houqin, client) -> None:
    arrange(county)
    people.add("教育局王科长", "bureau")
    assert houqin("console-password", "教育局王科长", "--password", PASSWORD, "--school", "default").exit_code == 0
    assert client.get("/admin/county").status_code == 302  # signed out: to the sign-in page
    from models import Person, PersonRole

    with county.services("north").factory() as db, db.begin():
        db.add(Person(name="北城校长", roles=[PersonRole(role="admin")]))
    assert houqin("console-password", "北城校长", "--password", PASSWORD, "--school", "north").exit_code == 0
    north = client.application.test_client()
    signed = north.post("/admin/login", data={"csrf": csrf(north), "name": "北城校长", "password": PASSWORD,
                                              "school": "north"})
    assert signed.status_code == 302
    assert north.get("/admin/county").status_code == 403  # a school's admin: not the county's business
    client.post("/admin/login", data={"csrf": csrf(client), "name": "教育局王科长", "password": PASSWORD,
                                      "school": "default"})
    page = client.get("/admin/county").get_data(as_text=True)
    assert "北城小学" in page and "2026-11-01至2026-11-30" in page and "未确认警报" in page
    term = client.get("/admin/county?view=term").get_data(as_text=True)
    assert "2026-09-01至2026-11-24" in term
    export = client.get("/admin/county/export.xlsx?view=month")
    assert export.status_code == 200 and export.data[:2] == b"PK"
    assert client.post("/admin/county").status_code == 405


def test_a_bureau_notice_reaches_each_chosen_schools_admins(county: County, people) -> None:
    from bot.county import CountyError
    from bot.county_report import bureau_notice_recipients
    from models import Person, PersonRole

    home_admin = people.add("周春明", "admin")
    with county.services("north").factory() as db, db.begin():
        north_admin = Person(name="北城校长", roles=[PersonRole(role="admin")])
        db.add(Person(name="北城老师", roles=[PersonRole(role="teacher")]))
        db.add(north_admin)
    assert bureau_notice_recipients(county) == {"default": [home_admin.id], "north": [north_admin.id]}
    assert bureau_notice_recipients(county, ["north"]) == {"north": [north_admin.id]}
    with pytest.raises(CountyError):
        bureau_notice_recipients(county, ["nowhere"])
