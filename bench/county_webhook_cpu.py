"""CPU per webhook request of a county, in-process: `/wechat` against `/wechat/<slug>`, per kind of turn.

    PGAPPNAME=houqin_cpu python bench/county_webhook_cpu.py [--schools 2] [--rounds 12] [--profile KIND]

On a machine shared with other work, gunicorn runs (bench/county_webhook.py) move by a third from run
to run; this one measures what a request costs rather than how fast a busy machine serves it. It builds
the county of bench/county_webhook.py (PostgreSQL, a fresh schema dropped afterwards; the default school
on `/wechat`, the others each on its own account at `/wechat/<slug>`), makes the app in this process and
replays the same users' turns one request at a time through the Flask test client, in order, every
reply checked as the bench checks it. The first fifth is untimed (caches, pools). Reported per account
kind and kind of turn: this process's CPU per request (`time.process_time`), the SQL round trips
(statements, BEGIN and COMMIT, counted at the driver) and, with PGAPPNAME set, the CPU of this process's
own PostgreSQL backends per request (from /proc). --sql KIND: the statements of two such requests per path. --profile KIND: cProfile (CPU clock) of that kind's
requests (`all`: of every request), the top of it printed (--top, by own time too with --tottime).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

from bench.county_webhook import Turn, build_county, build_turns, check, drop_schemas  # noqa: E402
from bench.fanout import PG_URL, postgres_unreachable  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.wechat.gateway import Crypto  # noqa: E402


def backend_ticks(admin: Any, name: str) -> int:
    """CPU ticks so far of the PostgreSQL backends whose application_name is `name`."""
    if not name:
        return 0
    with admin.connect() as conn:
        pids = [pid for (pid,) in conn.execute(sql_text("SELECT pid FROM pg_stat_activity "
                                                        "WHERE application_name = :n"), {"n": name})]
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks


class RoundTrips:
    """Counts what the driver sends: statements, and BEGIN/COMMIT/ROLLBACK."""

    def __init__(self) -> None:
        self.count = 0
        self.log: list[str] | None = None  # the statements themselves, when a list
        self._execute = psycopg.Cursor.execute
        self._command = psycopg.Connection._exec_command

    def __enter__(self) -> RoundTrips:
        trips, execute, command = self, self._execute, self._command

        def counted_execute(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            trips.count += 1
            if trips.log is not None:
                trips.log.append(" ".join(str(args[0] if args else kwargs.get("query")).split())[:300])
            return execute(cursor, *args, **kwargs)

        def counted_command(conn: Any, *args: Any, **kwargs: Any) -> Any:
            trips.count += 1
            if trips.log is not None:
                trips.log.append(bytes(args[0]).decode() if args and isinstance(args[0], bytes) else str(args[:1]))
            return command(conn, *args, **kwargs)

        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg.Connection._exec_command = counted_command  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        psycopg.Cursor.execute = self._execute  # type: ignore[method-assign]
        psycopg.Connection._exec_command = self._command  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> int:
    county_args = argparse.Namespace(schools=args.schools, concurrency=8, rounds=args.rounds, teachers=4,
                                     strangers=4, pg_url=args.pg_url, db_pool=8)
    schema = "houqin_cwcpu_" + uuid.uuid4().hex[:8]
    admin = make_engine(args.pg_url)
    with admin.begin() as conn:
        conn.execute(sql_text(f'CREATE SCHEMA "{schema}"'))
    app_name = os.environ.get("PGAPPNAME", "")
    bad = 0
    try:
        with tempfile.TemporaryDirectory(prefix="houqin-county-cpu-") as tmp:
            env, accounts = build_county(county_args, schema, Path(tmp) / "instance")
            env.pop("PGAPPNAME", None)  # this process's backends keep the name they are counted by
            os.environ.update(env)
            import logging

            from bot import create_app

            app = create_app()
            logging.getLogger().setLevel(logging.WARNING)
            client = app.test_client()
            lanes = build_turns(county_args, accounts, 80)
            order: list[Turn] = []
            for i in range(max(len(lane) for lane in lanes)):
                order += [lane[i] for lane in lanes if i < len(lane)]
            cryptos = [Crypto(a.token, a.appid, a.aes_key) for a in accounts]
            cpu: defaultdict[tuple[str, str], float] = defaultdict(float)
            count: Counter[tuple[str, str]] = Counter()
            trips: Counter[tuple[str, str]] = Counter()
            profile = cProfile.Profile(time.process_time)
            warm = len(order) // 5
            shown = [0, 0]  # requests whose SQL was printed (--sql), per path
            db0 = 0
            with RoundTrips() as counter:
                for i, turn in enumerate(order):
                    head, _, body = turn.raw.partition(b"\r\n\r\n")
                    url = head.split(b" ")[1].decode()
                    if i == warm:
                        db0 = backend_ticks(admin, app_name)
                    hot = i >= warm and args.profile in (turn.kind, "all")
                    logged = i >= warm and turn.kind == args.sql and shown[turn.account == 0] < 2
                    counter.log = [] if logged else None
                    counter.count, cpu0 = 0, time.process_time()
                    if hot:
                        profile.enable()
                    res = client.post(url, data=body, content_type="text/xml")
                    if hot:
                        profile.disable()
                    spent = time.process_time() - cpu0
                    if check(accounts[turn.account], cryptos[turn.account], turn, res.status_code, res.data):
                        bad += 1
                    if counter.log is not None:
                        shown[turn.account == 0] += 1
                        print(f"  {url.split('?')[0]} {turn.kind}: {len(counter.log)} round trips")
                        for line in counter.log:
                            print(f"      {line}")
                    if i >= warm:
                        key = ("/wechat" if turn.account == 0 else "/wechat/<slug>", turn.kind)
                        cpu[key] += spent
                        count[key] += 1
                        trips[key] += counter.count
            db_seconds = (backend_ticks(admin, app_name) - db0) / os.sysconf("SC_CLK_TCK")
    finally:
        drop_schemas(admin, schema)
        admin.dispose()
    totals: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    for (path, kind), spent in sorted(cpu.items()):
        n = count[(path, kind)]
        print(f"  {path:15} {kind:10} n={n:4}  CPU {1000 * spent / n:6.2f} ms  round trips {trips[(path, kind)] / n:5.1f}")
        totals[path][0] += spent
        totals[path][1] += n
        totals[path][2] += trips[(path, kind)]
    for path, (spent, n, sent) in totals.items():
        print(f"  {path:15} {'all':10} n={int(n):4}  CPU {1000 * spent / n:6.2f} ms  round trips {sent / n:5.1f}")
    measured = sum(count.values())
    if app_name:
        print(f"  PostgreSQL backends of this process: {1000 * db_seconds / measured:.2f} ms CPU per request")
    print(f"  replies wrong: {bad} of {len(order)}; load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.profile:
        stats = pstats.Stats(profile)
        if args.profile_out:
            stats.dump_stats(args.profile_out)
        stats.sort_stats("cumulative").print_stats(args.top)
        if args.tottime:
            stats.sort_stats("tottime").print_stats(args.top)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=2, help="schools, the default one included (2)")
    parser.add_argument("--rounds", type=int, default=12, help="times each user's script repeats (12)")
    parser.add_argument("--profile", default="", metavar="KIND",
                        help="cProfile this kind of turn, e.g. 报修内容, or `all` of them")
    parser.add_argument("--sql", default="", metavar="KIND", help="print the SQL of two requests of this kind per path")
    parser.add_argument("--profile-out", metavar="FILE", help="also write the profile there (pstats)")
    parser.add_argument("--top", type=int, default=50, help="lines of the profile printed (50)")
    parser.add_argument("--tottime", action="store_true", help="the profile by own time too")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", PG_URL))
    args = parser.parse_args(argv)
    if not 2 <= args.schools <= 100 or not 1 <= args.rounds <= 200:
        parser.error("--schools 2-100, --rounds 1-200")
    if why := postgres_unreachable(args.pg_url):
        print(f"PostgreSQL {why}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
