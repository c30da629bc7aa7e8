"""Files only the account that runs Houqin may read: the instance folder and every folder made in it
0700, every file 0600, from the moment it exists (never created open and narrowed afterwards).

The instance holds the SQLite database (bind codes, password hashes, every message), houqin.env
(the secrets), runtime.json, the spool and the photos. Modes are given at creation (`os.open` with
O_EXCL and 0600, `mkdir` with 0700), not by changing the process's umask, which every thread shares.
An instance made before this, or loosened by hand, is named at start-up (`exposure_warning`).
"""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
EXPOSED = ("⚠ 实例文件夹 {folder} 里有其他用户可以读取的内容：{names}。其中有数据库（绑定码、密码摘要、全部消息）、"
           "密钥和照片；请运行 chmod -R go-rwx {folder}")


def private_dir(path: Path) -> Path:
    """`mkdir -p path`, each folder it creates 0700 (folders already there are left as they are)."""
    missing = []
    level = path
    while not level.exists() and level != level.parent:
        missing.append(level)
        level = level.parent
    for folder in reversed(missing):
        with suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=PRIVATE_DIR)
    return path


def create_private_file(path: Path) -> bool:
    """An empty file, 0600, unless one is there already (O_EXCL: never someone else's file opened).
    True if it was created. For files another program fills, like SQLite's database."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private(path: Path, data: bytes | str, replace: bool = True) -> bool:
    """Write `path` whole and 0600 from its first byte: into a new temporary file beside it (O_EXCL),
    then renamed over `path` — or, without `replace`, put there only if there is no `path` yet (a
    hard link cannot overwrite). True if `path` now holds `data`."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temporary)


def exposed(folder: Path) -> list[Path]:
    """The instance folder, and what is directly in it, that the group or others may read, write or
    enter. (What lies deeper is out of their reach once the folder is 0700.)"""
    try:
        found = [folder] if folder.stat().st_mode & _OTHERS else []
        found += sorted(entry for entry in folder.iterdir() if entry.lstat().st_mode & _OTHERS
                        and not entry.is_symlink())
    except OSError:  # no instance here (a configured environment needs none)
        return []
    return found


def exposure_warning(folder: Path) -> str | None:
    """What start-up says when the instance can be read by other users, or None."""
    found = exposed(folder)
    if not found:
        return None
    names = "、".join("文件夹本身" if path == folder else path.name for path in found)
    return EXPOSED.format(folder=folder, names=names)
