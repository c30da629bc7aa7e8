"""County benchmark: the Thursday menu pushed to every parent of every school at once.

    python bench/county.py [--schools 20] [--parents 5000] [--workers 1 2 4] [--latency 0.1]
                           [--concurrency 8] [--time-limit 900] [--small] [--json FILE]

PostgreSQL only (--pg-url, default 127.0.0.1:5432/test): a county is made the way an operator makes
one, in a fresh base schema of its own (dropped afterwards): the default school in that schema and
`County.add` for the others, each school with an official account of its own (its own appid, token and
secret: 20 accounts, 20 access tokens, 20 daily template quotas) and its own template for the weekly
menu (as `houqin templates set` stores it). Each school gets --parents parents, each with one
subscribed binding (bench/fanout.py's bulk insert).

The county is built once; for each worker count in turn, M real `houqin worker` processes start (each serves every school: a push worker
per school in threads, idle in LISTEN on one shared connection) and sit idle. Then the menu is queued
for all schools, one transaction per school as the Thursday job queues it (`Outbox.notify(parents,
"weekly_menu", …)`, quiet hours off); the clock starts at the first commit. It stops when no delivery of
any school is pending or sending (or at --time-limit). With --held (the default) the menus are queued
due in an hour and then released at one moment with a NOTIFY per school (as the end of quiet hours
releases what waited), so the clock times the delivery alone; queueing is timed apart. The fake WeChat (bot.wechat.fake) runs in this
process on 127.0.0.1, every call answering after --latency seconds.

Reported: messages/s (delivered / seconds until the last delivery at the fake), CPU of the worker
processes per delivered message (from /proc: user+system of each process, all its threads), the time
until the last school's last parent has the menu, lost (a parent with no successful send at the fake,
or whose row is not 'sent') and duplicated (a parent who got it more than once), counted at the fake.
After the first worker count the same deliveries are set back to pending and held (their attempts and
outcomes cleared) and released again, so 100,000 parents are built and queued once, not once per count.
Each worker process gets HOUQIN_DB_POOL=--db-pool (8): its PostgreSQL connections, shared by all its
schools; the peak of connections to the database (every client's) is reported.
--profile DIR: each worker under cProfile (bench/profiled_worker.py, CPU time, all threads).
--small: 4 schools x 500 parents, 1 and 2 workers. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, update  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

from bench.fanout import PG_URL, Database, insert_parents, machine_ticks, postgres_unreachable  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.county import County  # noqa: E402
from bot.db import make_engine, upgrade  # noqa: E402
from bot.outbox import Outbox  # noqa: E402
from bot.school import TEMPLATES_SETTING  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.wechat.fake import FakeWeChat  # noqa: E402
from bot.wechat.templates import parse_templates  # noqa: E402
from models import Delivery, Person, PersonRole, SchoolSetting  # noqa: E402
from models.outbox import PENDING, SENDING, SENT  # noqa: E402

KIND = "weekly_menu"
TEMPLATES = json.dumps({KIND: {"template_id": "TPL_MENU", "data": {"thing1": "{week}", "thing2": "{dishes}"}}})
TEXT = "下周菜单（12月7日-12月11日）已发布：周一 红烧鸡块、清炒西兰花；周二 番茄牛腩、蒜蓉生菜……"
FIELDS = {"week": "12月7日-12月11日", "dishes": "红烧鸡块、番茄牛腩、清蒸鲈鱼"}
TEMPLATE_ENDPOINT = "message/template/send"
HOLD = timedelta(hours=1)
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class CountyRun:
    workers: int
    schools: int
    parents: int
    concurrency: int
    queued: int = 0
    queue_seconds: float = 0.0  # the 20 transactions that queue the menu
    seconds: float = 0.0  # first commit -> no delivery pending or sending
    last_parent_seconds: float = 0.0  # first commit -> the last successful send at the fake
    finished: bool = False
    delivered: int = 0
    rate_per_second: float = 0.0
    calls: int = 0
    error_calls: int = 0
    lost: int = 0
    duplicated: int = 0
    worker_cpu_seconds: float = 0.0
    cpu_ms_per_message: float = 0.0
    bench_cpu_seconds: float = 0.0  # this process: the fake WeChat, mostly
    machine_cpu: float = 0.0  # share of the machine's cores busy meanwhile (PostgreSQL and all)
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the release and at the end
    peak_connections: int = 0  # PostgreSQL connections to the database, every client's, at the peak
    per_school_last: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)


def county_env(pg_url: str, schema: str, api_base: str, instance: Path, concurrency: int) -> dict[str, str]:
    url = pg_url + ("&" if "?" in pg_url else "?") + "options=" + quote(f"-csearch_path={schema}")
    return {"WECHAT_TOKEN": "bench" + secrets.token_hex(8), "WECHAT_APPID": "wxcounty" + secrets.token_hex(5),
            "WECHAT_SECRET": secrets.token_hex(16), "HOUQIN_SECRET_KEY": secrets.token_urlsafe(32),
            "DATABASE_URL": url, "WECHAT_API_BASE": api_base, "HOUQIN_INSTANCE": str(instance),
            "HOUQIN_TEMPLATES": TEMPLATES, "HOUQIN_PUSH_CONCURRENCY": str(concurrency),
            "HOUQIN_PUBLIC_URL": "https://houqin.example.edu.cn", "REDIS_URL": ""}


def build_county(args: argparse.Namespace, env: dict[str, str], schema: str) -> tuple[County, dict[str, list[str]]]:
    """The default school in `schema` and args.schools - 1 more, each with its own account and parents."""
    settings = Settings(wechat_token=env["WECHAT_TOKEN"], wechat_appid=env["WECHAT_APPID"],
                        wechat_secret=env["WECHAT_SECRET"], secret_key=env["HOUQIN_SECRET_KEY"],
                        database_url=args.pg_url, wechat_api_base=env["WECHAT_API_BASE"],
                        instance_dir=Path(env["HOUQIN_INSTANCE"]), templates=parse_templates(TEMPLATES))
    default = Services.from_settings(settings, schema=schema)
    upgrade(default.db_engine)
    county = County(default)
    for i in range(1, args.schools):
        county.add(f"school{i:02d}", f"第{i}小学", appid=f"wxschool{i:02d}{secrets.token_hex(3)}",
                   token=secrets.token_hex(10), secret=secrets.token_hex(16))
    openids: dict[str, list[str]] = {}
    for entry, services in county.each():
        with services.factory() as s, s.begin():  # `houqin templates set` for the school's own account
            s.merge(SchoolSetting(key=TEMPLATES_SETTING, value=TEMPLATES))
        services.templates_now(fresh=True)
        openids[entry.slug] = insert_parents(Database("postgresql", args.pg_url, county.schema_of(entry.slug)
                                                      if not entry.is_default else schema), args.parents)
    return county, openids


def queue_menus(county: County, held: bool) -> tuple[int, float, float]:
    """The menu to every parent of every school, one transaction per school; (deliveries, seconds, wall
    time of the first commit). `held`: queued due in an hour (released by `release`)."""
    total, first, started = 0, 0.0, time.perf_counter()
    for _, services in county.each():
        settings = services.settings.with_overrides(quiet_start="00:00", quiet_end="00:00")
        when = datetime.now(UTC) + (HOLD if held else timedelta(0))
        with services.factory() as s, s.begin():
            parents = list(s.scalars(select(Person).join(PersonRole).where(PersonRole.role == "parent")))
            push = Outbox(s, settings, when).notify(parents, KIND, TEXT, fields=FIELDS).push
            assert push is not None
            total += len(push.deliveries)
        first = first or time.time()
    return total, time.perf_counter() - started, first


def release(county: County) -> float:
    """Every held delivery due now, school after school, each with its NOTIFY (as when quiet hours end and
    the workers are woken); returns the wall time of the first commit."""
    first = 0.0
    for _, services in county.each():
        with services.factory() as s, s.begin():
            s.execute(update(Delivery).where(Delivery.status == PENDING).values(next_attempt_at=datetime.now(UTC)))
            s.execute(sql_text("SELECT pg_notify('houqin_outbox', current_schema())"))
        first = first or time.time()
    return first


def counts(county: County) -> dict[str, int]:
    found: Counter[str] = Counter()
    for _, services in county.each():
        with services.read_factory() as s:
            found.update({str(k): int(n) for k, n in s.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status))})
    return dict(found)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def start_workers(count: int, env: dict[str, str], logdir: Path, profile: Path | None = None
                  ) -> list[subprocess.Popen[bytes]]:
    """`count` `houqin worker` processes; with `profile`, each under cProfile (bench/profiled_worker.py),
    its stats written to profile/worker-<count>-<i>.prof when it stops."""
    procs = []
    for i in range(count):
        log = open(logdir / f"worker-{i}.log", "wb")  # noqa: SIM115 - closed with the process
        command = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", "worker"]
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, str(ROOT / "bench" / "profiled_worker.py"),
                       str(profile / f"worker-{count}-{i}.prof")]
        # this checkout's code, whatever the `houqin` script on the PATH or its shebang's interpreter imports
        procs.append(subprocess.Popen(command, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=logdir))
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def requeue(county: County) -> float:
    """The menu queued again for a further worker count, without building the county anew: every
    delivery back to pending, held (due in an hour), its attempts, claim and outcome cleared — as the
    first run found them after queueing. Returns the seconds it took."""
    started = time.perf_counter()
    for _, services in county.each():
        with services.factory() as s, s.begin():
            s.execute(update(Delivery).values(status=PENDING, attempts=0, claim=None, lease_until=None,
                                              sent_at=None, msgid=None, last_error=None, channel="",
                                              next_attempt_at=datetime.now(UTC) + HOLD))
    return time.perf_counter() - started


def measure(args: argparse.Namespace, workers: int, fake: FakeWeChat, county: County, env: dict[str, str],
            openids: dict[str, list[str]], instance: Path, first: bool) -> CountyRun:
    """One worker count on the county built: start the workers, queue (or requeue) the menu, time it."""
    result = CountyRun(workers, args.schools, args.parents, args.concurrency)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if not first:
            result.queue_seconds = requeue(county)
        procs = start_workers(workers, env, instance, args.profile)
        time.sleep(args.settle)  # every school's worker started and idle in LISTEN
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a worker process exited; see {instance}/worker-*.log")
        first_call = len(fake.state.calls)
        if first and args.held:  # queued while the workers wait; the CPU is counted from the release
            result.queued, result.queue_seconds, started = queue_menus(county, held=True)
        cpu_before = [proc_cpu(p.pid) for p in procs]
        bench_cpu = time.process_time()
        busy0, total0 = machine_ticks()
        load0 = os.getloadavg()[0]
        if first and not args.held:
            result.queued, result.queue_seconds, started = queue_menus(county, held=False)
        elif not first:
            result.queued = args.schools * args.parents
            started = time.time()
        if args.held or not first:
            started = release(county)
        deadline = time.time() + args.time_limit
        peak = 0
        while time.time() < deadline:
            now_counts = counts(county)
            peak = max(peak, connections(county))
            if not now_counts.get(PENDING) and not now_counts.get(SENDING):
                result.finished = True
                break
            time.sleep(0.5)
        result.seconds = time.time() - started
        result.worker_cpu_seconds = sum(proc_cpu(p.pid) - c for p, c in zip(procs, cpu_before, strict=True))
        result.bench_cpu_seconds = time.process_time() - bench_cpu
        busy, total = machine_ticks()
        result.machine_cpu = (busy - busy0) / (total - total0) if total > total0 else 0.0
        result.load_average = (round(load0, 1), round(os.getloadavg()[0], 1))
        result.peak_connections = peak
        stop_workers(procs)
        procs = []
        print(f"  statuses: {counts(county)}", flush=True)
        check(result, county, openids, fake.state.calls[first_call:], started)
    finally:
        if procs:
            stop_workers(procs)
    return result


def connections(county: County) -> int:
    """PostgreSQL connections open to this database right now (every client, the other sessions' too)."""
    with county.default.read_factory() as s:
        return int(s.scalar(sql_text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"))
                   or 0)


def drop_schemas(admin: Any, schema: str) -> None:
    """Drop the county's schemas one transaction each: all of them in one would take a lock per table of
    twenty schools at once and can fill PostgreSQL's shared lock table ("out of shared memory"), which
    every other session of the server shares."""
    with admin.connect() as conn:
        names = [n for (n,) in conn.execute(sql_text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                                            {"p": schema + "%"}).all()]
    for name in names:
        with admin.begin() as conn:
            conn.execute(sql_text(f'DROP SCHEMA "{name}" CASCADE'))


def run_all(args: argparse.Namespace, fake: FakeWeChat, workdir: Path) -> list[CountyRun]:
    """Build the county once, then each worker count in turn on it (the menu requeued between runs)."""
    schema = "houqin_county_" + uuid.uuid4().hex[:8]
    admin = make_engine(args.pg_url)
    with admin.begin() as conn:
        conn.execute(sql_text(f'CREATE SCHEMA "{schema}"'))
    instance = workdir / "instance"
    instance.mkdir()
    env = county_env(args.pg_url, schema, fake.base_url, instance, args.concurrency)
    if args.db_pool:
        env["HOUQIN_DB_POOL"] = str(args.db_pool)
    county: County | None = None
    results: list[CountyRun] = []
    try:
        built = time.perf_counter()
        county, openids = build_county(args, env, schema)
        print(f"  county ready: {args.schools} schools x {args.parents} parents "
              f"({time.perf_counter() - built:.0f} s)", flush=True)
        for i, workers in enumerate(args.workers):
            fake.reset()
            fake.state.latency = args.latency
            result = measure(args, workers, fake, county, env, openids, instance, first=i == 0)
            show(result)
            results.append(result)
    finally:
        if county is not None:
            county.dispose()
            county.default.db_engine.dispose()
        drop_schemas(admin, schema)
        admin.dispose()
    return results


def check(result: CountyRun, county: County, openids: dict[str, list[str]], calls: list[Any], started: float) -> None:
    sends = [c for c in calls if c.endpoint == TEMPLATE_ENDPOINT]
    result.calls, result.error_calls = len(sends), sum(1 for c in sends if c.errcode)
    ok = [c for c in sends if not c.errcode]
    received = Counter(c.openid for c in ok)
    last_at = {c.openid: c.at for c in ok}
    rows: dict[str, str] = {}
    statuses: Counter[str] = Counter()
    for _, services in county.each():
        with services.read_factory() as s:
            rows.update({oid: st for oid, st in s.execute(select(Delivery.openid, Delivery.status))})
    for slug, ids in openids.items():
        statuses.update(rows.get(oid, "missing") for oid in ids)
        got = [last_at[oid] for oid in ids if oid in last_at]
        result.per_school_last[slug] = round(max(got) - started, 2) if got else -1.0
        result.delivered += sum(1 for oid in ids if received[oid] >= 1)
        result.lost += sum(1 for oid in ids if received[oid] == 0 or rows.get(oid) != SENT)
        result.duplicated += sum(1 for oid in ids if received[oid] > 1)
    result.statuses = dict(statuses)
    result.last_parent_seconds = max(result.per_school_last.values(), default=0.0)
    if result.last_parent_seconds > 0:
        result.rate_per_second = result.delivered / result.last_parent_seconds
    if result.delivered:
        result.cpu_ms_per_message = 1000 * result.worker_cpu_seconds / result.delivered


def show(r: CountyRun) -> None:
    print(f"  {r.workers} worker(s): {r.delivered}/{r.queued} delivered, {r.rate_per_second:.0f} msg/s, "
          f"last parent at {r.last_parent_seconds:.1f} s (queueing {r.queue_seconds:.1f} s), "
          f"worker CPU {r.cpu_ms_per_message:.2f} ms/msg ({r.worker_cpu_seconds:.1f} s), "
          f"bench+fake CPU {r.bench_cpu_seconds:.1f} s, machine {100 * r.machine_cpu:.0f}% busy, "
          f"lost {r.lost}, duplicated {r.duplicated}, WeChat errors {r.error_calls}, "
          f"load {r.load_average[0]}→{r.load_average[1]}, peak PG connections {r.peak_connections}"
          f"{'' if r.finished else ' (NOT FINISHED within the time limit)'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--parents", type=int, default=5000, help="parents per school (5000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker process counts (1 2 4)")
    parser.add_argument("--latency", type=float, default=0.1, help="fake WeChat latency per call, s (0.1)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="HOUQIN_PUSH_CONCURRENCY: sends in flight per school per worker process (8)")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds for the workers to start (8)")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds per run before giving up (900)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", PG_URL))
    parser.add_argument("--small", action="store_true", help="4 schools x 500 parents, 1 and 2 workers")
    parser.add_argument("--held", action=argparse.BooleanOptionalAction, default=True,
                        help="queue every school's menu held, then release them at one moment, so the clock "
                             "times the workers alone (--no-held: the clock starts at the first school's commit)")
    parser.add_argument("--db-pool", type=int, default=8,
                        help="HOUQIN_DB_POOL of each worker process: its PostgreSQL connections, all schools (8)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--profile", type=Path, help="run each worker under cProfile (all threads); stats to this "
                                                     "folder, one .prof per process (python -m pstats FILE)")
    args = parser.parse_args(argv)
    if args.small:
        args.schools, args.parents, args.workers = 4, 500, [1, 2]
    if not 1 <= args.schools <= 200 or not 1 <= args.parents <= 100_000:
        parser.error("--schools 1-200, --parents 1-100000")
    if why := postgres_unreachable(args.pg_url):
        print(f"PostgreSQL {why}", file=sys.stderr)
        return 2
    print(f"machine: {os.cpu_count()} cores; {args.schools} schools x {args.parents} parents, "
          f"latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency} per school per process", flush=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per call of 100,000
    fake = FakeWeChat(0, latency=args.latency).start()
    results: list[CountyRun] = []
    try:
        with tempfile.TemporaryDirectory(prefix="houqin-county-") as tmp:
            results = run_all(args, fake, Path(tmp))
    finally:
        fake.stop()
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=1))
    return 0 if all(r.finished and not r.lost and not r.duplicated for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
