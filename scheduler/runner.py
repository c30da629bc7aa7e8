"""Running the registry exactly once, however many scheduler processes there are.

APScheduler wakes `tick` every few seconds. For each job, tick works out the cron occurrences due
since the job's last recorded one (APScheduler's CronTrigger does the calendar arithmetic), claims
each by inserting its `job_runs` row — the unique (job_id, occurrence, attempt) lets one process win
— and runs it if it is within the job's grace, else records it as skipped. With coalesce, only the
newest of several missed occurrences runs. A restart therefore catches up the same way a tick does.

A claim holds a lease, renewed while its job runs. A process killed mid-job leaves its claim
`running`; once the lease has expired, the next tick (of any scheduler) closes that attempt and runs
the occurrence again as a new attempt. That never sends twice: a job's pushes are queued in the
same transaction that marks its attempt done, and only while the attempt is still `running` — so a
killed attempt queued nothing, and an attempt taken over while it still ran rolls back.

`houqin jobs run` claims the occurrence the scheduler would run at that moment (the latest at or
before it), so the scheduler does not repeat it; `preview` runs a job and rolls it back, showing
what it would have queued.
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.services import Services
from bot.wechat.gateway import redact
from models import JobRun, Person, Push
from models.outbox import UNDELIVERABLE
from scheduler import Job, JobContext
from scheduler.registry import JOBS

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=3)  # how far back a restart looks for missed occurrences
MAX_OCCURRENCES = 500  # per job per tick, a bound on the catch-up arithmetic
LEASE = timedelta(minutes=2)  # a running claim's lease; a claim past it is taken over
RENEW_SECONDS = 30.0  # how often a running job renews its lease
RUNNING, DONE, FAILED, SKIPPED = "running", "done", "failed", "skipped"

NOT_SCHOOL_DAY = "非上课日，未执行"
SKIPPED_LATE = "错过运行时间超过宽限期，已跳过"
COALESCED = "合并到下一次运行"
TAKEN_OVER = "租约已过期（运行它的进程可能已被终止），由 {owner} 接管重跑"
SKIPPED_TAKEOVER = "租约已过期，且已超过宽限期，未重跑"
LOST_CLAIM = "运行超过租约、已被其他进程接管，本次结果已撤销（未推送）"
ALREADY_RAN = ("{job} 在 {occurrence} 的这一次已经运行过（{finished}，{status}：{result}），未重复运行。"
               "确要重新发送，请加 --force。")
STILL_RUNNING = "{job} 在 {occurrence} 的这一次正在运行（{owner}，租约到 {lease}），未重复运行。"
PREVIEW_HEAD = "{job} 试运行（--dry-run）：按 {as_of} 运行，未推送、未记录任何内容。"
PREVIEW_OCCURRENCE = "这一次{state}"
PREVIEW_NOT_RUN = "尚未运行；真实运行会占用这一次，定时任务不再重复。"
PREVIEW_RUNNING = "正在由 {owner} 运行。"
PREVIEW_RAN = "已经运行过（{status}）；真实运行需加 --force 才会再发。"
RAN_OCCURRENCE = "已运行 {occurrence} 这一次（第 {attempt} 次），定时任务不会再运行它。"
PREVIEW_NOTHING = "不会推送任何消息。"
PREVIEW_COUNT = "将推送 {count} 条："
PREVIEW_PUSH = "[{kind}] → {recipients}"
PREVIEW_UNREACHABLE = "{name}（无法送达：{reason}）"
PREVIEW_RESULT = "结果：{result}"


class OccurrenceTaken(Exception):
    """A manual run refused: the occurrence already ran, or is running under a live lease."""

    def __init__(self, run: JobRun, message: str) -> None:
        super().__init__(message)
        self.run = run


class ClaimLost(Exception):
    """The attempt was taken over while its job ran: its work must not be committed."""


@dataclass
class JobStatus:
    job: Job
    schedule: str
    next_run: datetime | None
    last_run: JobRun | None


@dataclass
class PreviewPush:
    kind: str
    text: str
    recipients: list[str]


@dataclass
class Preview:
    """What a job would do at `as_of`: its result and the pushes it would queue (all rolled back)."""

    job: Job
    as_of: datetime
    occurrence: datetime | None
    last_run: JobRun | None
    result: str
    pushes: list[PreviewPush] = field(default_factory=list)


def trigger_for(job: Job, tz: object) -> CronTrigger:
    return CronTrigger(timezone=tz, **job.cron)


def describe(job: Job) -> str:
    fields = ("month", "day", "day_of_week", "hour", "minute")
    return " ".join(f"{f}={job.cron[f]}" for f in fields if f in job.cron) or "manual"


def lease_expired(now: datetime) -> Any:
    """The condition on `job_runs` for a claim whose lease has run out (no lease: claimed before leases)."""
    return or_(JobRun.lease_until.is_(None), JobRun.lease_until < now)


class Runner:
    def __init__(self, services: Services, jobs: list[Job] | None = None) -> None:
        self.services = services
        self.jobs = {j.id: j for j in (jobs if jobs is not None else JOBS)}
        self.owner = f"scheduler-{uuid.uuid4().hex[:8]}"
        self._scheduler: BackgroundScheduler | None = None

    @property
    def tz(self):  # type: ignore[no-untyped-def]
        return self.services.settings.tz

    def local(self, moment: datetime | None) -> str:
        return f"{moment.astimezone(self.tz):%Y-%m-%d %H:%M}" if moment is not None else "-"

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

    def occurrence_at(self, job: Job, moment: datetime) -> datetime | None:
        """The occurrence a scheduler ticking at `moment` would run: the latest fire time at or before it."""
        if not job.cron:
            return None
        for back in (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367)):
            latest, since = None, moment - back
            while fires := self.due_occurrences(job, moment, since):
                latest = since = fires[-1]
                if len(fires) < MAX_OCCURRENCES:
                    break
            if latest is not None:
                return latest
        return None

    def _last_occurrence(self, job_id: str, now: datetime) -> datetime | None:
        """The newest occurrence recorded up to `now` (a manual run may have claimed a later one already)."""
        with self.services.factory() as db:
            value: datetime | None = db.scalar(select(func.max(JobRun.occurrence)).where(
                JobRun.job_id == job_id, JobRun.occurrence <= now))
            return value

    @staticmethod
    def _latest_attempt(db: Session, job_id: str, occurrence: datetime) -> JobRun | None:
        return db.scalar(select(JobRun).where(JobRun.job_id == job_id, JobRun.occurrence == occurrence)
                         .order_by(JobRun.attempt.desc()).limit(1))

    # -- one tick ---------------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> list[JobRun]:
        """Run whatever is due; returns the runs this process made (tests look at them)."""
        now = now or self.services.now()
        runs = self._take_over_expired(now)
        for job in self.jobs.values():
            if not job.cron:
                continue
            last = self._last_occurrence(job.id, now)
            since = max(last, now - LOOKBACK) if last is not None else now - timedelta(seconds=job.grace_seconds)
            due = self.due_occurrences(job, now, since)
            if not due:
                continue
            late = [t for t in due if now - t > timedelta(seconds=job.grace_seconds)]
            timely = [t for t in due if t not in late]
            for occurrence in late:
                if self._claim(job, occurrence, now, status=SKIPPED, result=SKIPPED_LATE):
                    log.info("job %s at %s skipped: past its grace", job.id, occurrence)
            if job.coalesce and len(timely) > 1:
                for occurrence in timely[:-1]:
                    self._claim(job, occurrence, now, status=SKIPPED, result=COALESCED)
                timely = timely[-1:]
            for occurrence in timely:
                run = self._claim(job, occurrence, now)
                if run is not None:
                    runs.append(self._execute(job, run, as_of=occurrence))
        return runs

    def _take_over_expired(self, now: datetime) -> list[JobRun]:
        """Claims left `running` past their lease (their process died): run each occurrence again, or
        record it as skipped when it is past the job's grace."""
        with self.services.factory() as db:
            stale = list(db.scalars(select(JobRun).where(
                JobRun.status == RUNNING, JobRun.occurrence.is_not(None), JobRun.job_id.in_(list(self.jobs)),
                lease_expired(now)).order_by(JobRun.occurrence)))
        runs = []
        for previous in stale:
            assert previous.occurrence is not None
            job = self.jobs[previous.job_id]
            late = now - previous.occurrence > timedelta(seconds=job.grace_seconds)
            run = self._take_over(job, previous, now, as_of=previous.as_of, status=SKIPPED if late else RUNNING,
                                  result=SKIPPED_TAKEOVER if late else "")
            if run is None:
                continue  # another scheduler took it over, or it finished after all
            log.warning("job %s at %s: took over %s's expired claim", job.id, previous.occurrence, previous.owner)
            if run.status == RUNNING:
                runs.append(self._execute(job, run, as_of=run.as_of))
        return runs

    def _claim(self, job: Job, occurrence: datetime | None, now: datetime, status: str = RUNNING,
               result: str = "", *, as_of: datetime | None = None, manual: bool = False,
               attempt: int = 1) -> JobRun | None:
        """Insert an attempt's row; None when another process holds that attempt already."""
        try:
            with self.services.factory() as db, db.begin():
                return self._insert(db, job, occurrence, now, status, result, as_of=as_of, manual=manual,
                                    attempt=attempt)
        except IntegrityError:
            return None  # another scheduler has it

    def _insert(self, db: Session, job: Job, occurrence: datetime | None, now: datetime, status: str, result: str,
                *, as_of: datetime | None, manual: bool, attempt: int) -> JobRun:
        running = status == RUNNING
        run = JobRun(job_id=job.id, occurrence=occurrence, attempt=attempt, as_of=as_of or occurrence or now,
                     manual=manual, status=status, owner=self.owner, started_at=now, result=result,
                     lease_until=now + LEASE if running else None, finished_at=None if running else now)
        db.add(run)
        db.flush()
        return run

    def _take_over(self, job: Job, previous: JobRun, now: datetime, *, as_of: datetime, status: str = RUNNING,
                   result: str = "", manual: bool = False) -> JobRun | None:
        """Claim `previous`'s occurrence again as the next attempt, closing `previous` first if it was left
        running with an expired lease — both in one transaction. None if another process got there first."""
        try:
            with self.services.factory() as db, db.begin():
                if previous.status == RUNNING:
                    closed = db.execute(update(JobRun).where(
                        JobRun.id == previous.id, JobRun.status == RUNNING, lease_expired(now)).values(
                        status=FAILED, error=TAKEN_OVER.format(owner=self.owner), finished_at=now, lease_until=None))
                    if closed.rowcount != 1:  # type: ignore[attr-defined]
                        return None  # it finished after all, or someone else closed it
                return self._insert(db, job, previous.occurrence, now, status, result, as_of=as_of, manual=manual,
                                    attempt=previous.attempt + 1)
        except IntegrityError:
            return None

    def _call(self, job: Job, ctx: JobContext, as_of: datetime) -> str:
        """The job itself, with the school-day rule."""
        if job.school_days_only and not ctx.calendar.is_school_day(ctx.local_now.date()):
            return NOT_SCHOOL_DAY
        return job.func(ctx, as_of) or ""

    def _settings(self) -> Settings:
        """The school's settings with its template ids as stored now: `houqin templates set` while this
        scheduler runs reaches the next job (its outbox judges by them whether a push can go as a template,
        or is undeliverable outside the 48-hour window), as the web process's and the worker's do: looked at
        here (Services.templates_now), before the job's transaction touches the database."""
        self.services.templates_now()
        return self.services.settings

    def _execute(self, job: Job, run: JobRun, as_of: datetime) -> JobRun:
        """Run the job in its own transaction; the run's row is finished in the same transaction, and only
        if this attempt still holds its claim (else everything the job did is rolled back)."""
        started = self.services.now()
        try:
            with self._renewing(run), self.services.factory() as db, db.begin():
                ctx = JobContext(db=db, settings=self._settings(), now=as_of, services=self.services)
                result = self._call(job, ctx, as_of)
                finished = db.execute(update(JobRun).where(JobRun.id == run.id, JobRun.status == RUNNING).values(
                    status=DONE, result=result, finished_at=self.services.now(), lease_until=None))
                if finished.rowcount != 1:  # type: ignore[attr-defined]
                    raise ClaimLost
            run.status, run.result = DONE, result
        except ClaimLost:
            log.warning("job %s at %s was taken over while it ran; its work is rolled back", job.id, run.occurrence)
            run.status, run.error = FAILED, LOST_CLAIM
        except Exception:  # noqa: BLE001 - a job bug is recorded, never kills the scheduler
            log.exception("job %s failed", job.id)
            error = redact(traceback.format_exc(limit=20))  # stored and shown: no token or secret
            with self.services.factory() as db, db.begin():
                db.execute(update(JobRun).where(JobRun.id == run.id, JobRun.status == RUNNING).values(
                    status=FAILED, error=error, finished_at=self.services.now(), lease_until=None))
            run.status, run.error = FAILED, error
        run.started_at = started
        return run

    @contextmanager
    def _renewing(self, run: JobRun) -> Iterator[None]:
        """Renew the attempt's lease every RENEW_SECONDS while its job runs."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(RENEW_SECONDS):
                try:
                    with self.services.factory() as db, db.begin():
                        db.execute(update(JobRun).where(JobRun.id == run.id, JobRun.status == RUNNING).values(
                            lease_until=self.services.now() + LEASE))
                except Exception:  # noqa: BLE001 - the next renewal tries again; the lease is long enough
                    log.warning("could not renew the lease of job %s", run.job_id, exc_info=True)

        renewer = threading.Thread(target=renew, name=f"lease-{run.job_id}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()

    # -- operators --------------------------------------------------------------------------------
    def run_now(self, job_id: str, as_of: datetime | None = None, *, force: bool = False) -> JobRun:
        """`houqin jobs run ID [--at]`: run the occurrence a scheduler ticking at `as_of` (default now)
        would run — the latest at or before it, as of its own time, school-day rule included — and
        claim it, so that no scheduler runs it again. A job without a schedule runs as of `as_of`.
        Raises OccurrenceTaken if that occurrence already ran (unless `force`) or is running."""
        job = self.jobs[job_id]
        now = self.services.now()
        occurrence, as_of = self._by_hand(job, as_of or now)
        run = self._claim(job, occurrence, now, as_of=as_of, manual=True)
        while run is None:  # the occurrence has a row: run it again only if that is safe or forced
            assert occurrence is not None
            with self.services.factory() as db:
                latest = self._latest_attempt(db, job.id, occurrence)
            assert latest is not None
            refusal = self._refusal(job, latest, now, force)
            if refusal:
                raise OccurrenceTaken(latest, refusal)
            run = self._take_over(job, latest, now, as_of=as_of, manual=True)
        return self._execute(job, run, as_of)

    def _by_hand(self, job: Job, moment: datetime) -> tuple[datetime | None, datetime]:
        """A run by hand at `moment`: the occurrence it stands for, and the time it runs as of."""
        occurrence = self.occurrence_at(job, moment)
        return occurrence, occurrence or moment

    def _refusal(self, job: Job, latest: JobRun, now: datetime, force: bool) -> str:
        """Why the occurrence of `latest` must not run again now ("" if it may)."""
        occurrence = self.local(latest.occurrence)
        if latest.status == RUNNING and latest.lease_until is not None and latest.lease_until >= now:
            return STILL_RUNNING.format(job=job.id, occurrence=occurrence, owner=latest.owner,
                                        lease=self.local(latest.lease_until))
        if latest.status == DONE and not force:
            return ALREADY_RAN.format(job=job.id, occurrence=occurrence, status=latest.status,
                                      finished=self.local(latest.finished_at), result=latest.result or "-")
        return ""  # failed or skipped (nothing was sent), an expired claim, or a forced re-run

    def preview(self, job_id: str, as_of: datetime | None = None) -> Preview:
        """`houqin jobs run ID --dry-run`: run the job as `run_now` would, collect the pushes it queues,
        and roll everything back — nothing is queued, claimed or changed."""
        job = self.jobs[job_id]
        occurrence, as_of = self._by_hand(job, as_of or self.services.now())
        queued: list[Push] = []
        with self.services.factory() as db:
            event.listen(db, "transient_to_pending", lambda _s, obj: queued.append(obj) if isinstance(obj, Push) else None)
            db.begin()
            try:
                last = self._latest_attempt(db, job.id, occurrence) if occurrence is not None else None
                result = self._call(job, JobContext(db=db, settings=self._settings(), now=as_of), as_of)
                db.flush()
                preview = Preview(job, as_of, occurrence, last, result,
                                  [self._describe_push(db, push) for push in queued])
                if last is not None:
                    db.expunge(last)  # keep it readable after the rollback
            finally:
                db.rollback()
        return preview

    def _describe_push(self, db: Session, push: Push) -> PreviewPush:
        ids = {d.person_id for d in push.deliveries if d.person_id is not None}
        names = {pid: name for pid, name in db.execute(select(Person.id, Person.name).where(Person.id.in_(ids)))}
        recipients: dict[str, str] = {}
        for d in push.deliveries:
            name = names.get(d.person_id, d.openid) if d.person_id is not None else d.openid
            unreachable = d.status == UNDELIVERABLE
            recipients[name] = PREVIEW_UNREACHABLE.format(name=name, reason=d.last_error or "") if unreachable else name
        return PreviewPush(push.kind, push.text, list(recipients.values()))

    def preview_lines(self, preview: Preview) -> list[str]:
        """The preview as an operator reads it: each push's kind, recipients and text, then the result."""
        lines = [PREVIEW_HEAD.format(job=preview.job.id, as_of=self.local(preview.as_of))]
        if preview.occurrence is not None:
            last = preview.last_run
            status = last.status if last is not None else ""
            state = (PREVIEW_RAN.format(status=status) if status == DONE else
                     PREVIEW_RUNNING.format(owner=last.owner) if last is not None and status == RUNNING else
                     PREVIEW_NOT_RUN)
            lines.append(PREVIEW_OCCURRENCE.format(state=state))
        lines.append(PREVIEW_COUNT.format(count=len(preview.pushes)) if preview.pushes else PREVIEW_NOTHING)
        for push in preview.pushes:
            lines.append(PREVIEW_PUSH.format(kind=push.kind, recipients="、".join(push.recipients)))
            lines.extend(f"    {line}" for line in push.text.splitlines())
        lines.append(PREVIEW_RESULT.format(result=preview.result or "-"))
        return lines

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


class CountyRunner:
    """One scheduler for every school of the installation (bot.county): each tick runs each school's
    registry in that school's namespace, timezone and calendar, through that school's own Runner, so
    its `job_runs` claims keep several schedulers from running a school's occurrence twice. A school
    added while it runs is picked up at the next tick."""

    def __init__(self, services: Services, jobs: list[Job] | None = None) -> None:
        from bot.county import County

        self.county = County.of(services)
        self.jobs = jobs
        self.runners: dict[str, Runner] = {}
        self._scheduler: BackgroundScheduler | None = None

    def runner(self, slug: str) -> Runner:
        if slug not in self.runners:
            self.runners[slug] = Runner(self.county.services(slug), self.jobs)
        return self.runners[slug]

    def tick(self, now: datetime | None = None) -> dict[str, list[JobRun]]:
        """Tick every school; one school's failure does not stop the others'. Returns each school's runs."""
        done: dict[str, list[JobRun]] = {}
        for entry in self.county.schools():
            try:
                done[entry.slug] = self.runner(entry.slug).tick(now)
            except Exception:  # noqa: BLE001 - that school's database may be restarting
                log.exception("scheduler tick failed for school %s", entry.slug)
        return done

    def start(self, interval_seconds: float = 20.0) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone=self.county.default.settings.tz)
        scheduler.add_job(self.tick, "interval", seconds=interval_seconds, id="tick", coalesce=True,
                          max_instances=1, next_run_time=self.county.default.now())
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler started for %d school(s)", len(self.county.schools()))
        return scheduler

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
