"""County webhook benchmark: 20 official accounts on one installation, mixed traffic, concurrency 32.

    python bench/county_webhook.py [--schools 20] [--concurrency 32] [--duration 20] [--rounds 40]
                                   [--teachers 4] [--strangers 4] [--gunicorn-workers 2]
                                   [--gunicorn-args "-k gthread --threads 4"] [--db-pool 8] [--json FILE]

PostgreSQL only (--pg-url, default 127.0.0.1:5432/test), in a fresh base schema dropped afterwards. The
county is made as an operator makes it: the default school on the WECHAT_* account (served at /wechat)
and `County.add` for the others, each with an account of its own — appid, token, AES key, secret —
served at /wechat/<slug>, all in safe mode. Each school gets bound teachers, a bus monitor with route
1 and three pupils on it, and strangers (followers not bound).

The app runs under gunicorn on 127.0.0.1 (`-w --gunicorn-workers`, sync workers as bench/webhook.py runs it
unless --gunicorn-args say otherwise, `HOUQIN_DB_POOL=--db-pool`).
The traffic, signed and encrypted with each account's own token and key, is built before the clock
starts; every user's turns go in order (one user's turns are on one connection of the load, so a
dialog's second turn never overtakes its first):

- a teacher: the menu's 帮助 click, 帮助 typed, then the repair dialog 报修 → 三(2)班 → 教室灯不亮了;
- the bus monitor: 校车 1号线 上车 3 (a headcount against the roster);
- a stranger: the subscribe event, then 帮助.

--concurrency connections each send their users' turns one after the other for at most --duration
seconds (and at most --rounds rounds of every script). Every reply is checked: HTTP 200, its
MsgSignature verifies with that school's token, it decrypts with that school's key, it is addressed to
the sender, and its text is the one expected (the help text, the repair dialog's question or its
filing, the headcount's answer, the welcome) — after the timed window, from the raw responses kept: the
load generator spends the window only sending prepared bytes and reading replies. Reported: requests/s,
p50/p99/max latency, the checks, CPU in the timed window of the server, of its own PostgreSQL backends
(PGAPPNAME = the run's schema) and of every PostgreSQL process, of the load generator and of the machine,
each also per request, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text as sql_text  # noqa: E402

from bench.county import drop_schemas  # noqa: E402  (re-exported for bench/county_webhook_cpu.py)
from bench.fanout import PG_URL, postgres_unreachable  # noqa: E402
from bench.webhook import (  # noqa: E402
    CORES,
    HOST,
    REQUEST_TIMEOUT,
    TICKS,
    _read_response,
    machine_ticks,
    process_ticks,
    start_server,
    stop_server,
)
from bot.config import Settings  # noqa: E402
from bot.county import County  # noqa: E402
from bot.db import make_engine, upgrade  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.wechat.gateway import Crypto, parse_xml, signature  # noqa: E402
from bot.wechat.simulator import WeChatUser  # noqa: E402
from models import Binding, BusRoute, Person, PersonRole, Student  # noqa: E402

AIM_P99_MS = 100.0
# what each kind of turn must answer (a part of the reply's text)
EXPECTED = {
    "click 帮助": "你可以发送",
    "帮助": "你可以发送",
    "报修": "报修地点",
    "报修地点": "",  # the dialog's next question (category or description): any text reply
    "报修内容": "",  # filed, or one more question: any text reply
    "校车人数": "人数",
    "subscribe": "",  # the welcome: any text reply
}


@dataclass(frozen=True)
class Account:
    slug: str
    path: str
    token: str
    appid: str
    aes_key: str


@dataclass
class Turn:
    raw: bytes
    account: int
    openid: str
    kind: str


@dataclass
class CountyWebhookRun:
    schools: int
    concurrency: int
    gunicorn_workers: int
    gunicorn_args: str = ""
    sent: int = 0
    completed: int = 0
    ok: int = 0
    elapsed: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    p99_by_kind_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    server_cpu: float = 0.0  # cores
    db_cpu: float = 0.0  # cores, every PostgreSQL process (other sessions' too)
    db_own_cpu: float = 0.0  # cores, the backends of this run's server (its PGAPPNAME)
    client_cpu: float = 0.0  # cores
    machine_cpu: float = 0.0  # share of all cores
    load_average: tuple[float, float] = (0.0, 0.0)


def aes_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()[:43]


def build_county(args: argparse.Namespace, schema: str, instance: Path) -> tuple[dict[str, str], list[Account]]:
    """The county in `schema`: its environment (the default account) and every school's account."""
    default = Account("default", "/wechat", "bench" + secrets.token_hex(8), "wxcounty" + secrets.token_hex(5), aes_key())
    url = args.pg_url + ("&" if "?" in args.pg_url else "?") + "options=" + quote(f"-csearch_path={schema}")
    env = {**os.environ, "WECHAT_TOKEN": default.token, "WECHAT_APPID": default.appid,
           "WECHAT_AES_KEY": default.aes_key, "WECHAT_SECRET": secrets.token_hex(16),
           "HOUQIN_SECRET_KEY": secrets.token_urlsafe(32), "DATABASE_URL": url, "HOUQIN_INSTANCE": str(instance),
           "WECHAT_API_BASE": "http://127.0.0.1:9", "REDIS_URL": "", "HOUQIN_DB_POOL": str(args.db_pool),
           "HOUQIN_PUBLIC_URL": "https://houqin.example.edu.cn", "PGAPPNAME": schema}
    settings = Settings(wechat_token=default.token, wechat_appid=default.appid, wechat_secret=env["WECHAT_SECRET"],
                        wechat_aes_key=default.aes_key, secret_key=env["HOUQIN_SECRET_KEY"],
                        database_url=args.pg_url, wechat_api_base=env["WECHAT_API_BASE"], instance_dir=instance)
    services = Services.from_settings(settings, schema=schema)
    upgrade(services.db_engine)
    county = County(services)
    accounts = [default]
    try:
        for i in range(1, args.schools):
            slug = f"school{i:02d}"
            account = Account(slug, f"/wechat/{slug}", secrets.token_hex(10), f"wxschool{i:02d}{secrets.token_hex(3)}",
                               aes_key())
            county.add(slug, f"第{i}小学", appid=account.appid, token=account.token, aes_key=account.aes_key,
                       secret=secrets.token_hex(16))
            accounts.append(account)
        for n, (_, school) in enumerate(county.each()):
            with school.factory() as db, db.begin():
                monitor = Person(name="跟车老师", phone="13900000000", roles=[PersonRole(role="bus_monitor")])
                db.add_all([monitor, BusRoute(number="1", monitors="跟车老师"),
                            *[Student(name=f"学生{k}", class_name="三(2)班", route="1") for k in range(3)],
                            Binding(openid=user_openid(n, "monitor", 0), person=monitor, subscribed=True)])
                for k in range(args.teachers):
                    teacher = Person(name=f"教师{k:02d}", phone=f"1380000{k:04d}", class_name="三(2)班",
                                     roles=[PersonRole(role="teacher")])
                    db.add_all([teacher, Binding(openid=user_openid(n, "teacher", k), person=teacher, subscribed=True)])
    finally:
        county.dispose()
        services.db_engine.dispose()
    return env, accounts


def own_backend_ticks(admin: Any, name: str) -> dict[int, int]:
    """CPU ticks so far of each PostgreSQL backend whose application_name is `name` (the server's)."""
    with admin.connect() as conn:
        pids = [pid for (pid,) in conn.execute(sql_text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"),
                                               {"n": name})]
    ticks = {}
    for pid in pids:
        with suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def user_openid(school: int, role: str, k: int) -> str:
    return f"o_cw_{school:02d}_{role}_{k:03d}"


def scripts(args: argparse.Namespace, school: int) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Each user of a school with its turns: (kind, message type, content or event)."""
    teacher = [("click 帮助", "click", "HELP"), ("帮助", "text", "帮助"), ("报修", "text", "报修"),
               ("报修地点", "text", "三(2)班"), ("报修内容", "text", "教室灯不亮了")]
    users = [(user_openid(school, "teacher", k), teacher) for k in range(args.teachers)]
    users.append((user_openid(school, "monitor", 0), [("校车人数", "text", "校车 1号线 上车 3")]))
    users += [(user_openid(school, "stranger", k), [("subscribe", "subscribe", ""), ("帮助", "text", "帮助")])
              for k in range(args.strangers)]
    return users


def build_turns(args: argparse.Namespace, accounts: list[Account], port: int) -> list[list[Turn]]:
    """Each connection's turns, in order: every user on one connection, its script repeated --rounds times."""
    now = int(time.time())
    users = [(a, openid, script) for a, account in enumerate(accounts) for openid, script in scripts(args, a)]
    lanes: list[list[tuple[int, str, list[tuple[str, str, str]]]]] = [[] for _ in range(args.concurrency)]
    for i, user in enumerate(users):
        lanes[i % args.concurrency].append(user)
    created = Counter[str]()
    out: list[list[Turn]] = []
    for lane in lanes:
        turns: list[Turn] = []
        sims = {openid: WeChatUser(openid, token=accounts[a].token, appid=accounts[a].appid, aes_key=accounts[a].aes_key,
                                   transport=_no_transport, mode="safe", path=accounts[a].path)
                for a, openid, _ in lane}
        for _ in range(args.rounds):
            for a, openid, script in lane:
                sim = sims[openid]
                for kind, msg_type, value in script:
                    created[openid] += 1  # an event's de-duplication key is its sender and CreateTime
                    stamp = now - 100_000 + created[openid]
                    if msg_type == "text":
                        fields = sim.message("text", Content=value, CreateTime=stamp)
                    elif msg_type == "click":
                        fields = sim.message("event", Event="CLICK", EventKey=value, CreateTime=stamp)
                    else:
                        fields = sim.message("event", Event="subscribe", EventKey="", CreateTime=stamp)
                    url, body = sim.request(fields, timestamp=now)
                    raw = (f"POST {url} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: text/xml\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                    turns.append(Turn(raw, a, openid, kind))
        out.append(turns)
    return out


def _no_transport(url: str, body: bytes) -> tuple[int, bytes]:
    raise RuntimeError("the benchmark sends its own requests")


def check(account: Account, crypto: Crypto, turn: Turn, status: int, body: bytes) -> str:
    """"" when the reply is right, else what is wrong with it."""
    if status != 200:
        return f"HTTP {status}"
    try:
        outer = parse_xml(body)
        if outer.get("MsgSignature") != signature(account.token, str(outer["TimeStamp"]), str(outer["Nonce"]),
                                                  str(outer["Encrypt"])):
            return "bad reply: MsgSignature does not verify with the school's token"
        inner = parse_xml(crypto.decrypt(str(outer["Encrypt"])))
    except Exception as exc:  # noqa: BLE001 - any failure is a wrong reply
        return f"bad reply: {type(exc).__name__}"
    if inner.get("ToUserName") != turn.openid or inner.get("MsgType") != "text":
        return "bad reply: wrong addressee or type"
    if EXPECTED[turn.kind] not in str(inner.get("Content", "")) or not inner.get("Content"):
        return f"unexpected answer to {turn.kind}"
    return ""


async def drive(port: int, lanes: list[list[Turn]], seconds: float,
                done: list[tuple[Turn, int, float, bytes]], errors: Counter[str]) -> int:
    deadline = time.perf_counter() + seconds
    sent = 0

    async def lane(turns: list[Turn]) -> None:
        nonlocal sent
        reader = writer = None
        for turn in turns:
            if time.perf_counter() >= deadline:
                break
            sent += 1
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(HOST, port)
                    writer.write(turn.raw)
                    assert reader is not None
                    status, close, body = await _read_response(reader)
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                errors["timeout" if isinstance(exc, TimeoutError) else type(exc).__name__] += 1
                close = True
            else:
                done.append((turn, status, time.perf_counter() - t0, body))
            if close and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(lane(turns) for turns in lanes))
    return sent


def pct(values: list[float], q: float) -> float:
    return 1000 * values[int(q * (len(values) - 1))] if values else 0.0


def run(args: argparse.Namespace, workdir: Path) -> CountyWebhookRun:
    schema = "houqin_cwh_" + uuid.uuid4().hex[:8]
    admin = make_engine(args.pg_url)
    with admin.begin() as conn:
        conn.execute(sql_text(f'CREATE SCHEMA "{schema}"'))
    result = CountyWebhookRun(args.schools, args.concurrency, args.gunicorn_workers, args.gunicorn_args)
    server = None
    try:
        built = time.perf_counter()
        env, accounts = build_county(args, schema, workdir / "instance")
        print(f"  county ready: {len(accounts)} schools, each its own account ({time.perf_counter() - built:.0f} s)",
              flush=True)
        server = start_server("houqin", "bot:create_app()", env, workdir,
                              ["-w", str(args.gunicorn_workers), *args.gunicorn_args.split()])
        lanes = build_turns(args, accounts, server.port)
        cryptos = [Crypto(a.token, a.appid, a.aes_key) for a in accounts]
        warm: list[tuple[Turn, int, float, bytes]] = []  # each school's first turns, untimed: caches, pools
        asyncio.run(drive(server.port, [lane[:2] for lane in lanes], 30, warm, Counter()))
        lanes = [lane[2:] for lane in lanes]
        done: list[tuple[Turn, int, float, bytes]] = []
        errors: Counter[str] = Counter()
        own0 = own_backend_ticks(admin, schema)
        (server0, db0), machine0, cpu0 = process_ticks(server.process.pid), machine_ticks(), time.process_time()
        load0, wall0 = os.getloadavg()[0], time.perf_counter()
        result.sent = asyncio.run(drive(server.port, lanes, args.duration, done, errors))
        result.elapsed = time.perf_counter() - wall0
        (server1, db1), machine1 = process_ticks(server.process.pid), machine_ticks()
        result.client_cpu = (time.process_time() - cpu0) / result.elapsed
        own1 = own_backend_ticks(admin, schema)
        result.db_own_cpu = sum(t - own0.get(pid, 0) for pid, t in own1.items()) / TICKS / result.elapsed
        result.server_cpu = (server1 - server0) / TICKS / result.elapsed
        result.db_cpu = sum(max(0, t - db0.get(pid, 0)) for pid, t in db1.items()) / TICKS / result.elapsed
        total = machine1[1] - machine0[1]
        result.machine_cpu = (machine1[0] - machine0[0]) / total if total else 0.0
        result.load_average = (round(load0, 1), round(os.getloadavg()[0], 1))
        kinds: dict[str, list[float]] = {}
        for turn, status, latency, body in done:
            problem = check(accounts[turn.account], cryptos[turn.account], turn, status, body)
            if problem:
                errors[problem] += 1
                if len(result.samples) < 8:
                    result.samples.append(f"{accounts[turn.account].slug} {turn.kind}: {problem}: {body[:160]!r}")
            kinds.setdefault(turn.kind, []).append(latency)
        latencies = sorted(latency for _, _, latency, _ in done)
        result.completed = len(done)
        result.ok = sum(1 for _, status, _, _ in done if status == 200)
        result.rps = result.completed / result.elapsed if result.elapsed else 0.0
        result.p50_ms, result.p99_ms, result.max_ms = pct(latencies, 0.5), pct(latencies, 0.99), pct(latencies, 1.0)
        result.by_kind = {k: len(v) for k, v in sorted(kinds.items())}
        result.p99_by_kind_ms = {k: round(pct(sorted(v), 0.99), 1) for k, v in sorted(kinds.items())}
        result.errors = dict(errors)
    finally:
        if server is not None:
            stop_server(server)
        drop_schemas(admin, schema)
        admin.dispose()
    return result


def show(r: CountyWebhookRun) -> None:
    print(f"  {r.schools} accounts, c={r.concurrency}, gunicorn -w {r.gunicorn_workers} {r.gunicorn_args}: "
          f"{r.rps:.0f} req/s, "
          f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, max {r.max_ms:.1f} ms; {r.ok}/{r.completed} HTTP 200 "
          f"({r.sent} sent in {r.elapsed:.1f} s); CPU in cores: server {r.server_cpu:.2f}, postgres {r.db_cpu:.2f}, "
          f"client {r.client_cpu:.2f}, machine {100 * r.machine_cpu:.0f}% of {CORES}; "
          f"load {r.load_average[0]}→{r.load_average[1]}", flush=True)
    if r.rps:
        per = 1000 / r.rps
        print(f"  CPU per request (ms): server {r.server_cpu * per:.2f}, its PostgreSQL backends "
              f"{r.db_own_cpu * per:.2f} (every PostgreSQL process {r.db_cpu * per:.2f}), client {r.client_cpu * per:.2f}; "
              f"the machine's other work {max(0.0, r.machine_cpu * CORES - r.server_cpu - r.db_cpu - r.client_cpu):.2f} "
              f"cores", flush=True)
    print(f"  turns: {r.by_kind}", flush=True)
    print(f"  p99 per kind (ms): {r.p99_by_kind_ms}", flush=True)
    for kind, n in sorted(r.errors.items()):
        print(f"      {n} × {kind}")
    for sample in r.samples:
        print(f"      e.g. {sample}")
    met = not r.errors and r.p99_ms < AIM_P99_MS
    print(f"  aim p99 < {AIM_P99_MS:.0f} ms with every reply right: {'MET' if met else 'MISSED'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the timed window, at most (20)")
    parser.add_argument("--rounds", type=int, default=40, help="times each user's script repeats, at most (40)")
    parser.add_argument("--teachers", type=int, default=4, help="bound teachers per school (4)")
    parser.add_argument("--strangers", type=int, default=4, help="followers not bound, per school (4)")
    parser.add_argument("--gunicorn-workers", type=int, default=2, help="gunicorn -w (2)")
    parser.add_argument("--gunicorn-args", default="", metavar="ARGS",
                        help='more gunicorn options, e.g. "-k gthread --threads 4" (none: sync workers)')
    parser.add_argument("--db-pool", type=int, default=8, help="HOUQIN_DB_POOL of each gunicorn worker (8)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", PG_URL))
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.schools <= 100 or not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 1000:
        parser.error("--schools 1-100, --concurrency 1-256, --rounds 1-1000")
    if why := postgres_unreachable(args.pg_url):
        print(f"PostgreSQL {why}", file=sys.stderr)
        return 2
    print(f"machine: {CORES} cores; {args.schools} accounts, concurrency {args.concurrency}, "
          f"at most {args.duration:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="houqin-county-webhook-") as tmp:
        result = run(args, Path(tmp))
    show(result)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), ensure_ascii=False, indent=1))
    return 0 if not result.errors and result.completed else 1


if __name__ == "__main__":
    sys.exit(main())
