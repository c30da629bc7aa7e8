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


# -- a killed scheduler loses nothing ------------------------------------------------------------
def left_running(services: Services, job_id: str, occurrence: datetime, lease_until: datetime) -> None:
    """The row a scheduler leaves when it is killed (SIGKILL) in the middle of a job: its claim, still
    `running`; the job's own transaction died with the process, so it queued nothing."""
    with services.factory() as s, s.begin():
        s.add(JobRun(job_id=job_id, occurrence=occurrence, as_of=occurrence, status="running",
                     owner="scheduler-killed", started_at=occurrence, lease_until=lease_until))


def attempts(services: Services, job_id: str) -> list[tuple[int, str, str | None]]:
    return [(r.attempt, r.status, r.error) for r in runs(services, job_id)]


def test_a_killed_schedulers_claim_is_taken_over_after_its_lease_and_sends_once(services, people, wechat_user,
                                                                               runner, queued, deliver,
                                                                               fake_wechat, clock) -> None:
    clock.set("2026-11-24 16:00")
    people.add("周春明", "admin")
    wechat_user("周春明")
    left_running(services, "send_daily_digest", at("2026-11-24 17:00"), lease_until=at("2026-11-24 17:02"))

    clock.set("2026-11-24 17:01")  # still within the lease: the claim may be alive, it is not taken
    assert "send_daily_digest" not in [r.job_id for r in runner.tick()]
    assert queued("daily_digest") == [] and attempts(services, "send_daily_digest") == [(1, "running", None)]

    clock.set("2026-11-24 17:03")  # the lease has expired: the next tick takes the occurrence over
    (digest,) = [r for r in runner.tick() if r.job_id == "send_daily_digest"]
    assert (digest.attempt, digest.status, digest.occurrence) == (2, "done", at("2026-11-24 17:00"))
    recorded = attempts(services, "send_daily_digest")
    assert recorded[0][:2] == (1, "failed") and f"由 {runner.owner} 接管重跑" in (recorded[0][2] or "")
    assert recorded[1] == (2, "done", None)

    # later ticks, by this scheduler or another, and a manual run do not send it again
    clock.set("2026-11-24 17:04")
    runner.tick()
    Runner(services).tick()
    assert len(queued("daily_digest")) == 1
    deliver()
    (sent,) = [c for c in fake_wechat.sent_to("周春明") if c.mentions("【后勤日报】11月24日（周二）")]
    assert sent


def test_an_expired_claim_past_the_jobs_grace_is_recorded_as_skipped(services, people, runner, queued,
                                                                     clock) -> None:
    people.add("周春明", "admin")
    left_running(services, "send_daily_digest", at("2026-11-24 17:00"), lease_until=at("2026-11-24 17:02"))
    clock.set("2026-11-24 18:30")  # restarted after the digest's 1-hour grace
    runner.tick()
    assert [a[:2] for a in attempts(services, "send_daily_digest")] == [(1, "failed"), (2, "skipped")]
    assert runs(services, "send_daily_digest")[1].result == "租约已过期，且已超过宽限期，未重跑"
    assert queued("daily_digest") == []


def test_a_claim_taken_over_while_its_job_still_runs_commits_nothing(services, backend, people, queued) -> None:
    """A stalled (not dead) scheduler outlives its lease and another takes over: the stalled attempt
    finds its claim gone when it finishes, and rolls back what it queued."""
    if backend.name == "sqlite":
        pytest.skip("SQLite runs one transaction at a time: no claim can be taken over while its job runs")
    from bot.school import admins

    people.add("周春明", "admin")
    calls: list[datetime] = []

    def notify_admin(ctx: JobContext, now: datetime) -> str:
        calls.append(now)
        ctx.outbox.notify(admins(ctx.db), "notice", f"第 {len(calls)} 次")
        ctx.db.flush()
        if len(calls) == 1:  # the first attempt stalls past its lease; another scheduler ticks meanwhile
            other.tick(at("2026-11-24 17:05"))
        return f"ran {len(calls)}"

    job = Job("notify_admin", notify_admin, {"hour": "17", "minute": "0"})
    other = Runner(services, [job])
    (stalled,) = Runner(services, [job]).tick(at("2026-11-24 17:00"))
    assert stalled.status == "failed" and "已被其他进程接管" in (stalled.error or "")
    assert [(q.kind, q.text) for q in queued()] == [("notice", "第 2 次")]
    assert [a[:2] for a in attempts(services, "notify_admin")] == [(1, "failed"), (2, "done")]


def test_a_manual_run_claims_a_later_occurrence_without_hiding_earlier_ones(services, clock) -> None:
    """`houqin jobs run --at` a future time claims that occurrence; the scheduler still runs today's."""
    clock.set("2026-11-23 16:00")
    calls: list[datetime] = []
    runner = Runner(services, [counting_job(calls)])
    runner.tick(at("2026-11-22 17:00"))
    runner.run_now("count_things", at("2026-11-26 17:00"))  # Thursday's, ahead of time
    runner.tick(at("2026-11-23 17:00"))
    runner.tick(at("2026-11-26 17:00"))
    assert calls == [at("2026-11-22 17:00"), at("2026-11-26 17:00"), at("2026-11-23 17:00")]


KILLED_SCHEDULER = """
import pickle, sys, time
from datetime import datetime
from pathlib import Path

from bot.school import admins
from bot.services import Services
from scheduler import Job
from scheduler.runner import Runner

folder, schema, now = Path(sys.argv[1]), sys.argv[2] or None, datetime.fromisoformat(sys.argv[3])
services = Services.from_settings(pickle.loads((folder / "settings.pickle").read_bytes()), schema=schema)
services.clock = lambda: now


def send_digest(ctx, at):
    ctx.outbox.notify(admins(ctx.db), "notice", "日报")
    ctx.db.flush()
    (folder / "job-started").write_text("queued, not committed")
    time.sleep(120)  # SIGKILL arrives here
    return "ran"


Runner(services, [Job("send_digest", send_digest, {"hour": "17", "minute": "0"})]).tick(now)
"""


def test_a_scheduler_process_killed_mid_job_is_taken_over_and_sends_once(services, people, queued,
                                                                         tmp_path: Path) -> None:
    """A real process, killed with SIGKILL while its job runs (after it queued a push, before it committed)."""
    import os
    import pickle
    import signal
    import subprocess
    import sys
    import time

    from bot.school import admins

    people.add("周春明", "admin")
    (tmp_path / "settings.pickle").write_bytes(pickle.dumps(services.settings))
    started = tmp_path / "job-started"
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SCHEDULER, str(tmp_path), services.schema or "",
                             at("2026-11-24 17:00").isoformat()], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the scheduler process never started its job"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=15) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=15)
    assert attempts(services, "send_digest") == [(1, "running", None)] and queued() == []

    def send_digest(ctx: JobContext, now: datetime) -> str:
        ctx.outbox.notify(admins(ctx.db), "notice", "日报")
        return "ran"

    runner = Runner(services, [Job("send_digest", send_digest, {"hour": "17", "minute": "0"})])
    assert runner.tick(at("2026-11-24 17:01")) == []  # within the dead claim's lease
    (run,) = runner.tick(at("2026-11-24 17:03"))
    assert (run.attempt, run.status) == (2, "done")
    runner.tick(at("2026-11-24 17:04"))
    assert [(q.kind, q.name, q.text) for q in queued()] == [("notice", "周春明", "日报")]
