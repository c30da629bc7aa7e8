"""Scheduled jobs: plain functions `(ctx, now) -> str` and the one registry of when they run
(scheduler/registry.py). scheduler/runner.py claims and runs their occurrences exactly once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.outbox import Outbox
from bot.school import Calendar

if TYPE_CHECKING:
    from bot.services import Services


@dataclass
class JobContext:
    """What a job may use: the run's session, settings, the outbox and the school calendar."""

    db: Session
    settings: Settings
    now: datetime
    # the school's Services, for the jobs that look beyond its session (the county digest); None in a preview
    services: Services | None = None

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.db, self.settings, self.now)

    @cached_property
    def calendar(self) -> Calendar:
        return Calendar(self.db)

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.settings.tz)


JobFunc = Callable[[JobContext, datetime], str]


@dataclass(frozen=True)
class Job:
    """When a job runs: cron fields in the school's timezone (APScheduler's CronTrigger names)."""

    id: str
    func: JobFunc
    cron: dict[str, str] = field(default_factory=dict)
    description: str = ""
    school_days_only: bool = False
    grace_seconds: int = 3600
    coalesce: bool = True
