"""The one reminder of a bureau notice (scheduler.county.remind_unread_county_notices): the admins who have
not confirmed are reminded on their school's next school day from 8:00 — never in its quiet hours, once per
notice, not those who confirmed — and the bureau sees who was reminded and when."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from bot.county import County
from scheduler.county import NOTHING_TO_REMIND, QUIET
from scheduler.registry import JOBS
from scheduler.runner import NOT_SCHOOL_DAY, CountyRunner
from tests import test_schools
from tests.test_county_notices import sign_in
from tests.test_schools import School

county = test_schools.county  # the fixtures of tests/test_schools.py: the county and its three schools
schools = test_schools.schools

REMINDER = "【提醒】请确认通知 N1「防溺水安全检查」"
ADMINS = {"default": ["周春明"], "north": ["北城李校长", "北城王副校长"], "south": ["南城校长"]}


def test_unconfirmed_admins_are_reminded_once_on_their_next_school_day_outside_quiet_hours(
        schools: dict[str, School], county: County, app: Flask, houqin: Any, fake_wechat: Any, clock: Any,
        tmp_path: Any) -> None:
    clock.set("2026-11-24 10:00")  # Tuesday
    client = app.test_client()
    schools["default"].people.add("教育局王科长", "bureau")
    users = {}
    for slug, names in ADMINS.items():
        for name in names:
            schools[slug].people.add(name, "admin")
            users[name] = schools[slug].user(client, name)
    holiday = tmp_path / "south.csv"  # 南城小学's Wednesday is a holiday: its next school day is Thursday
    holiday.write_text("日期,类型,备注\n2026-11-25,放假,校运会\n", encoding="utf-8")
    assert houqin("calendar", "import", str(holiday), "--school", "south").exit_code == 0
    north = schools["north"].services  # 北城小学's quiet hours end at 08:30
    north.settings = replace(north.settings, quiet_end="08:30")
    sent = houqin("county", "notify", "--title", "防溺水安全检查", "--body", "请各校于周五前完成自查。")
    assert sent.exit_code == 0, sent.output
    for school in schools.values():
        school.deliver()
    assert "已确认收到通知 N1" in users["北城李校长"].say("收到 N1").text
    runner = CountyRunner(schools["default"].services, [j for j in JOBS if j.id == "remind_unread_county_notices"])

    def tick(utc: str) -> dict[str, str]:
        """A scheduler's tick at this UTC moment (Shanghai is 8 hours ahead); then every school's worker."""
        at = datetime.strptime(utc, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        results = {slug: run.result for slug, runs in runner.tick(at).items() for run in runs}
        clock.set(f"{at.astimezone(county.default.settings.tz):%Y-%m-%d %H:%M}")
        for school in schools.values():
            school.deliver()
        return results

    # Tuesday 16:00 in Shanghai: sent today, nobody is reminded yet
    assert tick("2026-11-24 08:00") == dict.fromkeys(ADMINS, NOTHING_TO_REMIND)
    # Wednesday 08:00: 本校 reminds; 北城 is still in its quiet hours; 南城 is on holiday
    wednesday = tick("2026-11-25 00:00")
    assert wednesday["default"].startswith("N1「防溺水安全检查」：已提醒 1 位未确认的人"), wednesday
    assert (wednesday["north"], wednesday["south"]) == (QUIET, NOT_SCHOOL_DAY)
    # Wednesday 09:00: 北城 reminds the admin who has not confirmed, not the one who has; 本校 not again
    later = tick("2026-11-25 01:00")
    assert later["default"] == NOTHING_TO_REMIND and later["south"] == NOT_SCHOOL_DAY
    assert "已提醒 1 位未确认的人" in later["north"] and "北城王副校长" in later["north"]
    # Thursday 08:00: 南城's first school day since; then nothing more anywhere
    thursday = tick("2026-11-26 00:00")
    assert "已提醒 1 位未确认的人" in thursday["south"] and thursday["default"] == thursday["north"] == NOTHING_TO_REMIND
    assert tick("2026-11-26 01:00") == dict.fromkeys(ADMINS, NOTHING_TO_REMIND)
    assert tick("2026-11-27 00:00") == dict.fromkeys(ADMINS, NOTHING_TO_REMIND)

    for name in ("周春明", "北城王副校长", "南城校长"):
        reminders = [c for c in fake_wechat.sent_to_openid(users[name].openid) if REMINDER in c.text]
        assert len(reminders) == 1, name
    assert not any(REMINDER in c.text for c in fake_wechat.sent_to_openid(users["北城李校长"].openid))

    shown = houqin("county", "notices", "1").output  # the bureau sees who was reminded, and when
    assert "已提醒：周春明（11-25 08:00）" in shown
    assert "已提醒：北城王副校长（11-25 09:00）" in shown and "已提醒：南城校长（11-26 08:00）" in shown
    reminded_lines = [line for line in shown.splitlines() if "已提醒：" in line]
    assert len(reminded_lines) == 3 and not any("北城李校长" in line for line in reminded_lines), shown
    sign_in(client, houqin, "教育局王科长")
    page = client.get("/admin/county/notices/1").get_data(as_text=True)
    assert "<th>已提醒</th>" in page and "北城王副校长（11-25 09:00）" in page and "南城校长（11-26 08:00）" in page
