"""The instance folder is the account's alone: created 0700 with every file in it 0600 from the start
(database, secrets, runtime file, spool, photos), whatever the umask; an instance others can read is
named at start-up with the fix."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from pathlib import Path

from sqlalchemy import select

from bot.config import embedded_environment
from bot.private import write_private
from bot.services import Services
from models import TicketPhoto
from tests.test_processes import HOUQIN, clean_env, free_port, stop, wait_for


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def modes(folder: Path) -> dict[str, int]:
    """Every folder and file under `folder` (itself included), relative name -> permission bits."""
    found = {".": mode(folder)}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            found[str(path.relative_to(folder))] = mode(path)
    return found


def loose(found: dict[str, int]) -> dict[str, str]:
    return {name: oct(bits) for name, bits in found.items() if bits & 0o077}


def serve(tmp_path: Path) -> tuple[str, dict[str, int]]:
    """`houqin serve` in `tmp_path` under the usual umask 022 until it answers: what it printed, and
    the modes in its instance while it ran."""
    port = free_port()
    proc = subprocess.Popen([*HOUQIN, "serve", "--port", str(port)], env=clean_env(tmp_path), cwd=tmp_path,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, umask=0o022)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz").status_code == 200
        files = {p.name for p in (tmp_path / "instance").iterdir()}
        assert {"houqin.db", "houqin.env", "runtime.json"} <= files, files
        found = modes(tmp_path / "instance")
    finally:
        assert stop(proc) in (0, -signal.SIGTERM)
    return (proc.stdout.read() if proc.stdout else ""), found


def test_serve_creates_its_instance_private_from_the_start(tmp_path: Path) -> None:
    said, found = serve(tmp_path)
    assert loose(found) == {}, found
    assert found["."] == 0o700 and found["houqin.db"] == found["houqin.env"] == found["runtime.json"] == 0o600
    assert "chmod" not in said  # nothing to warn about


def test_serve_names_an_instance_others_can_read(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    embedded_environment(instance)
    instance.chmod(0o755)  # as an older Houqin (or a careless copy) left it
    (instance / "houqin.env").chmod(0o644)
    said, _ = serve(tmp_path)
    assert f"⚠ 实例文件夹 {instance} 里有其他用户可以读取的内容：文件夹本身、houqin.env。" in said, said
    assert f"请运行 chmod -R go-rwx {instance}" in said


def test_photos_and_their_folders_are_private(people, wechat_user, clock, services: Services, settings,
                                              fetch_media) -> None:
    clock.set("2026-11-23 08:00")
    people.add("张丽", "teacher")
    teacher = wechat_user("张丽")
    assert "R1" in teacher.say("报修 操场 地砖松动").text
    teacher.image(media_id="media_ground")
    assert fetch_media() == 1
    with services.factory() as s:
        (photo,) = s.scalars(select(TicketPhoto))
    found = modes(settings.instance_dir)
    assert found[str(Path("storage") / photo.path)] == 0o600
    assert loose(found) == {}, found


def test_a_private_file_is_never_readable_by_others_not_even_while_written(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "secret.txt"
    assert write_private(target, "one")
    assert not write_private(target, "two", replace=False)  # there already: kept
    assert target.read_text() == "one" and mode(target) == 0o600
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["secret.txt"]  # no temporary left behind
