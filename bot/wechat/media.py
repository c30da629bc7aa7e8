"""The media worker: downloads photos at once (WeChat keeps media 3 days) into the storage folder,
and records where each one went: repair photos (repairs/R<n>/) and canteen feedback photos
(canteen/F<n>/), one list of `SOURCES`.

Photo rows are claimed with a lease, like deliveries, so any number of workers share them; a
transient failure (time-out, HTTP error, WeChat busy) is retried with backoff, a refused media id
is recorded as failed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from bot.config import Settings
from bot.private import write_private
from bot.wechat.gateway import IMAGE_TYPES, ApiError, BadMedia, WeChatApi, redact
from bot.worker import drain_rounds, run_rounds
from models import (
    Asset,
    AssetPhoto,
    CanteenFeedback,
    DownloadedPhoto,
    FeedbackPhoto,
    RepairTicket,
    StocktakeCheck,
    StocktakePhoto,
    TaskOccurrence,
    TaskPhoto,
    TicketPhoto,
    utcnow,
)
from models.media import PHOTO_DOWNLOADING, PHOTO_FAILED, PHOTO_PENDING, PHOTO_SAVED

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


def ticket_file(photo: TicketPhoto, number: int) -> str:
    return f"repairs/R{number}/{photo.id}-{photo.kind}"


def feedback_file(photo: FeedbackPhoto, number: int) -> str:
    """A replacement photo keeps the row but not the file name: the first file stays, and a late
    download of the replaced media cannot overwrite the new one."""
    digest = hashlib.sha256(photo.media_id.encode()).hexdigest()[:8]
    return f"canteen/F{number}/{photo.id}-{digest}"


def task_file(photo: TaskPhoto, number: int) -> str:
    """As a feedback photo: a replaced photo's late download cannot overwrite the new one."""
    digest = hashlib.sha256(photo.media_id.encode()).hexdigest()[:8]
    return f"tasks/T{number}/{photo.id}-{digest}"


@dataclass(frozen=True)
class Source:
    """One kind of photo the worker downloads: its rows, the number of what each belongs to (joined
    in), and where its file goes: (row, number) → its path under the storage folder, less the extension."""

    model: type[DownloadedPhoto]
    number: InstrumentedAttribute[int]
    file: Callable[[Any, int], str]


def asset_file(photo: AssetPhoto, number: int) -> str:
    return f"assets/{number}/{photo.id}-{hashlib.sha256(photo.media_id.encode()).hexdigest()[:8]}"


def stocktake_file(photo: StocktakePhoto, number: int) -> str:
    return f"stocktakes/{number}/{photo.id}-{hashlib.sha256(photo.media_id.encode()).hexdigest()[:8]}"


SOURCES = (Source(TicketPhoto, RepairTicket.number, ticket_file),
           Source(FeedbackPhoto, CanteenFeedback.number, feedback_file),
           Source(TaskPhoto, TaskOccurrence.number, task_file),
           Source(AssetPhoto, Asset.id, asset_file),
           Source(StocktakePhoto, StocktakeCheck.id, stocktake_file))


@dataclass
class Claimed:
    photo_id: int
    media_id: str
    attempts: int
    claim: str
    file: str  # under the storage folder, less the extension


class MediaWorker:
    def __init__(self, factory: sessionmaker[Session], settings: Settings, api: WeChatApi,
                 clock: Callable[[], datetime] = utcnow, batch_size: int = 8, lease_seconds: float = 120.0,
                 max_attempts: int = 8, backoff_seconds: float = 10.0, sources: Sequence[Source] = SOURCES) -> None:
        self.factory = factory
        self.settings = settings
        self.api = api
        self.clock = clock
        self.batch_size = batch_size  # per source and round
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sources = tuple(sources)
        self.worker_id = uuid.uuid4().hex[:12]

    def claim(self) -> list[Claimed]:
        """Lease a batch of due photos of every source."""
        return [job for source in self.sources for job in self._claim(source)]

    def _claim(self, source: Source) -> list[Claimed]:
        now = self.clock()
        token = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        photo = source.model
        with self.factory() as db, db.begin():
            due = (select(photo.id)
                   .where(or_(and_(photo.status == PHOTO_PENDING, photo.next_attempt_at <= now),
                              and_(photo.status == PHOTO_DOWNLOADING, photo.lease_until < now)))
                   .order_by(photo.next_attempt_at, photo.id).limit(self.batch_size))
            if db.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(db.scalars(due))
            if not ids:
                return []
            db.execute(update(photo).where(photo.id.in_(ids)).values(
                status=PHOTO_DOWNLOADING, claim=token, attempts=photo.attempts + 1, lease_until=now + self.lease))
            rows = db.execute(select(photo, source.number).join(source.number.class_)
                              .where(photo.claim == token).order_by(photo.id)).all()
            return [Claimed(p.id, p.media_id, p.attempts, token, source.file(p, number)) for p, number in rows]

    def _save(self, job: Claimed, content: bytes, image_type: str) -> str:
        """Write the file under the storage folder and return its path relative to it."""
        relative = Path(job.file + IMAGE_TYPES[image_type])
        write_private(self.settings.storage_dir / relative, content)  # never half-written under its name
        return relative.as_posix()

    def _download(self, job: Claimed) -> dict[str, object]:
        """What to record for one photo."""
        try:
            content, image_type = self.api.download_media(job.media_id, self.settings.photo_max_bytes,
                                                          self.settings.photo_deadline_seconds)
            path = self._save(job, content, image_type)
            return {"status": PHOTO_SAVED, "path": path, "content_type": image_type, "size": len(content),
                    "saved_at": self.clock(), "last_error": None}
        except BadMedia as exc:  # too large, or no image: fetching it again changes nothing
            return {"status": PHOTO_FAILED, "last_error": str(exc)}
        except ApiError as exc:
            if not (exc.transient or exc.token_expired):
                return {"status": PHOTO_FAILED, "last_error": str(exc)}
            error = str(exc)
        except OSError as exc:
            log.exception("cannot store photo %s", job.file)
            error = redact(f"{type(exc).__name__}: {exc}")
        if job.attempts >= self.max_attempts:
            return {"status": PHOTO_FAILED, "last_error": f"{error} (gave up after {job.attempts} attempts)"}
        backoff = self.backoff_seconds * 2 ** (job.attempts - 1)
        return {"status": PHOTO_PENDING, "last_error": error, "next_attempt_at": self.clock() + timedelta(seconds=backoff)}

    def run_once(self) -> int:
        """For each source: claim a batch, download each photo, record the outcomes (only while the
        claim is still the row's). Returns how many were handled."""
        handled = 0
        for source in self.sources:
            batch = self._claim(source)
            photo = source.model
            for job in batch:
                values = self._download(job)
                with self.factory() as db, db.begin():
                    db.execute(update(photo).where(photo.id == job.photo_id, photo.claim == job.claim)
                               .values(**values, claim=None, lease_until=None))
            handled += len(batch)
        return handled

    def drain(self, timeout: float = 30.0) -> int:
        """Download everything due now (tests, operators); returns how many were handled."""
        return drain_rounds(self.run_once, timeout)

    def run_forever(self, stop: threading.Event, idle_sleep: float = 1.0) -> None:
        log.info("media worker %s started", self.worker_id)
        run_rounds(self.run_once, stop, idle_sleep, "media worker")


def media_worker(services: Services) -> MediaWorker:
    """The media worker for a process's Services (its factory, settings, API client and clock)."""
    return MediaWorker(services.factory, services.settings, services.api, clock=services.now)
