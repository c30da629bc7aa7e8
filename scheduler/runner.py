"""Running the registry exactly once, however many scheduler processes there are.

APScheduler wakes `tick` every few seconds. For each job, tick works out the cron occurrences due
since the job's last recorded one (APScheduler's CronTrigger does the calendar arithmetic), claims
each by inserting its `job_runs` row — the unique (job_id, occurrence) lets one process win — and
runs it if it is within the job's grace, else records it as skipped. With coalesce, only the newest
of several missed occurrences runs. A restart therefore catches up the same way a tick does.
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from bot.services import Services
from models import JobRun
from scheduler import Job, JobContext
from scheduler.registry import JOBS

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=3)  # how far back a restart looks for missed occurrences
MAX_OCCURRENCES = 500  # per job per tick, a bound on the catch-up arithmetic
NOT_SCHOOL_DAY = "非上课日，未执行"
SKIPPED_LATE = "错过运行时间超过宽限期，已跳过"


@dataclass
class JobStatus:
    job: Job
    schedule: str
    next_run: datetime | None
    last_run: JobRun | None


def trigger_for(job: Job, tz: object) -> CronTrigger:
    return CronTrigger(timezone=tz, **job.cron)


def describe(job: Job) -> str:
    fields = ("month", "day", "day_of_week", "hour", "minute")
    return " ".join(f"{f}={job.cron[f]}" for f in fields if f in job.cron) or "manual"


class Runner:
    def __init__(self, services: Services, jobs: list[Job] | None = None) -> None:
        self.services = services
        self.jobs = {j.id: j for j in (jobs if jobs is not None else JOBS)}
        self.owner = f"scheduler-{uuid.uuid4().hex[:8]}"
        self._scheduler: BackgroundScheduler | None = None

    @property
    def tz(self):  # type: ignore[no-untyped-def]
        return self.services.settings.tz

    # -- occurrences -----------------------------------------------------------------------------
    def due_occurrences(self, job: Job, now: datetime, since: datetime) -> list[datetime]:
        """Cron fire times in (since, now], oldest first (crons fire on whole minutes)."""
        trigger = trigger_for(job, self.tz)
        times: list[datetime] = []
        cursor = since + timedelta(seconds=1)
        while len(times) < MAX_OCCURRENCES:
            fire = trigger.get_next_fire_time(None, cursor)
            if fire is None or fire > now:
                break
            times.append(fire)
            cursor = fire + timedelta(seconds=1)
        return times

    def _last_occurrence(self, job_id: str) -> datetime | None:
        with self.services.factory() as db:
            value: datetime | None = db.scalar(select(func.max(JobRun.occurrence)).where(JobRun.job_id == job_id))
            return value

    # -- one tick ---------------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> list[JobRun]:
        """Run whatever is due; returns the runs this process made (tests look at them)."""
        now = now or self.services.now()
        runs: list[JobRun] = []
        for job in self.jobs.values():
            if not job.cron:
                continue
            last = self._last_occurrence(job.id)
            since = max(last, now - LOOKBACK) if last is not None else now - timedelta(seconds=job.grace_seconds)
            due = self.due_occurrences(job, now, since)
            if not due:
                continue
            late = [t for t in due if now - t > timedelta(seconds=job.grace_seconds)]
            timely = [t for t in due if t not in late]
            for occurrence in late:
                if self._claim(job, occurrence, now, status="skipped", result=SKIPPED_LATE):
                    log.info("job %s at %s skipped: past its grace", job.id, occurrence)
            if job.coalesce and len(timely) > 1:
                for occurrence in timely[:-1]:
                    self._claim(job, occurrence, now, status="skipped", result="合并到下一次运行")
                timely = timely[-1:]
            for occurrence in timely:
                run = self._claim(job, occurrence, now)
                if run is not None:
                    runs.append(self._execute(job, run, as_of=occurrence))
        return runs

    def _claim(self, job: Job, occurrence: datetime, now: datetime, status: str = "running",
               result: str = "") -> JobRun | None:
        try:
            with self.services.factory() as db, db.begin():
                run = JobRun(job_id=job.id, occurrence=occurrence, as_of=occurrence, status=status, owner=self.owner,
                             started_at=now, result=result, finished_at=now if status != "running" else None)
                db.add(run)
                db.flush()
                return run
        except IntegrityError:
            return None  # another scheduler has it

    def _execute(self, job: Job, run: JobRun, as_of: datetime) -> JobRun:
        """Run the job in its own transaction; the run's row is finished in the same transaction."""
        started = self.services.now()
        try:
            with self.services.factory() as db, db.begin():
                ctx = JobContext(db=db, settings=self.services.settings, now=as_of)
                if job.school_days_only and not ctx.calendar.is_school_day(ctx.local_now.date()):
                    result = NOT_SCHOOL_DAY
                else:
                    result = job.func(ctx, as_of) or ""
                db.execute(update(JobRun).where(JobRun.id == run.id).values(
                    status="done", result=result, finished_at=self.services.now()))
            run.status, run.result = "done", result
        except Exception:  # noqa: BLE001 - a job bug is recorded, never kills the scheduler
            log.exception("job %s failed", job.id)
            error = traceback.format_exc(limit=20)
            with self.services.factory() as db, db.begin():
                db.execute(update(JobRun).where(JobRun.id == run.id).values(
                    status="failed", error=error, finished_at=self.services.now()))
            run.status, run.error = "failed", error
        run.started_at = started
        return run

    # -- operators --------------------------------------------------------------------------------
    def run_now(self, job_id: str, as_of: datetime | None = None) -> JobRun:
        """`houqin jobs run ID [--at]`: run one job now as if at `as_of` (school-day rule included)."""
        job = self.jobs[job_id]
        as_of = as_of or self.services.now()
        with self.services.factory() as db, db.begin():
            run = JobRun(job_id=job.id, occurrence=None, as_of=as_of, manual=True, owner=self.owner,
                         started_at=self.services.now())
            db.add(run)
            db.flush()
        return self._execute(job, run, as_of)

    def status(self, now: datetime | None = None) -> list[JobStatus]:
        now = now or self.services.now()
        rows = []
        with self.services.factory() as db:
            for job in self.jobs.values():
                last = db.scalar(select(JobRun).where(JobRun.job_id == job.id)
                                 .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1))
                nxt = trigger_for(job, self.tz).get_next_fire_time(None, now) if job.cron else None
                rows.append(JobStatus(job, describe(job), nxt, last))
        return rows

    # -- the process ------------------------------------------------------------------------------
    def start(self, interval_seconds: float = 20.0) -> BackgroundScheduler:
        """Tick now (catching up missed runs) and every `interval_seconds` after, in a background thread."""
        scheduler = BackgroundScheduler(timezone=self.tz)
        scheduler.add_job(self._safe_tick, "interval", seconds=interval_seconds, id="tick", coalesce=True,
                          max_instances=1, next_run_time=self.services.now())
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler %s started with %d jobs", self.owner, len(self.jobs))
        return scheduler

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception:  # noqa: BLE001 - the database may be restarting; try again next tick
            log.exception("scheduler tick failed")

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def run_forever(self, stop: threading.Event, interval_seconds: float = 20.0) -> None:
        self.start(interval_seconds)
        try:
            stop.wait()
        finally:
            self.stop()
