"""Does a long export stall the webhook? Its p99 while `houqin export repairs` runs, on SQLite.

    python bench/export_stall.py [--tickets 500] [--senders 4] [--repeat 3] [--mode old new]

One SQLite file in a temporary directory, migrated, with --tickets repair tickets filed in
November 2026 (each with a reporter and an assignee), so that the 报修台账 takes seconds to build.
Our app, `bot:create_app()`, runs under gunicorn (`-w 2`, sync workers) on 127.0.0.1. --senders
threads each send signed, encrypted safe-mode text messages (帮助, from bound teachers) one after
another; every message is a write (the inbox stores it, handles it and stores the reply). After one
second of that, a separate process runs the real command, `houqin export repairs --month 2026-11`,
and the senders go on until one second after it ends. Latencies are split by whether the request
was sent while the export ran.

- new: the product as it is: the export reads through `Services.read_factory` (a deferred, read-only
  transaction: WAL lets it read while the webhook writes).
- old: the behaviour before, where every transaction took the writer lock (BEGIN IMMEDIATE): the
  export process's `read_factory` is made the writer `factory` again before the command runs.

Each mode runs --repeat times, alternately; the median of the runs is printed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.webhook import HOST, Secrets, start_server, stop_server  # noqa: E402
from bot.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from bot.wechat.simulator import WeChatUser, http_transport  # noqa: E402
from models import Binding, Person, PersonRole, RepairTicket  # noqa: E402

MONTH = "2026-11"
MESSAGE = "帮助"
REPLY_MARK = "你可以发送"
LEAD_SECONDS = 1.0  # senders run this long before the export starts, and after it ends
RUN_LIMIT = 120.0  # no run lasts longer, whatever the export does


@dataclass
class Run:
    mode: str
    export_seconds: float = 0.0
    during: list[float] = field(default_factory=list)  # latencies (s) of requests sent while the export ran
    outside: list[float] = field(default_factory=list)
    bad: int = 0  # replies that were not the help text (e.g. 系统繁忙, spooled)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0


def seed(url: str, keys: Secrets, tickets: int, senders: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    filed = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    with make_sessionmaker(engine)() as db, db.begin():
        staff = [Person(name=f"维修{i:02d}", roles=[PersonRole(role="staff")]) for i in range(20)]
        teachers = [Person(name=f"教师{i:03d}", roles=[PersonRole(role="teacher")]) for i in range(200)]
        db.add_all([*staff, *teachers])
        db.add_all(Binding(openid=sender_openid(keys, i), person=teachers[i]) for i in range(senders))
        db.flush()
        db.add_all(RepairTicket(number=n + 1, reporter_id=teachers[n % 200].id, assignee_id=staff[n % 20].id,
                                place=f"{n % 6 + 1}号楼{n % 40 + 101}", category="电教",
                                description=f"投影仪不亮，第{n}次", status="closed",
                                filed_at=filed + timedelta(minutes=5 * n),
                                accepted_at=filed + timedelta(minutes=5 * n + 30),
                                done_at=filed + timedelta(minutes=5 * n + 90), rating=n % 5 + 1)
                   for n in range(tickets))
    engine.dispose()


def sender_openid(keys: Secrets, i: int) -> str:
    return f"o_stall_{i:03d}_{keys.token[-8:]}"


def export_main(mode: str, env: dict[str, str], out: str, window: Any) -> None:
    """The child process: what `houqin export repairs` runs, with the old behaviour for `old`. `window`
    gets the command's start and end (perf_counter, the same clock in every process here): the
    interpreter's start-up is not counted as the export."""
    import os

    os.environ.update(env)
    from bot.services import Services

    if mode == "old":  # before: the export's session began BEGIN IMMEDIATE, like every other
        Services.read_factory = property(lambda self: self.factory)  # type: ignore[assignment,method-assign]
    from bot.cli import main

    window[0] = time.perf_counter()
    main(["export", "repairs", "--month", MONTH, "--out", out], standalone_mode=False)
    window[1] = time.perf_counter()


def send_loop(user: WeChatUser, stop: threading.Event, samples: list[tuple[float, float, bool]]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            ok = REPLY_MARK in user.say(MESSAGE).text
        except Exception:  # noqa: BLE001 - a failed request is a bad reply, counted
            ok = False
        samples.append((started, time.perf_counter() - started, ok))


def one_run(mode: str, port: int, keys: Secrets, env: dict[str, str], senders: int, workdir: Path) -> Run:
    run = Run(mode)
    users = [WeChatUser(sender_openid(keys, i), token=keys.token, appid=keys.appid, aes_key=keys.aes_key,
                        transport=http_transport(f"http://{HOST}:{port}"), mode="safe") for i in range(senders)]
    stop = threading.Event()
    samples: list[list[tuple[float, float, bool]]] = [[] for _ in users]
    threads = [threading.Thread(target=send_loop, args=(u, stop, s), daemon=True) for u, s in zip(users, samples, strict=True)]
    for t in threads:
        t.start()
    time.sleep(LEAD_SECONDS)
    spawn = mp.get_context("spawn")
    window = spawn.Array("d", 2)
    child = spawn.Process(target=export_main, args=(mode, env, str(workdir / f"{mode}.xlsx"), window))
    child.start()
    child.join(RUN_LIMIT)
    begun, ended = window[0], window[1]
    if child.is_alive():
        child.terminate()
        child.join(10)
    time.sleep(LEAD_SECONDS)
    stop.set()
    for t in threads:
        t.join(30)
    if child.exitcode != 0:
        raise RuntimeError(f"the export failed ({mode}, exit code {child.exitcode})")
    run.export_seconds = ended - begun
    for started, latency, ok in (s for per_user in samples for s in per_user):
        (run.during if begun <= started < ended else run.outside).append(latency)
        run.bad += not ok
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", nargs="+", choices=["old", "new"], default=["old", "new"])
    args = parser.parse_args(argv)
    keys = Secrets.random()
    runs: dict[str, list[Run]] = {mode: [] for mode in args.mode}
    with tempfile.TemporaryDirectory(prefix="houqin-stall-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'houqin.db'}"
        seed(url, keys, args.tickets, args.senders)
        env = {k: v for k, v in keys.env(url, workdir / "instance").items() if k.isupper()}
        (workdir / "instance").mkdir()
        server = start_server("houqin", "bot:create_app()", env, workdir, [])
        try:
            for i in range(args.repeat):
                for mode in args.mode:
                    run = one_run(mode, server.port, keys, env, args.senders, workdir)
                    runs[mode].append(run)
                    print(f"{mode} #{i + 1}: export {run.export_seconds:.2f} s; webhook p99 during it "
                          f"{p99(run.during):.0f} ms (max {1000 * max(run.during, default=0):.0f} ms, "
                          f"{len(run.during)} requests), outside it {p99(run.outside):.0f} ms "
                          f"({len(run.outside)}); not the help text: {run.bad}", flush=True)
        finally:
            stop_server(server)
    print(f"\n{args.tickets} tickets, {args.senders} senders, gunicorn -w 2, SQLite; medians of {args.repeat} runs")
    print("| export reads | export | webhook p99 during the export | max during | p99 outside | not answered |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode, done in runs.items():
        label = "old: BEGIN IMMEDIATE (writer lock)" if mode == "old" else "new: deferred, read-only"
        print(f"| {label} | {statistics.median(r.export_seconds for r in done):.2f} s "
              f"| {statistics.median(p99(r.during) for r in done):.0f} ms "
              f"| {statistics.median(1000 * max(r.during, default=0) for r in done):.0f} ms "
              f"| {statistics.median(p99(r.outside) for r in done):.0f} ms | {sum(r.bad for r in done)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
