"""How fast does every console page answer with a month of a 2,000-student school's data?

    python bench/console_pages.py [--students 2000] [--requests 20] [--budget 20] [--backend sqlite|postgresql]
                                  [--downloads] [--only 食堂,人员] [--profile]

Builds the school (bench/big_school.py: November 2026, up to Monday 30 November 16:00) in a fresh,
migrated database (SQLite: a file in a temporary directory; PostgreSQL: a new schema in --pg-url,
dropped afterwards), signs in to the console as the admin 周春明 through the real sign-in form, then
requests every console page (the parameterised ones with a real ticket, asset and month) --requests
times each in the app's own WSGI test client (no network; what is measured is the app and its
database), bounded by --budget seconds per page. Prints each page's median and p95 in ms, its size
and how many SQL statements one request ran, and flags every page over 200 ms. The CPU column is the
median of the process's CPU time a request took (time.process_time): on a busy machine, where the wall
clock also counts the time waiting for a core, it is the steadier figure (SQLite runs in-process). --downloads also
times the ledger downloads (台账 XLSX), which are files, not pages.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, select  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

from bench.big_school import build_school  # noqa: E402
from bot import create_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.services import Services  # noqa: E402

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 30 November 16:00 school time
LIMIT_MS = 200.0
PASSWORD = "bench-password-2026"


def pages(services: Services) -> list[tuple[str, str]]:
    from models import Asset, RepairTicket

    with services.factory() as db:
        ticket = db.scalar(select(RepairTicket).order_by(RepairTicket.number.desc()).limit(1))
        asset = db.scalar(select(Asset).order_by(Asset.id).limit(1))
    found = [
        ("今日", "/admin/"),
        ("报修", "/admin/repairs"),
        ("报修 待接单", "/admin/repairs?status=open"),
        ("报修 搜索", "/admin/repairs?q=%E6%8A%95%E5%BD%B1%E4%BB%AA"),
        ("报修单", f"/admin/repairs/{ticket.code}" if ticket else "/admin/repairs/R1"),
        ("报修图表", "/admin/repairs/charts"),
        ("资产", "/admin/assets"),
        ("资产履历", f"/admin/assets/{asset.code}" if asset else "/admin/assets"),
        ("借用", "/admin/asset-loans"),
        ("物品领用", "/admin/supplies"),
        ("资产审批", "/admin/asset-approvals"),
        ("盘点", "/admin/stocktake"),
        ("人员", "/admin/people"),
        ("人员 学生", "/admin/people?show=students"),
        ("人员 搜索", "/admin/people?q=%E7%8E%8B"),
        ("食堂", "/admin/canteen?month=2026-11"),
        ("食堂 菜单", "/admin/canteen/menu"),
        ("食堂 月报", "/admin/canteen/report?month=2026-11"),
        ("校车", "/admin/bus"),
        ("值日", "/admin/duty"),
        ("日程", "/admin/calendar"),
        ("行事历", "/admin/tasks"),
        ("意见箱", "/admin/suggestions"),
        ("满意度测评", "/admin/survey"),
        ("通知回执", "/admin/notices"),
        ("推送", "/admin/outbox"),
        ("推送 失败", "/admin/outbox?state=failed"),
        ("发通知", "/admin/outbox/compose"),
        ("台账", "/admin/ledgers?month=2026-11"),
        ("设置", "/admin/settings"),
        ("操作记录", "/admin/audit"),
        ("账户", "/admin/account"),
    ]
    return found


def downloads() -> list[tuple[str, str]]:
    from bot.ledgers import LEDGERS

    return [(kind.name, f"/admin/ledgers/{key}.xlsx?month=2026-11") for key, kind in LEDGERS.items()]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def run(backend: str, pg_url: str, students: int, requests: int, budget: float, with_downloads: bool,
        only: set[str] | None = None, profile: bool = False) -> None:
    from bot.console import set_password
    from bot.db import make_engine, upgrade
    from models import Person

    tmp = Path(tempfile.mkdtemp(prefix="houqin-bench-"))
    schema = None
    url = f"sqlite:///{tmp / 'houqin.db'}"
    if backend == "postgresql":
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with make_engine(pg_url).begin() as conn:
            conn.execute(sql_text(f'CREATE SCHEMA "{schema}"'))
        url = pg_url
    settings = Settings(wechat_token="benchToken12345678", wechat_appid="wxbench", wechat_secret="s",
                        secret_key="b" * 32, database_url=url, instance_dir=tmp / "instance",
                        wechat_api_base="http://127.0.0.1:9")
    services = Services.from_settings(settings, schema=schema)
    services.clock = lambda: NOW
    try:
        upgrade(services.db_engine)
        started = time.monotonic()
        with services.factory() as db, db.begin():
            counts = build_school(db, NOW, students=students)
            admin = db.scalar(select(Person).where(Person.name == "周春明"))
            assert admin is not None
            set_password(db, admin, PASSWORD)
        print(f"[{backend}] built in {time.monotonic() - started:.1f}s: "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), flush=True)
        app = create_app(services=services)
        client = app.test_client()
        login = client.get("/admin/login").get_data(as_text=True)
        token = re.search(r'name="csrf" value="([^"]+)"', login)
        assert token is not None
        res = client.post("/admin/login", data={"csrf": token[1], "name": "周春明", "password": PASSWORD})
        assert res.status_code == 302, res.get_data(as_text=True)[:300]
        statements = [0]

        def count(*_: Any) -> None:
            statements[0] += 1

        event.listen(services.db_engine, "before_cursor_execute", count)  # the read-only engine's too
        targets = pages(services) + (downloads() if with_downloads else [])
        if only:
            targets = [(name, path) for name, path in targets if name in only]
        print(f"{'page':<14}{'path':<46}{'n':>4}{'median ms':>11}{'p95 ms':>9}{'CPU ms':>8}{'KB':>8}{'SQL':>6}")
        slow = []
        for name, path in targets:
            times: list[float] = []
            cpu: list[float] = []
            size = queries = 0
            deadline = time.monotonic() + budget
            for i in range(requests):
                statements[0] = 0
                t0, c0 = time.perf_counter(), time.process_time()
                res = client.get(path)
                elapsed = (time.perf_counter() - t0) * 1000
                cpu.append((time.process_time() - c0) * 1000)
                assert res.status_code == 200, (path, res.status_code, res.get_data(as_text=True)[:300])
                times.append(elapsed)
                size, queries = len(res.data), statements[0]
                if i and time.monotonic() > deadline:
                    break
            if profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.runcall(client.get, path)
                pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(int(os.environ.get("BENCH_LINES", "25")))
            median, p95 = statistics.median(times[1:] or times), percentile(times[1:] or times, 0.95)
            flag = "  ← over 200 ms" if median > LIMIT_MS and ".xlsx" not in path else ""
            if flag:
                slow.append(name)
            cpu_median = statistics.median(cpu[1:] or cpu)
            print(f"{name:<14}{path[:45]:<46}{len(times):>4}{median:>11.1f}{p95:>9.1f}{cpu_median:>8.0f}{size / 1024:>8.0f}"
                  f"{queries:>6}{flag}", flush=True)
        print(f"[{backend}] pages over {LIMIT_MS:.0f} ms (median): {', '.join(slow) or 'none'}")
    finally:
        services.db_engine.dispose()
        if schema is not None:
            with make_engine(pg_url).begin() as conn:
                conn.execute(sql_text(f'DROP SCHEMA "{schema}" CASCADE'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=20, help="requests per page (the first is not counted)")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per page at most")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--downloads", action="store_true", help="also time the ledger downloads")
    parser.add_argument("--only", default="", help="only these pages, by name, comma-separated (e.g. 食堂,人员)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one more request of each page")
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        run(backend, args.pg_url, args.students, args.requests, args.budget, args.downloads, only, args.profile)


if __name__ == "__main__":
    main()
