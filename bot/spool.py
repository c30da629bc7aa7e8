"""The spool: messages kept on this machine's disk while the database cannot be reached.

When the inbox cannot store a message (`DatabaseUnavailable`), the webhook answers a fixed apology
and the message is written here, one file per message in `instance/spool/`: written to a temporary
file, fsync'd, renamed into place and the folder fsync'd, mode 0600. A file's name starts with a
sequence number, so the names sort in arrival order, then carries a digest of the message's
de-duplication key, so WeChat retrying a message while the database is down keeps one file, and
one of its sender, so a sender's next message can wait behind it (`holds`).

Whichever process on this machine next gets to it — the next webhook request, the background
tick of `houqin serve` / `houqin worker`, or `houqin spool replay` — hands the files, oldest first,
back to the inbox, and deletes each one only after its message was committed. One replayer at a
time holds the replay lock; the inbox's unique key on each message makes a replay that is repeated
(a crash between the commit and the delete) answer from the stored copy instead of handling it again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from bot.engine import Incoming
from bot.private import private_dir

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{20})-([0-9a-f]{20})-([0-9a-f]{12})\.json$")
_WRITE_LOCK, _REPLAY_LOCK = ".write.lock", ".replay.lock"


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached (connect, begin or store failed): keep the message here."""


def _digest(key: str, size: int = 20) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:size]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    # -- keeping ---------------------------------------------------------------------------------
    def keep(self, msg: Incoming, received_at: datetime) -> Path:
        """Write `msg` durably; returns its file. A retry of a message already here is not written again."""
        private_dir(self.folder)
        digest = _digest(msg.dedup_key)
        with self._lock(_WRITE_LOCK, wait=True):
            files = self.files()
            for path in files:
                if _NAME.match(path.name)[2] == digest:  # type: ignore[index]
                    return path
            last = int(files[-1].name[:20]) if files else 0
            path = self.folder / f"{max(time.time_ns(), last + 1):020d}-{digest}-{_digest(msg.openid, 12)}.json"
            body = json.dumps({"dedup_key": msg.dedup_key, "openid": msg.openid,
                               "received_at": received_at.isoformat(), "message": msg.raw},
                              ensure_ascii=False, default=str).encode("utf-8")
            temporary = self.folder / f".{path.name}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
            _fsync_dir(self.folder)
        log.warning("database unreachable: message %s from %s kept in %s", msg.dedup_key, msg.openid, path)
        return path

    def files(self) -> list[Path]:
        """The kept messages, oldest first (cheap when there are none)."""
        try:
            names = [entry.name for entry in os.scandir(self.folder) if _NAME.match(entry.name)]
        except FileNotFoundError:
            return []
        return [self.folder / name for name in sorted(names)]

    def holds(self, openid: str) -> bool:
        """Whether a message from `openid` still waits here (then their next one must wait too)."""
        sender = _digest(openid, 12)
        return any(_NAME.match(path.name)[3] == sender for path in self.files())  # type: ignore[index]

    # -- replaying -------------------------------------------------------------------------------
    def replay(self, handle: Callable[[Incoming, datetime], str], budget: float | None = None) -> int:
        """Hand each kept message to `handle` (which stores and commits it) in arrival order, and
        delete its file once `handle` returned. Returns how many were handed over; 0 when another
        replayer holds the lock. With `budget` (seconds), no new file is started after it is spent.
        `DatabaseUnavailable` from `handle` stops the replay and is raised: the rest stays kept."""
        if not self.files():
            return 0
        deadline = None if budget is None else time.monotonic() + budget
        done = 0
        with self._lock(_REPLAY_LOCK, wait=False) as mine:
            if not mine:
                return 0
            while files := self.files():  # again: messages kept while the first ones were replayed
                for path in files:
                    if deadline is not None and time.monotonic() >= deadline:
                        return done
                    kept = self._read(path)
                    if kept is None:
                        continue
                    handle(*kept)
                    done += 1
                    path.unlink()
                    _fsync_dir(self.folder)
        return done

    def _read(self, path: Path) -> tuple[Incoming, datetime] | None:
        try:
            data = json.loads(path.read_bytes())
            return Incoming.from_wechat(data["message"]), datetime.fromisoformat(data["received_at"])
        except (ValueError, KeyError, TypeError):
            # Never dropped: set aside under a name replay skips, for someone to look at.
            aside = path.with_name("unreadable-" + path.name)
            log.error("spooled message %s is unreadable; kept as %s", path.name, aside.name)
            os.replace(path, aside)
            return None

    def replay_forever(self, handle: Callable[[Incoming, datetime], str], stop: threading.Event,
                       interval: float = 2.0) -> None:
        """The background tick of `houqin serve` and `houqin worker`: replay every `interval` seconds."""
        while not stop.wait(interval):
            try:
                if count := self.replay(handle):
                    log.info("replayed %d spooled message(s)", count)
            except DatabaseUnavailable:
                pass  # still down: the files wait for the next tick
            except Exception:  # noqa: BLE001 - keep ticking; the files stay
                log.exception("spool replay failed")

    @contextmanager
    def _lock(self, name: str, *, wait: bool) -> Iterator[bool]:
        """An exclusive flock on a file in the spool folder (shared by every process on this machine)."""
        private_dir(self.folder)
        fd = os.open(self.folder / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)
