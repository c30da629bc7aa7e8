"""Photos kept from WeChat: the download state every such row shares (repair photos, canteen
feedback photos). WeChat keeps media 3 days, so the media worker (bot/wechat/media.py) downloads each
row at once into the storage folder, leasing rows like deliveries; see `DownloadedPhoto`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import utcnow

PHOTO_PENDING, PHOTO_DOWNLOADING, PHOTO_SAVED, PHOTO_FAILED = "pending", "downloading", "saved", "failed"


class DownloadedPhoto:
    """The columns of a photo the media worker downloads: a pending row is due at `next_attempt_at`;
    a claimed one is `downloading` until `lease_until`; it ends `saved` (at `path`, relative to the
    storage folder) or `failed` (WeChat refused the media id, or every attempt failed: `last_error`).
    Each model adds its own owner and an index on (status, next_attempt_at) for the worker's claim."""

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=PHOTO_PENDING)
    path: Mapped[str] = mapped_column(String(300), default="")  # relative to the storage folder
    content_type: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claim: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    saved_at: Mapped[datetime | None] = mapped_column()

    def replace_media(self, media_id: str, now: datetime) -> None:
        """Start over with another media id: pending and due at `now`. A download of the old one
        still under way finds its claim gone and records nothing."""
        self.media_id, self.status, self.next_attempt_at, self.created_at = media_id[:200], PHOTO_PENDING, now, now
        self.path, self.content_type, self.size, self.attempts = "", "", 0, 0
        self.claim = self.lease_until = self.last_error = self.saved_at = None
