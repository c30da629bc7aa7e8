"""One `houqin serve` per instance: an exclusive lock on `instance/serve.lock`, held for the life of the
process (the kernel lets it go when the process ends, however it ends), naming its pid and port."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

SERVE_LOCK = "serve.lock"
ALREADY_SERVING = ("已有一个 houqin serve 在运行（pid {pid}，端口 {port}）：同一个实例只能运行一个。"
                   "请先停止它，或用 HOUQIN_INSTANCE 指向另一个实例文件夹")
UNKNOWN = "未知"


class AlreadyServing(RuntimeError):
    """Another `houqin serve` holds the instance; the message names its pid and port."""


class ServeLock:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def claim(cls, instance_dir: Path, port: int) -> ServeLock:
        """Take the instance for this process, or raise AlreadyServing naming the one that has it."""
        fd = os.open(instance_dir / SERVE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise AlreadyServing(ALREADY_SERVING.format(pid=holder.get("pid", UNKNOWN),
                                                        port=holder.get("port", UNKNOWN))) from None
        lock = cls(fd)
        lock.record(port)
        return lock

    def record(self, port: int) -> None:
        """Name this process and the port it listens on (the real one, once bound) for a second serve."""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps({"pid": os.getpid(), "port": port}).encode(), 0)

    def release(self) -> None:
        os.close(self.fd)  # also lets the lock go


def _holder(fd: int) -> dict[str, object]:
    try:
        found = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:  # the holder is between truncating and writing
        return {}
    return found if isinstance(found, dict) else {}
