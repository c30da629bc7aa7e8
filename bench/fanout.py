"""Fan-out benchmark: one push to 10,000 parents, delivered by the push worker to the fake WeChat.

    python bench/fanout.py [--parents 10000] [--latency 0.02] [--error-rate 0.01] [--workers 1 2]
                           [--concurrency N] [--rate R] [--backend sqlite|postgresql|both]

The fake WeChat (bot.wechat.fake) runs on 127.0.0.1 in this process: every call answers after
--latency seconds, and a random --error-rate share of calls answer errcode -1 ("system busy").

First, the baseline: a plain sequential loop with wechatpy's own WeChatClient (API_BASE_URL
pointed at the fake) sends the same template message to --baseline recipients, one after
another, an error retried at once; bounded in count and by --time-limit.

Then, for each backend and each worker count: a fresh database (SQLite: a file in a temporary
directory; PostgreSQL: a fresh schema in --pg-url, dropped afterwards), migrated, with --parents
parents bulk-inserted (a Person with the parent role and one subscribed Binding each). The worker
processes start and sit idle, as `houqin worker` processes do — each is
`Services.from_settings(settings).worker().run_forever(stop)` with the product's defaults for
push_concurrency and push_rate_per_second unless --concurrency / --rate say otherwise. Then ONE
push is queued the way the product queues it, `Outbox(session, settings, now).notify(parents,
"safety_topic", text)` in one transaction, and the clock starts at its commit; it stops when no
delivery is pending or sending (or at --time-limit). The kind has a template (settings.templates
= {"safety_topic": "TPL_BENCH"}), so every delivery is a template message. The -1 answers are
retried by the worker with its exponential backoff, push_backoff_seconds = --backoff (0.2 s
instead of the default 5 s, so the retries land within the run). Quiet hours are switched off,
else a run between 21:00 and 07:00 school time would wait for 07:00.

Checked against what the fake received: lost = recipients without a successful send at the fake
or whose row is not 'sent'; duplicated = recipients who received the push more than once.
Exit status 0 when every run finished with 0 lost and 0 duplicated.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import random
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from bot.outbox import Outbox  # noqa: E402
from bot.push_kinds import push_fields  # noqa: E402
from bot.wechat.fake import FakeWeChat  # noqa: E402
from bot.wechat.templates import Template  # noqa: E402
from models import Binding, Delivery, Person, PersonRole  # noqa: E402
from models.outbox import PENDING, SENDING, SENT  # noqa: E402

PG_URL = "postgresql://127.0.0.1:5432/test"
KIND, TEMPLATE_ID, BASELINE_TEMPLATE_ID = "safety_topic", "TPL_BENCH", "TPL_BASELINE"
BENCH_TEMPLATE = Template(TEMPLATE_ID, {"thing1": "{title}", "time2": "{time}"})
TEXT = "十一月安全教育专题：防溺水与交通安全\n请家长与孩子一起阅读本月安全提示，周五夕会将开展专题教育。"
TEMPLATE_ENDPOINT = "message/template/send"
AIM_RATE = 300.0
CORES = os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# Database


@dataclass
class Database:
    backend: str
    url: str
    schema: str | None


@contextmanager
def fresh_database(backend: str, pg_url: str, workdir: Path) -> Iterator[Database]:
    """A migrated, empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        path = workdir / f"fanout-{uuid.uuid4().hex[:8]}.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        yield Database("sqlite", f"sqlite:///{path}", None)
        return
    schema = "houqin_bench_" + uuid.uuid4().hex[:10]
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sql_text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(pg_url, schema=schema)
        upgrade(engine)
        engine.dispose()
        yield Database("postgresql", pg_url, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sql_text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def insert_parents(db: Database, count: int) -> list[str]:
    """`count` parents, each with one subscribed binding, in three bulk INSERTs; returns their openids."""
    engine = make_engine(db.url, schema=db.schema)
    try:
        factory = make_sessionmaker(engine)
        stamp = uuid.uuid4().hex[:6]
        with factory() as s, s.begin():
            s.execute(insert(Person), [{"name": f"家长{i:05d}", "phone": f"139{i:08d}", "class_name": f"{1 + i % 6}年级"}
                                       for i in range(count)])
            ids = list(s.scalars(select(Person.id).order_by(Person.id)))
            s.execute(insert(PersonRole), [{"person_id": pid, "role": "parent"} for pid in ids])
            openids = [f"o_fan_{stamp}_{i:05d}" for i in range(count)]
            now = datetime.now(UTC)
            s.execute(insert(Binding), [{"openid": oid, "person_id": pid, "subscribed": True, "reachable": True,
                                         "bound_at": now} for oid, pid in zip(openids, ids, strict=True)])
        return openids
    finally:
        engine.dispose()


@dataclass
class Queued:
    deliveries: int
    seconds: float  # loading the parents, notify() and the commit
    committed: float  # time.perf_counter() at the commit
    committed_wall: float  # time.time() at the commit


def queue_push(settings: Settings, db: Database) -> Queued:
    """ONE push to every parent, as the product queues it, in one transaction."""
    engine = make_engine(db.url, schema=db.schema)
    try:
        factory = make_sessionmaker(engine)
        started = time.perf_counter()
        with factory() as s, s.begin():
            parents = list(s.scalars(select(Person).join(PersonRole).where(PersonRole.role == "parent")))
            push = Outbox(s, settings, datetime.now(UTC)).notify(parents, KIND, TEXT).push
            assert push is not None
            queued = len(push.deliveries)
        committed, committed_wall = time.perf_counter(), time.time()
        return Queued(queued, committed - started, committed, committed_wall)
    finally:
        engine.dispose()


def postgres_unreachable(url: str) -> str:
    """Why PostgreSQL at `url` cannot be used, or "" when it answers."""
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3):
            return ""
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return f"not reachable at {url}: {type(exc).__name__}: {exc}"


def monitor_engine(db: Database) -> Any:
    """A plain engine for polling counts: no BEGIN IMMEDIATE, so it never takes SQLite's write lock."""
    if db.backend == "sqlite":
        return create_engine(db.url)
    return make_engine(db.url, schema=db.schema, pool_size=1, max_overflow=0)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (zeros where there is none)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def status_counts(engine: Any) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        conn.rollback()
    return {str(status): int(n) for status, n in rows}


# ---------------------------------------------------------------------------------------------
# Worker processes


def _worker_process(settings: Settings, schema: str | None, ready: Any, go: Any, stop: Any, results: Any,
                    index: int) -> None:
    """One `houqin worker`: Services.from_settings(...).worker().run_forever(stop)."""
    from bot.services import Services

    logging.basicConfig(level=logging.WARNING, format=f"[worker {index}] %(levelname)s %(name)s: %(message)s")
    services = Services.from_settings(settings, schema=schema)
    worker = services.worker()
    with services.factory() as s:  # connect before the clock starts, as a running worker has
        s.execute(sql_text("SELECT 1"))
    stats: dict[str, Any] = {"claims": 0, "claimed": 0, "records": 0}
    phases: dict[str, float] = {}

    def timed(name: str, fn: Any, count: str = "") -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                result = fn(*a, **k)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
            if count == "claim" and result:
                stats["claims"] += 1
                stats["claimed"] += len(result)
            elif count == "record":
                stats["records"] += 1
            return result
        return wrapper

    claim_name = "_claim" if hasattr(worker, "_claim") else "claim"
    setattr(worker, claim_name, timed("claim", getattr(worker, claim_name), "claim"))
    worker._send = timed("send (sum over threads)", worker._send)  # type: ignore[method-assign]
    if hasattr(worker, "_record"):
        worker._record = timed("record", worker._record, "record")  # type: ignore[method-assign]
    halt = threading.Event()

    def watch() -> None:
        stop.wait()
        halt.set()

    threading.Thread(target=watch, daemon=True).start()
    ready.release()
    go.wait()
    cpu = time.process_time()
    worker.run_forever(halt)
    services.db_engine.dispose()
    results.put({"index": index, "cpu_seconds": time.process_time() - cpu, "batch_size": worker.batch_size,
                 "phases": phases, **stats})


# ---------------------------------------------------------------------------------------------
# One fan-out run


@dataclass
class FanoutResult:
    backend: str
    workers: int
    concurrency: int
    rate: float
    batch_size: int = 0
    parents: int = 0
    queued: int = 0
    queue_seconds: float = 0.0
    seconds: float = 0.0
    first_send_seconds: float = 0.0
    finished: bool = False
    delivered: int = 0  # recipients with exactly one or more successful sends at the fake
    rate_per_second: float = 0.0
    calls: int = 0
    error_calls: int = 0
    token_fetches: int = 0
    lost: int = 0
    duplicated: int = 0
    sent_row_not_received: int = 0
    received_row_not_sent: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    worker_cpu: float = 0.0  # cores used by the worker processes in the timed window
    fake_cpu: float = 0.0  # cores used by this process (the fake WeChat, mostly)
    machine_cpu: float = 0.0  # share of all cores busy on the whole machine (PostgreSQL, other work included)
    load_before: float = 0.0  # 1-minute load average when the push was queued
    worker_stats: list[dict[str, Any]] = field(default_factory=list)


def run_fanout(args: argparse.Namespace, fake: FakeWeChat, backend: str, workers: int,
               workdir: Path) -> FanoutResult:
    with fresh_database(backend, args.pg_url, workdir) as db:
        settings = bench_settings(args, db, fake.base_url, workdir)
        result = FanoutResult(backend, workers, settings.push_concurrency, settings.push_rate_per_second)
        openids = insert_parents(db, args.parents)
        result.parents = len(openids)
        ctx = mp.get_context("spawn")
        ready, go, stop, results = ctx.Semaphore(0), ctx.Event(), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_worker_process, args=(settings, db.schema, ready, go, stop, results, i),
                             name=f"fanout-worker-{i}", daemon=True) for i in range(workers)]
        for p in procs:
            p.start()
        for _ in procs:
            if not ready.acquire(timeout=60):
                raise RuntimeError("a worker process did not start within 60 s")
        go.set()
        time.sleep(0.3)  # let the workers reach their idle wait, as running workers would be
        monitor = monitor_engine(db)
        try:
            first_call = len(fake.state.calls)
            queued = queue_push(settings, db)
            result.queued, result.queue_seconds = queued.deliveries, queued.seconds
            started, wall_started, cpu_started = queued.committed, queued.committed_wall, time.process_time()
            busy_started, total_started = machine_ticks()
            result.load_before = os.getloadavg()[0]
            deadline = started + args.time_limit
            counts: dict[str, int] = {}
            while time.perf_counter() < deadline:
                counts = status_counts(monitor)
                if not counts.get(PENDING, 0) and not counts.get(SENDING, 0):
                    result.finished = True
                    break
                time.sleep(0.05)
            result.seconds = time.perf_counter() - started
            result.fake_cpu = (time.process_time() - cpu_started) / result.seconds
            busy, total = machine_ticks()
            result.machine_cpu = (busy - busy_started) / (total - total_started) if total > total_started else 0.0
            stop.set()
            stats = []
            for _ in procs:
                try:
                    stats.append(results.get(timeout=30))
                except Exception:  # noqa: BLE001 - a worker that did not report is shown as missing
                    break
            for p in procs:
                p.join(timeout=10)
                if p.is_alive():
                    p.terminate()
            result.worker_stats = sorted(stats, key=lambda s: s["index"])
            result.worker_cpu = sum(s["cpu_seconds"] for s in stats) / result.seconds
            result.batch_size = stats[0]["batch_size"] if stats else 0
            check(result, fake, first_call, wall_started, openids, monitor)
        finally:
            monitor.dispose()
    return result


def check(result: FanoutResult, fake: FakeWeChat, first_call: int, wall_started: float, openids: list[str],
          monitor: Any) -> None:
    calls = [c for c in fake.state.calls[first_call:] if c.endpoint == TEMPLATE_ENDPOINT
             and c.body.get("template_id") == TEMPLATE_ID]
    result.calls = len(calls)
    result.error_calls = sum(1 for c in calls if c.errcode)
    result.token_fetches = sum(1 for c in fake.state.calls[first_call:] if c.endpoint == "token")
    ok = [c for c in calls if c.errcode == 0]
    received = Counter(c.openid for c in ok)
    if ok:
        result.first_send_seconds = min(c.at for c in ok) - wall_started
    with monitor.connect() as conn:
        rows = dict(conn.execute(select(Delivery.openid, Delivery.status)).all())
        result.attempts = {int(a): int(n) for a, n in conn.execute(
            select(Delivery.attempts, func.count()).group_by(Delivery.attempts).order_by(Delivery.attempts)).all()}
        conn.rollback()
    result.statuses = dict(Counter(rows.values()))
    result.delivered = sum(1 for oid in openids if received[oid] >= 1)
    result.lost = sum(1 for oid in openids if received[oid] == 0 or rows.get(oid) != SENT)
    result.duplicated = sum(1 for oid in openids if received[oid] > 1)
    result.sent_row_not_received = sum(1 for oid in openids if rows.get(oid) == SENT and received[oid] == 0)
    result.received_row_not_sent = sum(1 for oid in openids if received[oid] and rows.get(oid) != SENT)
    result.rate_per_second = result.delivered / result.seconds if result.seconds else 0.0


def bench_settings(args: argparse.Namespace, db: Database, api_base: str, workdir: Path) -> Settings:
    defaults = Settings(wechat_token="x", wechat_appid="x", wechat_secret="x", secret_key="x", database_url="x")
    return Settings(
        wechat_token="bench" + secrets.token_hex(8),
        wechat_appid="wxbench" + secrets.token_hex(5),
        wechat_secret=secrets.token_hex(16),
        secret_key=secrets.token_urlsafe(32),
        database_url=db.url,
        wechat_api_base=api_base,
        instance_dir=workdir / "instance",
        templates={KIND: BENCH_TEMPLATE},
        push_backoff_seconds=args.backoff,
        push_concurrency=args.concurrency or defaults.push_concurrency,
        push_rate_per_second=defaults.push_rate_per_second if args.rate is None else args.rate,
        quiet_start="00:00", quiet_end="00:00",  # no quiet hours: the run must not wait for 07:00
    )


# ---------------------------------------------------------------------------------------------
# The sequential baseline: wechatpy alone


@dataclass
class BaselineResult:
    recipients: int = 0
    delivered: int = 0
    calls: int = 0
    error_calls: int = 0
    seconds: float = 0.0
    rate_per_second: float = 0.0
    finished: bool = False


def run_baseline(args: argparse.Namespace, fake: FakeWeChat, openids: list[str]) -> BaselineResult:
    """A plain loop: wechatpy's WeChatClient pointed at the fake, one template message after another."""
    from wechatpy import WeChatClient
    from wechatpy.exceptions import WeChatClientException

    class FakeBaseClient(WeChatClient):  # type: ignore[misc]
        API_BASE_URL = fake.base_url + "/cgi-bin/"

        def fetch_access_token(self) -> Any:  # wechatpy's own fetch names api.weixin.qq.com
            return self._fetch_access_token(url=self.API_BASE_URL + "token", params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})

    client = FakeBaseClient("wxbaseline" + secrets.token_hex(4), secrets.token_hex(16), timeout=10)
    for _ in range(6):
        try:
            client.fetch_access_token()  # before the clock, as the worker's token is shared and cached
            break
        except WeChatClientException:
            continue
    data = BENCH_TEMPLATE.render(push_fields(KIND, TEXT, datetime.now(UTC)))
    result = BaselineResult(recipients=len(openids))
    first_call = len(fake.state.calls)
    started = time.perf_counter()
    deadline = started + args.time_limit
    for openid in openids:
        if time.perf_counter() >= deadline:
            break
        for _attempt in range(6):  # a -1 is retried at once, at most 6 tries as the worker's default
            try:
                client.message.send_template(openid, BASELINE_TEMPLATE_ID, data)
                result.delivered += 1
                break
            except WeChatClientException:
                continue
    result.seconds = time.perf_counter() - started
    result.finished = result.delivered == len(openids)
    calls = [c for c in fake.state.calls[first_call:] if c.endpoint == TEMPLATE_ENDPOINT
             and c.body.get("template_id") == BASELINE_TEMPLATE_ID]
    result.calls = len(calls)
    result.error_calls = sum(1 for c in calls if c.errcode)
    result.rate_per_second = result.delivered / result.seconds if result.seconds else 0.0
    return result


# ---------------------------------------------------------------------------------------------
# Reporting


def print_fanout(r: FanoutResult, baseline: BaselineResult | None) -> None:
    verdict = "ok" if r.finished and not r.lost and not r.duplicated else "FAILED"
    print(f"\n== {r.backend}: {r.workers} worker process(es), concurrency {r.concurrency} threads each, "
          f"rate limit {r.rate:g}/s per process ({'none' if not r.rate else 'on'}), batch {r.batch_size}")
    print(f"   queued {r.queued} deliveries to {r.parents} parents in {r.queue_seconds:.2f} s (one transaction)")
    print(f"   delivered {r.delivered}/{r.parents} in {r.seconds:.2f} s"
          f"{'' if r.finished else ' (TIME LIMIT: not finished)'}: {r.rate_per_second:.0f} messages/s"
          f"   (first send after {r.first_send_seconds:.2f} s)")
    print(f"   lost {r.lost}, duplicated {r.duplicated}  [{verdict}]"
          f"   (row sent but not received {r.sent_row_not_received}, received but row not sent "
          f"{r.received_row_not_sent})")
    print(f"   calls {r.calls} ({r.error_calls} answered -1 and were retried), token fetches {r.token_fetches}")
    print(f"   db statuses {json.dumps(r.statuses)}   attempts {json.dumps(r.attempts)}")
    print(f"   cpu: workers {r.worker_cpu:.2f} cores, fake + monitor {r.fake_cpu:.2f} cores (of {CORES}); "
          f"whole machine {r.machine_cpu:.0%} busy, load average {r.load_before:.1f} at the start")
    for s in r.worker_stats:
        records = f", {s['records']} record transactions" if "record" in s.get("phases", {}) else ""
        print(f"   worker {s['index']}: claimed {s['claimed']} in {s['claims']} claims{records}, "
              f"cpu {s['cpu_seconds']:.1f} s; "
              + ", ".join(f"{k} {v:.1f} s" for k, v in s.get("phases", {}).items()))
    if baseline and baseline.rate_per_second:
        print(f"   vs sequential wechatpy: {r.rate_per_second / baseline.rate_per_second:.1f}x")


def print_baseline(b: BaselineResult) -> None:
    print(f"\n== sequential wechatpy loop: {b.delivered}/{b.recipients} template messages in {b.seconds:.2f} s: "
          f"{b.rate_per_second:.0f} messages/s ({b.calls} calls, {b.error_calls} answered -1 and were "
          f"retried at once){'' if b.finished else ' (TIME LIMIT)'}")


def median_run(runs: list[FanoutResult]) -> FanoutResult:
    return sorted(runs, key=lambda r: r.rate_per_second)[(len(runs) - 1) // 2]


def summarise(r: FanoutResult, runs: list[FanoutResult], baseline: BaselineResult | None) -> None:
    ratio = f"{r.rate_per_second / baseline.rate_per_second:.1f}x" if baseline and baseline.rate_per_second else "-"
    ok = all(x.finished and not x.lost and not x.duplicated for x in runs)
    aim = "meets" if ok and r.rate_per_second >= AIM_RATE else "misses"
    each = f" [{', '.join(f'{x.rate_per_second:.0f}' for x in runs)}]" if len(runs) > 1 else ""
    print(f"  {r.backend:<10} workers={r.workers} concurrency={r.concurrency:<3} "
          f"{r.rate_per_second:6.0f} msg/s{each}  {r.seconds:6.2f} s  lost={sum(x.lost for x in runs)} "
          f"dup={sum(x.duplicated for x in runs)}  vs sequential {ratio}  "
          f"({aim} the aim of {AIM_RATE:.0f}/s, 0 lost, 0 duplicated)")


def add_slow_calls(fake: FakeWeChat, share: float, seconds: float, seed: int) -> None:
    """Make a random `share` of the fake's message calls take `seconds` longer (a WSGI wrapper)."""
    rng, lock, inner = random.Random(seed + 7), threading.Lock(), fake.app.wsgi_app

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if "/cgi-bin/message/" in environ.get("PATH_INFO", ""):
            with lock:
                slow = rng.random() < share
            if slow:
                time.sleep(seconds)
        return inner(environ, start_response)

    fake.app.wsgi_app = app  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parents", type=int, default=10000, help="parents to push to (default 10000)")
    parser.add_argument("--latency", type=float, default=0.02, help="fake WeChat latency per call, s (0.02)")
    parser.add_argument("--error-rate", type=float, default=0.01, help="share of calls answering -1 (0.01)")
    parser.add_argument("--concurrency", type=int, default=0,
                        help="push_concurrency (threads per worker process; default: the Settings default)")
    parser.add_argument("--rate", type=float, default=None,
                        help="push_rate_per_second per process (default: the Settings default; 0 = unlimited)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker process counts (1 2)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", PG_URL))
    parser.add_argument("--backoff", type=float, default=0.2, help="push_backoff_seconds (0.2; the default is 5)")
    parser.add_argument("--baseline", type=int, default=500, help="recipients for the sequential loop (500)")
    parser.add_argument("--time-limit", type=float, default=180.0, help="seconds per run before giving up (180)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration; the median is shown (1)")
    parser.add_argument("--slow-share", type=float, default=0.0,
                        help="share of message calls that take --slow-seconds longer (0: none)")
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="extra latency of a slow call (2.0)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake's per-request access log
    if not (0 <= args.error_rate < 1 and 0 <= args.slow_share < 1 and args.parents >= 1 and args.time_limit > 0
            and 1 <= args.repeat <= 10 and all(1 <= w <= 8 for w in args.workers)):
        parser.error("need 0 <= --error-rate, --slow-share < 1; --parents >= 1; --time-limit > 0; "
                     "1 <= --repeat <= 10; 1 <= --workers <= 8")

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and (why := postgres_unreachable(args.pg_url)):
        if args.backend == "postgresql":
            parser.error(why)
        print(f"skipping PostgreSQL: {why}")
        backends.remove("postgresql")
    slow = f", {args.slow_share:.1%} of calls {args.slow_seconds:g} s slower" if args.slow_share else ""
    print(f"fan-out: {args.parents} parents, fake WeChat latency {args.latency * 1000:.0f} ms, "
          f"{args.error_rate:.0%} of calls answer -1{slow}, backoff {args.backoff:g} s, {CORES} cores")
    results: list[FanoutResult] = []
    fake = FakeWeChat(0, latency=args.latency, error_rate=args.error_rate, seed=args.seed)
    if args.slow_share:
        add_slow_calls(fake, args.slow_share, args.slow_seconds, args.seed)
    fake.start()
    try:
        baseline = run_baseline(args, fake, [f"o_base_{i:05d}" for i in range(min(args.baseline, args.parents))]) \
            if args.baseline else None
        if baseline:
            print_baseline(baseline)
        with tempfile.TemporaryDirectory(prefix="houqin-fanout-") as tmp:
            for _ in range(args.repeat):
                for backend in backends:
                    for workers in args.workers:
                        result = run_fanout(args, fake, backend, workers, Path(tmp))
                        results.append(result)
                        print_fanout(result, baseline)
                        sys.stdout.flush()
    finally:
        fake.stop()
    print("\nsummary" + (f" (median of {args.repeat} runs; every run's messages/s in brackets)"
                          if args.repeat > 1 else ""))
    if baseline:
        print(f"  sequential wechatpy loop {baseline.rate_per_second:6.0f} msg/s")
    for backend in backends:
        for workers in args.workers:
            runs = [r for r in results if r.backend == backend and r.workers == workers]
            summarise(median_run(runs), runs, baseline)
    if args.json:
        args.json.write_text(json.dumps({"baseline": asdict(baseline) if baseline else None,
                                         "runs": [asdict(r) for r in results]}, ensure_ascii=False, indent=2),
                             encoding="utf-8")
    ok = all(r.finished and not r.lost and not r.duplicated for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
