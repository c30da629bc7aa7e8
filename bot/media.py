"""The media worker: downloads the photos attached to tickets at once (WeChat keeps media 3 days)
into the storage folder, and records where each one went.

Photo rows are claimed with a lease, like deliveries, so any number of workers share them; a
transient failure (time-out, HTTP error, WeChat busy) is retried with backoff, a refused media id
is recorded as failed.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.gateway import ApiError, WeChatApi
from bot.worker import drain_rounds
from models import RepairTicket, TicketPhoto, utcnow
from models.repair import PHOTO_DOWNLOADING, PHOTO_FAILED, PHOTO_PENDING, PHOTO_SAVED

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

EXTENSIONS = {"image/jpeg": ".jpg", "image/jpg": ".jpg", "image/png": ".png", "image/gif": ".gif",
              "image/webp": ".webp", "image/bmp": ".bmp"}
FOLDER = "repairs"


@dataclass
class Claimed:
    photo_id: int
    media_id: str
    kind: str
    attempts: int
    claim: str
    ticket_code: str


class MediaWorker:
    def __init__(self, factory: sessionmaker[Session], settings: Settings, api: WeChatApi,
                 clock: Callable[[], datetime] = utcnow, batch_size: int = 8, lease_seconds: float = 120.0,
                 max_attempts: int = 8, backoff_seconds: float = 10.0) -> None:
        self.factory = factory
        self.settings = settings
        self.api = api
        self.clock = clock
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.worker_id = uuid.uuid4().hex[:12]

    def claim(self) -> list[Claimed]:
        now = self.clock()
        token = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        with self.factory() as db, db.begin():
            due = (select(TicketPhoto.id)
                   .where(or_(and_(TicketPhoto.status == PHOTO_PENDING, TicketPhoto.next_attempt_at <= now),
                              and_(TicketPhoto.status == PHOTO_DOWNLOADING, TicketPhoto.lease_until < now)))
                   .order_by(TicketPhoto.next_attempt_at, TicketPhoto.id).limit(self.batch_size))
            if db.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(db.scalars(due))
            if not ids:
                return []
            db.execute(update(TicketPhoto).where(TicketPhoto.id.in_(ids)).values(
                status=PHOTO_DOWNLOADING, claim=token, attempts=TicketPhoto.attempts + 1, lease_until=now + self.lease))
            rows = db.execute(select(TicketPhoto, RepairTicket.number).join(RepairTicket)
                              .where(TicketPhoto.claim == token).order_by(TicketPhoto.id)).all()
            return [Claimed(p.id, p.media_id, p.kind, p.attempts, token, f"R{number}") for p, number in rows]

    def _save(self, job: Claimed, content: bytes, content_type: str) -> str:
        """Write the file under storage/repairs/R<n>/ and return its path relative to the storage folder."""
        mime = content_type.split(";")[0].strip().lower()
        relative = Path(FOLDER) / job.ticket_code / f"{job.photo_id}-{job.kind}{EXTENSIONS.get(mime, '.bin')}"
        target = self.settings.storage_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_bytes(content)
        partial.replace(target)  # never a half-written photo under the final name
        return relative.as_posix()

    def _download(self, job: Claimed) -> dict[str, object]:
        """What to record for one photo."""
        try:
            content, content_type = self.api.download_media(job.media_id)
            path = self._save(job, content, content_type)
            return {"status": PHOTO_SAVED, "path": path, "content_type": content_type[:64], "size": len(content),
                    "saved_at": self.clock(), "last_error": None}
        except ApiError as exc:
            if not (exc.transient or exc.token_expired):
                return {"status": PHOTO_FAILED, "last_error": str(exc)}
            error = str(exc)
        except OSError as exc:
            log.exception("cannot store photo %s", job.photo_id)
            error = f"{type(exc).__name__}: {exc}"
        if job.attempts >= self.max_attempts:
            return {"status": PHOTO_FAILED, "last_error": f"{error} (gave up after {job.attempts} attempts)"}
        backoff = self.backoff_seconds * 2 ** (job.attempts - 1)
        return {"status": PHOTO_PENDING, "last_error": error, "next_attempt_at": self.clock() + timedelta(seconds=backoff)}

    def run_once(self) -> int:
        """Claim a batch, download each photo, record the outcomes. Returns how many were handled."""
        batch = self.claim()
        for job in batch:
            values = self._download(job)
            with self.factory() as db, db.begin():
                db.execute(update(TicketPhoto).where(TicketPhoto.id == job.photo_id, TicketPhoto.claim == job.claim)
                           .values(**values, claim=None, lease_until=None))
        return len(batch)

    def drain(self, timeout: float = 30.0) -> int:
        """Download everything due now (tests, operators); returns how many were handled."""
        return drain_rounds(self.run_once, timeout)

    def run_forever(self, stop: threading.Event, idle_sleep: float = 1.0) -> None:
        log.info("media worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                if not self.run_once():
                    stop.wait(idle_sleep)
            except Exception:  # noqa: BLE001 - keep the worker alive; the database may be restarting
                log.exception("media worker round failed")
                stop.wait(2.0)


def media_worker(services: Services) -> MediaWorker:
    """The media worker for a process's Services (its factory, settings, API client and clock)."""
    return MediaWorker(services.factory, services.settings, services.api, clock=services.now)
