"""The scheduler: exactly-once claims, catch-up within grace, school days, quiet hours, `houqin jobs`."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.school import Calendar, import_calendar
from bot.services import Services
from models import CalendarDay, Delivery, JobRun
from scheduler import Job, JobContext
from scheduler.runner import NOT_SCHOOL_DAY, SKIPPED_LATE, Runner

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


def counting_job(calls: list[datetime], **kwargs: object) -> Job:
    def count(ctx: JobContext, now: datetime) -> str:
        calls.append(now)
        return f"ran {len(calls)}"

    return Job("count_things", count, {"hour": "17", "minute": "0"}, "test job", **kwargs)  # type: ignore[arg-type]


def runs(services: Services, job_id: str) -> list[JobRun]:
    with services.factory() as s:
        return list(s.scalars(select(JobRun).where(JobRun.job_id == job_id).order_by(JobRun.id)))


def test_two_schedulers_run_each_occurrence_once(services: Services) -> None:
    calls: list[datetime] = []
    job = counting_job(calls)
    schedulers = [Runner(services, [job]) for _ in range(2)]
    now = at("2026-11-23 17:00")
    barrier = threading.Barrier(2)

    def tick(r: Runner) -> None:
        barrier.wait(timeout=10)
        r.tick(now)

    threads = [threading.Thread(target=tick, args=(r,)) for r in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert calls == [at("2026-11-23 17:00")]
    recorded = runs(services, "count_things")
    assert [(r.status, r.occurrence) for r in recorded] == [("done", at("2026-11-23 17:00"))]
    # ticking again at the same time changes nothing
    for r in schedulers:
        r.tick(now + timedelta(seconds=30))
    assert len(calls) == 1


def test_missed_run_within_grace_runs_once_at_start_up(services: Services) -> None:
    calls: list[datetime] = []
    runner = Runner(services, [counting_job(calls)])
    runner.tick(at("2026-11-22 17:00"))  # the job ran yesterday
    assert len(calls) == 1
    # the scheduler was down at 17:00 today and comes back at 17:40: within the 1-hour grace
    runner.tick(at("2026-11-23 17:40"))
    assert calls[-1] == at("2026-11-23 17:00")
    assert len(calls) == 2
    assert runs(services, "count_things")[-1].result == "ran 2"


def test_missed_runs_past_grace_are_recorded_as_skipped(services: Services) -> None:
    calls: list[datetime] = []
    runner = Runner(services, [counting_job(calls)])
    runner.tick(at("2026-11-21 17:00"))
    # down for two days; back at 19:30, after today's grace too
    runner.tick(at("2026-11-23 19:30"))
    assert len(calls) == 1
    recorded = runs(services, "count_things")
    assert [r.status for r in recorded] == ["done", "skipped", "skipped"]
    assert all(r.result == SKIPPED_LATE for r in recorded[1:])
    assert [r.occurrence for r in recorded[1:]] == [at("2026-11-22 17:00"), at("2026-11-23 17:00")]


def test_a_failing_job_is_recorded_and_rolled_back(services: Services, people) -> None:
    from models import Person

    def boom(ctx: JobContext, now: datetime) -> str:
        ctx.db.add(Person(name="不该留下"))
        ctx.db.flush()
        raise RuntimeError("job bug")

    runner = Runner(services, [Job("boom", boom, {"hour": "8", "minute": "0"})])
    (run,) = runner.tick(at("2026-11-23 08:00"))
    assert run.status == "failed"
    stored = runs(services, "boom")[0]
    assert stored.status == "failed" and "job bug" in (stored.error or "") and stored.finished_at is not None
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(Person).where(Person.name == "不该留下")) == 0


def test_school_day_jobs_do_nothing_on_holidays_and_weekends(services: Services, tmp_path: Path) -> None:
    calls: list[datetime] = []
    runner = Runner(services, [counting_job(calls, school_days_only=True)])
    csv = tmp_path / "calendar.csv"
    csv.write_text("日期,类型,备注\n2026-10-01~2026-10-07,放假,国庆节\n2026-10-10,调休,补上课\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_calendar(s, csv) == 8
    assert runner.run_now("count_things", at("2026-10-02 17:00")).result == NOT_SCHOOL_DAY  # holiday, a Friday
    assert runner.run_now("count_things", at("2026-10-11 17:00")).result == NOT_SCHOOL_DAY  # a Sunday
    assert runner.run_now("count_things", at("2026-10-10 17:00")).result == "ran 1"  # Saturday make-up day
    assert runner.run_now("count_things", at("2026-10-12 17:00")).result == "ran 2"  # an ordinary Monday
    assert len(calls) == 2


def test_calendar_terms_bound_school_days(services: Services, tmp_path: Path) -> None:
    csv = tmp_path / "terms.csv"
    csv.write_text("date,kind,note\n2026-09-01,开学,秋学期\n2027-01-22,学期结束,秋学期\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        import_calendar(s, csv)
        cal = Calendar(s)
        assert cal.is_school_day(date(2026, 9, 1))
        assert not cal.is_school_day(date(2026, 8, 31))  # summer holiday: before the term
        assert not cal.is_school_day(date(2027, 1, 25))  # a Monday after the term
        assert cal.month_school_days(date(2026, 11, 5))[0] == date(2026, 11, 2)


def test_calendar_import_rejects_bad_rows_and_imports_nothing(services: Services, tmp_path: Path) -> None:
    from bot.tables import TableError

    csv = tmp_path / "bad.csv"
    csv.write_text("日期,类型\n2026-10-01,放假\n2026/13/40,放假\n2026-10-09,开会\n", encoding="utf-8")
    with services.factory() as s, s.begin(), pytest.raises(TableError) as err:
        import_calendar(s, csv)
    assert any("第3行" in p for p in err.value.problems) and any("第4行" in p for p in err.value.problems)
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(CalendarDay)) == 0


def test_jobs_registry_has_unique_verb_first_ids_and_valid_crons(runner: Runner) -> None:
    ids = list(runner.jobs)
    assert len(ids) == len(set(ids))
    verbs = ("push_", "remind_", "escalate_", "send_", "check_", "watch_", "record_", "repeat_", "download_")
    assert all(i.startswith(verbs) for i in ids), ids
    status = runner.status(at("2026-11-23 09:00"))
    assert all(row.next_run is not None for row in status)


def test_quiet_hours_hold_parent_pushes_but_not_safety_alerts(services: Services, people, clock) -> None:
    from bot.outbox import Outbox
    from models import Person

    people.add("陈建国", "parent")
    people.add("张丽", "teacher")
    now = clock.set("2026-11-23 21:30")
    with services.factory() as s, s.begin():
        parent = s.scalar(select(Person).where(Person.name == "陈建国"))
        teacher = s.scalar(select(Person).where(Person.name == "张丽"))
        for p in (parent, teacher):  # give them a WeChat so deliveries are real
            from models import Binding

            s.add(Binding(openid=f"o_{p.id}", person=p))
        s.flush()
        box = Outbox(s, services.settings, now)
        box.notify([parent, teacher], "drill_notice", "明天演练")
        box.notify(parent, "bus_alarm", "校车警报", safety=True)
    with services.factory() as s:
        rows = {(d.push.kind, d.person_id): d.next_attempt_at for d in s.scalars(select(Delivery)).unique()}
        parent_id = s.scalar(select(Person.id).where(Person.name == "陈建国"))
        teacher_id = s.scalar(select(Person.id).where(Person.name == "张丽"))
    assert rows[("drill_notice", parent_id)] == at("2026-11-24 07:00")
    assert rows[("drill_notice", teacher_id)] == now
    assert rows[("bus_alarm", parent_id)] == now


def test_jobs_run_cli_against_the_demo(tmp_path: Path) -> None:
    """`houqin jobs run` and `jobs list` on a fresh demo database, as an operator would."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "HOUQIN_", "DATABASE_URL"))}
    env.update(HOUQIN_INSTANCE=str(tmp_path / "instance"), DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}")
    cli = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*cli, "demo"], env=env, check=True, capture_output=True, cwd=tmp_path)
    out = subprocess.run([*cli, "jobs", "run", "remind_drill_eve", "--at", "2026-11-23 16:00"], env=env,
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "remind_drill_eve: done" in out.stdout and "1 场演练" in out.stdout
    listing = subprocess.run([*cli, "jobs", "list"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "send_daily_digest" in listing.stdout and "remind_drill_eve" in listing.stdout
    bad = subprocess.run([*cli, "jobs", "run", "no_such_job"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode != 0 and "没有任务 no_such_job" in bad.stderr
