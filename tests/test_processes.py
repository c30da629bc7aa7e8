"""The processes as operators run them: `houqin serve` + `houqin chat` (the README's newcomer path),
gunicorn serving `bot:create_app()`, and `houqin worker` / `houqin scheduler` starting and stopping."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, Row, TextClause

from bot.config import Settings
from bot.wechat.fake import FakeWeChat
from bot.wechat.templates import Template

HOUQIN = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WECHAT_", "HOUQIN_", "DATABASE_URL", "REDIS_URL"))}
    env.update(HOUQIN_INSTANCE=str(tmp_path / "instance"), PYTHONPATH=str(ROOT), **extra)
    return env


def worker_env(tmp_path: Path, settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `houqin worker` process configured like `settings`."""
    return clean_env(tmp_path, WECHAT_TOKEN=settings.wechat_token, WECHAT_APPID=settings.wechat_appid,
                     WECHAT_SECRET=settings.wechat_secret, HOUQIN_SECRET_KEY=settings.secret_key,
                     DATABASE_URL=settings.database_url, WECHAT_API_BASE=settings.wechat_api_base, **extra)


def wait_for(url: str, seconds: float = 30.0) -> requests.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return requests.get(url, timeout=2)
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_for_row(engine: Engine, query: TextClause, done: Callable[[Row[Any]], bool],
                 seconds: float = 30.0) -> Row[Any] | None:
    """The row `query` finds once `done(row)` holds (another process writes it), or the last one seen."""
    deadline, row = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(query).first()
        if row is not None and done(row):
            break
        time.sleep(0.2)
    return row


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], int]]:
    """`houqin serve` on the embedded default (no settings at all), in a fresh folder."""
    port = free_port()
    env = clean_env(tmp_path)
    proc = subprocess.Popen([*HOUQIN, "serve", "--port", str(port)], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok", "database": "ok"}
        yield env, port
    finally:
        assert stop(proc) in (0, -signal.SIGTERM)


def test_newcomer_serves_the_demo_and_chats_as_a_teacher(served, tmp_path: Path) -> None:
    env, port = served
    codes = json.loads(subprocess.run([*HOUQIN, "codes", "--json"], env=env, cwd=tmp_path, text=True,
                                      capture_output=True, check=True, timeout=60).stdout)
    code = next(c["code"] for c in codes if c["name"] == "张丽")
    chat = subprocess.run([*HOUQIN, "chat", "--as", "张丽"], env=env, cwd=tmp_path, text=True, capture_output=True,
                          input=f"绑定 {code}\n我\n报修 三(2)班 投影仪不亮\n/quit\n", timeout=60)
    assert chat.returncode == 0, chat.stderr
    assert f"张丽 的绑定码是 {code}" in chat.stdout
    assert "绑定成功！你好，张丽（教师）" in chat.stdout
    assert "姓名：张丽" in chat.stdout and "班级：三(2)班" in chat.stdout
    assert "已提交报修 R1" in chat.stdout
    secrets_file = tmp_path / "instance" / "houqin.env"
    assert secrets_file.exists() and oct(secrets_file.stat().st_mode)[-3:] == "600"


def test_serve_says_which_pushes_cannot_arrive_without_templates(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*HOUQIN, "serve", "--port", str(port), "--no-demo"], env=clean_env(tmp_path),
                            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        assert stop(proc) in (0, -signal.SIGTERM)
    said = proc.stdout.read() if proc.stdout else ""
    assert "未配置模板消息（HOUQIN_TEMPLATES）：48小时内没有给公众号发过消息的人，收不到以下推送" in said, said
    assert "食品安全反馈、紧急报修、校车警报（学生可能留在车上）" in said
    assert "HOUQIN_PUBLIC_URL" not in said  # the embedded demo serves its links on this machine on purpose


def test_gunicorn_serves_the_wsgi_app(tmp_path: Path) -> None:
    from bot.wechat.gateway import signature
    from bot.wechat.simulator import WeChatUser, http_transport

    port = free_port()
    env = clean_env(tmp_path, WECHAT_TOKEN="gunicornToken123", WECHAT_APPID="wxgunicorn", WECHAT_SECRET="s",
                    HOUQIN_SECRET_KEY="k" * 32, DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}")
    subprocess.run([*HOUQIN, "db", "upgrade"], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "bot:create_app()"],
                            env=env, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz").status_code == 200
        ts, nonce = str(int(time.time())), "12345"
        hello = requests.get(f"http://127.0.0.1:{port}/wechat", timeout=5, params={
            "signature": signature("gunicornToken123", ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "hi"})
        assert hello.text == "hi"
        user = WeChatUser("oGunicorn", token="gunicornToken123", appid="wxgunicorn", mode="plain",
                          transport=http_transport(f"http://127.0.0.1:{port}"))
        assert "没有听懂" in user.say("随便说说").text
    finally:
        stop(proc)
    assert "HOUQIN_PUBLIC_URL 仍是本机地址" in (proc.stdout.read() if proc.stdout else "")


def test_gunicorn_app_refuses_to_start_without_settings(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    out = subprocess.run([sys.executable, "-c", "import bot; bot.create_app()"], env=env, cwd=tmp_path, text=True,
                         capture_output=True, timeout=60)
    assert out.returncode != 0 and "WECHAT_TOKEN" in out.stderr and "HOUQIN_SECRET_KEY" in out.stderr


def test_worker_process_delivers_and_scheduler_process_starts_and_stops(tmp_path: Path) -> None:
    from sqlalchemy import select

    from bot.db import make_engine, make_sessionmaker, upgrade
    from bot.outbox import Outbox
    from models import Binding, Person, PersonRole, utcnow
    from tests.conftest import make_settings

    fake = FakeWeChat(0).start()
    try:
        settings = make_settings(tmp_path, fake, templates={"notice": Template("TPL_NOTICE", {"thing1": "{title}"})})
        engine = make_engine(settings.database_url)
        upgrade(engine)
        factory = make_sessionmaker(engine)
        with factory() as s, s.begin():
            person = Person(name="张丽", roles=[PersonRole(role="teacher")])
            s.add_all([person, Binding(openid="oWorker", person=person)])
            s.flush()
            Outbox(s, settings, utcnow()).notify(person, "notice", "工人进程送达测试")
        env = worker_env(tmp_path, settings, HOUQIN_TEMPLATES=json.dumps(
            {"notice": {"template_id": "TPL_NOTICE", "data": {"thing1": "{title}"}}}))
        worker = subprocess.Popen([*HOUQIN, "worker"], env=env, cwd=tmp_path, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        scheduler = subprocess.Popen([*HOUQIN, "scheduler", "--interval", "1"], env=env, cwd=tmp_path, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not fake.sent_to_openid("oWorker") and time.monotonic() < deadline:
                time.sleep(0.2)
            (sent,) = fake.sent_to_openid("oWorker")
            assert sent.endpoint == "message/template/send" and sent.mentions("工人进程送达测试")
        finally:
            assert stop(worker) == 0
            assert stop(scheduler) == 0
        scheduled = scheduler.stdout.read() if scheduler.stdout else ""
        assert "scheduler started" in scheduled
        started = worker.stdout.read() if worker.stdout else ""
        assert "未配置模板消息" in started and "食品安全反馈" in started  # only "notice" has a template
        # HOUQIN_PUBLIC_URL left at its default: parents' links would point at this machine
        assert "HOUQIN_PUBLIC_URL 仍是本机地址 http://127.0.0.1:5000" in started
        assert "HOUQIN_PUBLIC_URL 仍是本机地址" in scheduled
        with factory() as s:
            from models import Delivery

            assert [d.status for d in s.scalars(select(Delivery))] == ["sent"]
        engine.dispose()
    finally:
        fake.stop()


def test_commands_reach_the_fake_wechat_of_the_running_serve(served, tmp_path: Path) -> None:
    env, _ = served
    fake = json.loads((tmp_path / "instance" / "runtime.json").read_text())["fake_wechat_url"]
    menu = subprocess.run([*HOUQIN, "wechat-menu", "--upload"], env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=60)
    assert menu.returncode == 0, menu.stderr
    assert "菜单已上传" in menu.stdout
    sheet = subprocess.run([*HOUQIN, "qr", "rooms", "--out", str(tmp_path / "rooms.pdf")], env=env, cwd=tmp_path,
                           text=True, capture_output=True, timeout=60)
    assert sheet.returncode == 0, sheet.stderr
    assert (tmp_path / "rooms.pdf").stat().st_size > 0
    endpoints = [c["endpoint"] for c in requests.get(f"{fake}/_fake/calls", timeout=5).json()]
    assert "menu/create" in endpoints and "qrcode/create" in endpoints


def test_templates_check_on_the_embedded_default_asks_the_fake_of_the_running_serve(served, tmp_path: Path) -> None:
    env, _ = served
    fake = json.loads((tmp_path / "instance" / "runtime.json").read_text())["fake_wechat_url"]
    mapping = {"repair_new": {"template_id": "TPL_REPAIR", "data": {"character_string1": "{code}",
                                                                     "thing2": "{place}", "time4": "{time}"}},
               "weekly_menu": {"template_id": "TPL_GONE", "data": {"thing1": "{week}"}}}
    check = subprocess.run([*HOUQIN, "templates", "check"], env={**env, "HOUQIN_TEMPLATES": json.dumps(mapping)},
                           cwd=tmp_path, text=True, capture_output=True, timeout=60)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "weekly_menu：模板 TPL_GONE 不在公众号的模板库中" in check.stdout
    assert "repair_new" not in check.stdout.replace("repair_new：", "")  # the good mapping raises nothing
    endpoints = [c["endpoint"] for c in requests.get(f"{fake}/_fake/calls", timeout=5).json()]
    assert endpoints.count("template/get_all_private_template") == 1


def test_fake_wechat_command_reports_template_sends_back_to_the_webhook(tmp_path: Path) -> None:
    """`houqin fake-wechat --webhook … --finish "failed:user block"` next to a configured bot: a repair's
    template push is sent, the fake reports the block to /wechat, and the outbox shows it undeliverable."""
    from sqlalchemy import create_engine, text

    from bot.wechat.simulator import WeChatUser, http_transport

    fake_port, bot_port = free_port(), free_port()
    mapping = {"repair_new": {"template_id": "TPL_REPAIR", "data": {"character_string1": "{code}",
                                                                     "thing2": "{place}", "thing3": "{description}",
                                                                     "time4": "{time}"}}}
    account = {"WECHAT_TOKEN": "fakeReportToken42", "WECHAT_APPID": "wxfakereport", "WECHAT_SECRET": "s" * 32,
               "WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
    env = clean_env(tmp_path, **account, HOUQIN_SECRET_KEY="k" * 32, DATABASE_URL=f"sqlite:///{tmp_path / 'r.db'}",
                    WECHAT_API_BASE=f"http://127.0.0.1:{fake_port}", HOUQIN_TEMPLATES=json.dumps(mapping),
                    HOUQIN_PUBLIC_URL="https://houqin.example.edu.cn")
    fake = subprocess.Popen([*HOUQIN, "fake-wechat", "--port", str(fake_port), "--webhook",
                             f"http://127.0.0.1:{bot_port}/wechat", "--finish", "failed:user block"],
                            env=env, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    bot = subprocess.Popen([*HOUQIN, "serve", "--port", str(bot_port)], env=env, cwd=tmp_path, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{fake_port}/_fake/calls")
        assert wait_for(f"http://127.0.0.1:{bot_port}/healthz").status_code == 200
        codes = json.loads(subprocess.run([*HOUQIN, "codes", "--json"], env=env, cwd=tmp_path, text=True,
                                          capture_output=True, check=True, timeout=60).stdout)
        users = {}
        for name in ("程财宝", "张丽"):
            users[name] = WeChatUser(f"o-{name}", token=account["WECHAT_TOKEN"], appid=account["WECHAT_APPID"],
                                     transport=http_transport(f"http://127.0.0.1:{bot_port}"),
                                     aes_key=account["WECHAT_AES_KEY"])
            code = next(c["code"] for c in codes if c["name"] == name)
            assert "绑定成功" in users[name].say(f"绑定 {code}").text
        assert "已提交报修" in users["张丽"].say("报修 三(2)班 窗户关不上").text
        engine = create_engine(env["DATABASE_URL"])
        query = text("SELECT d.status, d.last_error FROM deliveries d JOIN pushes p ON p.id = d.push_id "
                     "WHERE p.kind = 'repair_new' AND d.openid = 'o-程财宝'")
        row = wait_for_row(engine, query, lambda r: r[0] == "undeliverable")
        engine.dispose()
        assert row is not None and row[0] == "undeliverable", row
        sends = [c for c in requests.get(f"http://127.0.0.1:{fake_port}/_fake/calls", timeout=5).json()
                 if c["endpoint"] == "message/template/send"]
        assert len(sends) == 1 and sends[0]["openid"] == "o-程财宝" and sends[0]["warnings"] == [], (row, sends)
        listed = subprocess.run([*HOUQIN, "outbox", "--status", "undeliverable"], env=env, cwd=tmp_path, text=True,
                                capture_output=True, timeout=60).stdout
        assert "repair_new" in listed and "拒收模板消息" in listed
    finally:
        stop(bot)
        stop(fake)
    said = fake.stdout.read() if fake.stdout else ""
    assert "reports template sends to the webhook as 'failed:user block'" in said


def test_outside_the_project_folder_commands_create_no_school(tmp_path: Path) -> None:
    """No settings, no HOUQIN_INSTANCE, a folder without `instance/`: the worker does not start with
    random credentials and nothing is created; `houqin serve` alone makes the school."""
    env = clean_env(tmp_path)
    del env["HOUQIN_INSTANCE"]
    for args in (["worker"], ["codes"]):
        refused = subprocess.run([*HOUQIN, *args], env=env, cwd=tmp_path, text=True, capture_output=True, timeout=60)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"实例文件夹 {tmp_path / 'instance'} 中没有 houqin.env" in refused.stderr
        assert "第一次使用请先运行 houqin serve" in refused.stderr
        assert "push worker started" not in refused.stdout
        assert list(tmp_path.iterdir()) == []
    port = free_port()
    proc = subprocess.Popen([*HOUQIN, "serve", "--port", str(port), "--no-demo"], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz").status_code == 200
        assert (tmp_path / "instance" / "houqin.env").is_file()
    finally:
        assert stop(proc) in (0, -signal.SIGTERM)


def test_without_a_running_serve_commands_say_to_start_it_and_call_nothing(tmp_path: Path) -> None:
    from bot.cli.base import START_SERVE_FIRST
    from bot.config import embedded_environment

    env = clean_env(tmp_path)
    embedded_environment(tmp_path / "instance")  # the school `houqin serve` made, now stopped
    (tmp_path / "instance" / "houqin.db").touch()
    nothing = subprocess.run([*HOUQIN, "wechat-menu", "--upload"], env=env, cwd=tmp_path, text=True,
                             capture_output=True, timeout=60)
    assert nothing.returncode == 1 and START_SERVE_FIRST in nothing.stderr
    assert "菜单已上传" not in nothing.stdout
    # a runtime file left by a serve that is gone, naming a fake that still answers: not used
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True,
                          check=True, timeout=60)
    fake = FakeWeChat(0).start()
    try:
        (tmp_path / "instance" / "runtime.json").write_text(json.dumps(
            {"bot_url": "http://127.0.0.1:9", "pid": int(gone.stdout), "fake_wechat_url": fake.base_url}))
        stale = subprocess.run([*HOUQIN, "qr", "rooms", "--out", str(tmp_path / "rooms.pdf")], env=env,
                               cwd=tmp_path, text=True, capture_output=True, timeout=60)
        assert stale.returncode == 1 and START_SERVE_FIRST in stale.stderr
        assert fake.calls == [] and not (tmp_path / "rooms.pdf").exists()
    finally:
        fake.stop()
    # the serve's process is alive but its fake does not answer
    (tmp_path / "instance" / "runtime.json").write_text(json.dumps(
        {"bot_url": "http://127.0.0.1:9", "pid": os.getpid(), "fake_wechat_url": f"http://127.0.0.1:{free_port()}"}))
    silent = subprocess.run([*HOUQIN, "wechat-menu", "--upload"], env=env, cwd=tmp_path, text=True,
                            capture_output=True, timeout=60)
    assert silent.returncode == 1 and START_SERVE_FIRST in silent.stderr


class Output:
    """A process's output lines as they come, read on a thread so that a test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import threading

        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    def wait_for(self, needle: str, count: int = 1, seconds: float = 30.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if sum(needle in line for line in self.lines) >= count:
                return "".join(self.lines)
            time.sleep(0.1)
        raise AssertionError(f"no {needle!r} (x{count}) in:\n{''.join(self.lines)}")


def push_through(fake_url: str, instance: Path, openid: str, text: str) -> None:
    """What the worker does: a custom message to `openid` through the serve's fake WeChat."""
    from bot.config import embedded_environment

    account = embedded_environment(instance)
    token = requests.post(f"{fake_url}/cgi-bin/stable_token", timeout=5, json={
        "grant_type": "client_credential", "appid": account["WECHAT_APPID"], "secret": account["WECHAT_SECRET"]})
    sent = requests.post(f"{fake_url}/cgi-bin/message/custom/send", timeout=5,
                         params={"access_token": token.json()["access_token"]},
                         json={"touser": openid, "msgtype": "text", "text": {"content": text}})
    assert sent.json()["errcode"] == 0


def test_a_second_serve_is_refused_and_chat_follows_a_restarted_serve(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    instance = tmp_path / "instance"
    first_port, second_port = free_port(), free_port()
    serve = [*HOUQIN, "serve", "--no-demo", "--port"]
    first = subprocess.Popen([*serve, str(first_port)], env=env, cwd=tmp_path, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chat = None
    try:
        assert wait_for(f"http://127.0.0.1:{first_port}/healthz").status_code == 200
        runtime = json.loads((instance / "runtime.json").read_text())
        second = subprocess.run([*serve, str(second_port)], env=env, cwd=tmp_path, text=True, capture_output=True,
                                timeout=60)
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"已有一个 houqin serve 在运行（pid {first.pid}，端口 {first_port}）" in second.stderr
        assert "push worker" not in second.stdout and "fake WeChat API" not in second.stdout
        with pytest.raises(requests.ConnectionError):  # it never listened
            requests.get(f"http://127.0.0.1:{second_port}/healthz", timeout=2)
        assert json.loads((instance / "runtime.json").read_text()) == runtime  # the first one's, untouched

        chat = subprocess.Popen([*HOUQIN, "chat", "--openid", "oChatRestart"], env=env, cwd=tmp_path, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        said = Output(chat)
        assert chat.stdin is not None
        chat.stdin.write("你好\n")
        chat.stdin.flush()
        said.wait_for("后勤助手>")
        push_through(runtime["fake_wechat_url"], instance, "oChatRestart", "重启前的推送")
        said.wait_for("[推送] 重启前的推送")

        first.kill()  # a serve that crashed: its lock goes with it, its runtime file stays behind
        first.wait(timeout=15)
        first = subprocess.Popen([*serve, str(second_port)], env=env, cwd=tmp_path, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert wait_for(f"http://127.0.0.1:{second_port}/healthz").status_code == 200
        restarted = json.loads((instance / "runtime.json").read_text())
        assert restarted["fake_wechat_url"] != runtime["fake_wechat_url"]
        chat.stdin.write("你好\n")
        chat.stdin.flush()
        said.wait_for("后勤助手>", count=2)
        said.wait_for(f"houqin serve 已重启，已重新连接（pid {first.pid}，http://127.0.0.1:{second_port}）")
        push_through(restarted["fake_wechat_url"], instance, "oChatRestart", "重启后的推送")
        transcript = said.wait_for("[推送] 重启后的推送")
        assert "无法连接" not in transcript and transcript.count("已重新连接") == 1
        chat.stdin.write("/quit\n")
        chat.stdin.flush()
        assert chat.wait(timeout=15) == 0
    finally:
        if chat is not None and chat.poll() is None:
            chat.kill()
            chat.wait(timeout=5)
        assert stop(first) in (0, -signal.SIGTERM)
