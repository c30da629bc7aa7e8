"""Webhook benchmark: Houqin under gunicorn against a bare Flask + wechatpy echo app.

    python bench/webhook.py [--duration 10] [--concurrency 8 32] [--backend sqlite|postgresql|both]

For each backend it migrates a fresh database (SQLite: a file in a temporary directory;
PostgreSQL: a fresh schema in --pg-url, dropped afterwards), then starts on 127.0.0.1, on free
ports, under identical gunicorn settings (`gunicorn -w 2`, sync workers unless --gunicorn-args
says otherwise):

- our app, `bot:create_app()`, configured through its environment variables;
- the echo app, `bench.echo_app:create_app()`: verify, decrypt, parse, echo, encrypt — nothing else.

Each (app, concurrency) run happens in a separate load-generator process: it pre-builds signed,
encrypted safe-mode text messages from --users distinct openids (followers not yet bound, or with
`--senders teachers` bound teachers, whose 帮助 is longer and checks more; each with its own MsgId, stamped
just before the run), warms up, then keeps `concurrency` requests in flight for `duration`
seconds with asyncio and raw HTTP/1.1 (pre-serialised requests, keep-alive when the server offers
it — gunicorn's sync workers do not). After the timed window it checks every 200 reply — the
MsgSignature verifies, it decrypts, it is addressed to the sender and has the expected content —
and lists every non-200. After our app's runs the database must hold exactly one handled row with
a reply per message answered. CPU use of the client, the server processes and the whole machine
is printed so that a saturated load generator would show.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import multiprocessing as mp
import os
import random
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text as sql_text  # noqa: E402

from bot.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from bot.wechat.gateway import Crypto, parse_xml, signature  # noqa: E402
from bot.wechat.simulator import WeChatUser  # noqa: E402
from models import Binding, Person, PersonRole  # noqa: E402

HOST = "127.0.0.1"
PG_URL = "postgresql://127.0.0.1:5432/test"
MESSAGE = "帮助"  # a real command: state and binding look-ups, the help text as reply
OUR_REPLY_MARK = "你可以发送"  # in every help text
AIM_RATIO, AIM_P99_MS, AIM_CONCURRENCY = 0.7, 100.0, 32
REQUEST_TIMEOUT = 10.0
TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
QUIET = 0.15  # the machine counts as idle below this share of all CPUs busy


# ---------------------------------------------------------------------------------------------
# Settings shared by the load generator and both servers


@dataclass(frozen=True)
class Secrets:
    token: str
    appid: str
    aes_key: str
    app_secret: str
    secret_key: str

    @classmethod
    def random(cls) -> Secrets:
        return cls(
            token="bench" + secrets.token_hex(8),
            appid="wxbench" + secrets.token_hex(5),
            aes_key=base64.b64encode(secrets.token_bytes(32)).decode()[:43],
            app_secret=secrets.token_hex(16),
            secret_key=secrets.token_urlsafe(32),
        )

    def env(self, database_url: str, instance: Path) -> dict[str, str]:
        return {
            **os.environ,
            "WECHAT_TOKEN": self.token,
            "WECHAT_APPID": self.appid,
            "WECHAT_SECRET": self.app_secret,
            "WECHAT_AES_KEY": self.aes_key,
            "HOUQIN_SECRET_KEY": self.secret_key,
            "DATABASE_URL": database_url,
            "HOUQIN_INSTANCE": str(instance),
            "WECHAT_API_BASE": "http://127.0.0.1:9",  # never called by the webhook; never the real API
        }


# ---------------------------------------------------------------------------------------------
# The load generator (runs in its own process)


@dataclass
class RunSpec:
    app: str  # "houqin" or "echo"
    port: int
    concurrency: int
    duration: float
    warmup: float
    max_requests: int
    users: int
    secrets: Secrets
    message: str = MESSAGE
    mark: str = OUR_REPLY_MARK


@dataclass
class RunResult:
    app: str
    concurrency: int
    sent: int = 0
    completed: int = 0
    ok: int = 0
    elapsed: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    warmup_ok: int = 0
    pool_exhausted: bool = False
    errors: dict[str, int] = field(default_factory=dict)  # "HTTP 500", "timeout", "bad reply: ..."
    error_samples: list[str] = field(default_factory=list)
    client_cpu: float = 0.0  # cores used by the load generator in the timed window
    server_cpu: float = 0.0  # cores used by gunicorn (master + workers)
    db_cpu: float = 0.0  # cores used by PostgreSQL's processes
    machine_cpu: float = 0.0  # whole machine, share of all cores
    build_seconds: float = 0.0


def build_requests(spec: RunSpec, count: int) -> tuple[list[bytes], list[tuple[str, str]]]:
    """`count` pre-serialised HTTP requests, each a text message with its own MsgId, plus (openid, text)."""
    s = spec.secrets
    users = [WeChatUser(bench_openid(s, i), token=s.token, appid=s.appid,
                        aes_key=s.aes_key, transport=_no_transport, mode="safe") for i in range(spec.users)]
    msg_ids = itertools.count(random.randint(10**15, 10**16 - 10**9))
    now = int(time.time())
    raw: list[bytes] = []
    expect: list[tuple[str, str]] = []
    for i in range(count):
        user = users[i % len(users)]
        text = spec.message if spec.app == "houqin" else f"{spec.message} {i}"
        url, body = user.request(user.message("text", Content=text, MsgId=next(msg_ids)), timestamp=now)
        raw.append((f"POST {url} HTTP/1.1\r\nHost: {HOST}:{spec.port}\r\nContent-Type: text/xml\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        expect.append((user.openid, text))
    return raw, expect


def bench_openid(keys: Secrets, i: int) -> str:
    return f"o_bench_{i:05d}_{keys.token[-8:]}"


def bind_teachers(url: str, keys: Secrets, users: int) -> None:
    """Make each benchmark openid a bound teacher (`--senders teachers`)."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as db, db.begin():
            for i in range(users):
                person = Person(name=f"教师{i:05d}", phone=f"139{i:08d}", roles=[PersonRole(role="teacher")])
                db.add_all([person, Binding(openid=bench_openid(keys, i), person=person)])
    finally:
        engine.dispose()


def _no_transport(url: str, body: bytes) -> tuple[int, bytes]:
    raise RuntimeError("the benchmark sends its own requests")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split(b" ", 2)[1])
    length, close = -1, status_line.startswith(b"HTTP/1.0")
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    body = await reader.readexactly(length) if length >= 0 else await reader.read()
    return status, close or length < 0, body


async def _drive(spec: RunSpec, requests: list[bytes], start: int, stop: int, seconds: float,
                 results: list[tuple[int, int, float, bytes]], errors: Counter[str], samples: list[str]) -> int:
    """Keep `spec.concurrency` requests in flight over requests[start:stop] for at most `seconds`."""
    counter = itertools.count(start)
    deadline = time.perf_counter() + seconds
    sent = 0

    async def one_connection() -> None:
        nonlocal sent
        reader = writer = None
        while time.perf_counter() < deadline:
            i = next(counter)
            if i >= stop:
                return
            sent += 1
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(HOST, spec.port)
                    writer.write(requests[i])
                    assert reader is not None
                    status, close, body = await _read_response(reader)
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
                errors[kind] += 1
                if len(samples) < 10:
                    samples.append(f"request {i}: {kind}: {exc}")
                close, status, body = True, 0, b""
            else:
                results.append((i, status, time.perf_counter() - t0, body))
            if close and writer is not None:
                writer.close()
                with suppress(OSError):
                    await writer.wait_closed()
                reader = writer = None
        if writer is not None:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(one_connection() for _ in range(spec.concurrency)))
    return sent


def check_reply(spec: RunSpec, crypto: Crypto, status: int, body: bytes, openid: str, text: str) -> str:
    """"" when the reply is right, else what is wrong with it."""
    if status != 200:
        return f"HTTP {status}"
    try:
        outer = parse_xml(body)
        if outer.get("MsgSignature") != signature(spec.secrets.token, str(outer["TimeStamp"]),
                                                  str(outer["Nonce"]), str(outer["Encrypt"])):
            return "bad reply: MsgSignature does not verify"
        inner = parse_xml(crypto.decrypt(str(outer["Encrypt"])))
    except Exception as exc:  # noqa: BLE001 - any failure is a wrong reply
        return f"bad reply: {type(exc).__name__}"
    if inner.get("ToUserName") != openid or inner.get("MsgType") != "text":
        return "bad reply: wrong addressee or type"
    content = str(inner.get("Content", ""))
    if (spec.app == "echo" and content != text) or (spec.app == "houqin" and spec.mark not in content):
        return "bad reply: unexpected content"
    return ""


def run_load(spec: RunSpec, started: Any, finished: Any) -> RunResult:
    """Build, warm up, run, check. `started`/`finished` (events) frame the timed window."""
    result = RunResult(spec.app, spec.concurrency)
    t0 = time.perf_counter()
    requests, expect = build_requests(spec, spec.max_requests)
    result.build_seconds = time.perf_counter() - t0
    crypto = Crypto(spec.secrets.token, spec.secrets.appid, spec.secrets.aes_key)
    warm_count = min(len(requests) // 10, max(spec.concurrency * 20, 200))

    warm: list[tuple[int, int, float, bytes]] = []
    warm_errors: Counter[str] = Counter()
    samples: list[str] = []
    asyncio.run(_drive(spec, requests, 0, warm_count, spec.warmup, warm, warm_errors, samples))
    result.warmup_ok = sum(1 for _, status, _, _ in warm if status == 200)
    errors: Counter[str] = Counter({f"warm-up: {kind}": n for kind, n in warm_errors.items()})
    for i, status, _, body in warm:
        if status != 200:
            errors[f"warm-up: HTTP {status}"] += 1
            if len(samples) < 10:
                samples.append(f"warm-up request {i}: HTTP {status}: {body[:200]!r}")
    first = warm_count

    timed: list[tuple[int, int, float, bytes]] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    started.set()
    result.sent = asyncio.run(_drive(spec, requests, first, len(requests), spec.duration, timed, errors, samples))
    result.elapsed = time.perf_counter() - wall0
    finished.set()
    result.client_cpu = (time.process_time() - cpu0) / result.elapsed
    result.pool_exhausted = result.sent >= len(requests) - first

    for i, status, _, body in timed:
        problem = check_reply(spec, crypto, status, body, *expect[i])
        if problem:
            errors[problem] += 1
            if len(samples) < 10:
                samples.append(f"request {i}: {problem}: {body[:200]!r}")
    latencies = sorted(latency for _, _, latency, _ in timed)
    result.completed = len(timed)
    result.ok = sum(1 for _, status, _, _ in timed if status == 200)
    result.rps = result.completed / result.elapsed if result.elapsed else 0.0
    if latencies:
        result.p50_ms = 1000 * latencies[int(0.50 * (len(latencies) - 1))]
        result.p99_ms = 1000 * latencies[int(0.99 * (len(latencies) - 1))]
        result.max_ms = 1000 * latencies[-1]
    result.errors = dict(errors)
    result.error_samples = samples
    return result


def _client_main(spec: RunSpec, conn: Any, started: Any, finished: Any) -> None:
    try:
        conn.send(("ok", asdict(run_load(spec, started, finished))))
    except BaseException as exc:  # noqa: BLE001 - report to the parent, whatever it is
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        started.set()
        finished.set()
        conn.close()


# ---------------------------------------------------------------------------------------------
# CPU accounting from /proc


def _proc_ticks(pid: int) -> tuple[int, int, str]:
    """(utime + stime in clock ticks, parent pid, command name) of a process."""
    with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
        head, _, tail = f.read().rpartition(")")
    fields = tail.split()
    return int(fields[11]) + int(fields[12]), int(fields[1]), head.partition("(")[2]


def process_ticks(root: int) -> tuple[int, dict[int, int]]:
    """CPU ticks used so far by `root` and its direct children (gunicorn's master and workers), and
    by each of PostgreSQL's processes."""
    ours, db = 0, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with suppress(OSError, IndexError, ValueError):
            ticks, ppid, name = _proc_ticks(int(entry))
            if int(entry) == root or ppid == root:
                ours += ticks
            elif name in ("postgres", "postmaster"):
                db[int(entry)] = ticks
    return ours, db


def db_ticks_between(before: dict[int, int], after: dict[int, int]) -> int:
    """PostgreSQL's CPU ticks in between (processes that exited meanwhile are not counted)."""
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


def machine_load(seconds: float = 1.0) -> float:
    """The share of all CPUs busy over the next `seconds`."""
    busy0, total0 = machine_ticks()
    time.sleep(seconds)
    busy1, total1 = machine_ticks()
    return (busy1 - busy0) / max(total1 - total0, 1)


def wait_quiet(limit: float) -> None:
    """Wait up to `limit` seconds until other programs leave the machine (nearly) idle."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if machine_load(min(1.0, max(deadline - time.monotonic(), 0.1))) <= QUIET:
            return
    if limit > 0:
        print(f"  (the machine did not become idle within {limit:g} s; running anyway)", flush=True)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs since boot."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


# ---------------------------------------------------------------------------------------------
# Servers and databases


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start_server(name: str, app: str, env: dict[str, str], logdir: Path, extra: list[str]) -> Server:
    port = free_port()
    log = logdir / f"{name}.log"
    cmd = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"{HOST}:{port}", "--chdir", str(ROOT),
           "--log-level", "warning", *extra, app]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                   start_new_session=True)
    server = Server(name, port, process, log)
    wait_ready(server)
    return server


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    """Until both workers answer (a few GETs), or fail with the server's log."""
    deadline = time.monotonic() + timeout
    answered = 0
    while time.monotonic() < deadline and answered < 4:
        if server.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://{HOST}:{server.port}/healthz", timeout=5):
                answered += 1
        except urllib.error.HTTPError:
            answered += 1  # the echo app has no /healthz: a 404 still means it is serving
        except OSError:
            time.sleep(0.2)
    if answered < 4:
        raise RuntimeError(f"{server.name} did not start; its log:\n{server.log.read_text(errors='replace')}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=15)


@contextmanager
def database(backend: str, workdir: Path, pg_url: str) -> Iterator[str]:
    """A freshly migrated database for one backend; its URL as the app's DATABASE_URL."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'houqin.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    schema = "houqin_webhook_bench_" + uuid.uuid4().hex[:10]
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sql_text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    url = f"{pg_url}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sql_text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def check_database(url: str, answered: int) -> list[str]:
    """Problems with the stored messages: each answered message stored once, handled, with its reply."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows, keys, handled, replied = conn.execute(sql_text(
                "SELECT count(*), count(DISTINCT dedup_key), "
                "sum(CASE WHEN status = 'handled' THEN 1 ELSE 0 END), count(reply) FROM inbound_messages"
            )).one()
    finally:
        engine.dispose()
    problems = []
    if rows != answered:
        problems.append(f"{rows} stored messages for {answered} answered requests")
    if keys != rows:
        problems.append(f"{rows - keys} duplicate de-duplication keys")
    if (handled or 0) != rows or replied != rows:
        problems.append(f"of {rows} stored messages {handled} are handled and {replied} have a reply")
    return problems


def measure(spec: RunSpec, server: Server) -> RunResult:
    """One load-generator process against `server`, with the CPU use of everything in the timed window."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    started, finished = ctx.Event(), ctx.Event()
    process = ctx.Process(target=_client_main, args=(spec, child, started, finished), daemon=True)
    process.start()
    child.close()
    budget = spec.duration + spec.warmup + 300  # building, warm-up, checking: generous but bounded
    try:
        if not started.wait(budget):
            raise RuntimeError("the load generator did not start its run")
        (server0, db0), machine0 = process_ticks(server.process.pid), machine_ticks()
        wall0 = time.perf_counter()
        finished.wait(spec.duration + REQUEST_TIMEOUT + 60)
        wall = time.perf_counter() - wall0
        (server1, db1), machine1 = process_ticks(server.process.pid), machine_ticks()
        if not parent.poll(budget):
            raise RuntimeError("the load generator did not report")
        kind, payload = parent.recv()
        if kind != "ok":
            raise RuntimeError(f"the load generator failed: {payload}")
        result = RunResult(**payload)
        result.server_cpu = (server1 - server0) / TICKS / wall if wall else 0.0
        result.db_cpu = db_ticks_between(db0, db1) / TICKS / wall if wall else 0.0
        total = machine1[1] - machine0[1]
        result.machine_cpu = (machine1[0] - machine0[0]) / total if total else 0.0
        return result
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)


# ---------------------------------------------------------------------------------------------
# Reporting


def other_load(r: RunResult) -> float:
    """Cores busy with anything but this run's client and server (other programs on the machine)."""
    return max(r.machine_cpu * CORES - r.client_cpu - r.server_cpu - r.db_cpu, 0.0)


def print_run(backend: str, r: RunResult) -> None:
    print(f"  {backend:10} {r.app:6} c={r.concurrency:<3} {r.rps:7.0f} req/s  p50 {r.p50_ms:6.1f} ms  "
          f"p99 {r.p99_ms:6.1f} ms  max {r.max_ms:6.1f} ms  {r.ok}/{r.completed} ok  "
          f"CPU (in cores): client {r.client_cpu:.2f}, server {r.server_cpu:.2f}, postgres {r.db_cpu:.2f}, "
          f"other {other_load(r):.2f} of {CORES}; "
          f"server (+ postgres) CPU per request {1000 * r.server_cpu / r.rps if r.rps else 0:.2f} "
          f"(+ {1000 * r.db_cpu / r.rps if r.rps else 0:.2f}) ms"
          + ("  [message pool exhausted: raise --max-requests]" if r.pool_exhausted else ""), flush=True)
    if r.client_cpu > 0.8:
        print("      WARNING: the load generator used most of a core; it may be the bottleneck")
    for kind, count in sorted(r.errors.items()):
        print(f"      {count} × {kind}")
    for sample in r.error_samples:
        print(f"      e.g. {sample}")


def table(results: list[tuple[str, RunResult, RunResult]]) -> str:
    lines = [
        "| backend | concurrency | echo req/s | echo p50 | echo p99 | houqin req/s | houqin p50 | houqin p99 "
        "| ratio | non-200 / bad | other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, echo, ours in results:
        ratio = ours.rps / echo.rps if echo.rps else 0.0
        bad = sum(echo.errors.values()) + sum(ours.errors.values())
        lines.append(
            f"| {backend} | {ours.concurrency} | {echo.rps:.0f} | {echo.p50_ms:.1f} ms | {echo.p99_ms:.1f} ms "
            f"| {ours.rps:.0f} | {ours.p50_ms:.1f} ms | {ours.p99_ms:.1f} ms | {ratio:.2f} | {bad} "
            f"| {(other_load(echo) + other_load(ours)) / 2:.2f} cores |"
        )
    return "\n".join(lines)


def verdicts(results: list[tuple[str, RunResult, RunResult]]) -> list[str]:
    out = []
    for backend, echo, ours in results:
        if ours.concurrency != AIM_CONCURRENCY:
            continue
        ratio = ours.rps / echo.rps if echo.rps else 0.0
        met = ratio >= AIM_RATIO and ours.p99_ms < AIM_P99_MS and not ours.errors and not echo.errors
        out.append(f"{backend}: ratio {ratio:.2f} (aim ≥ {AIM_RATIO}), p99 {ours.p99_ms:.1f} ms "
                   f"(aim < {AIM_P99_MS:.0f}) at c={AIM_CONCURRENCY}: {'MET' if met else 'MISSED'}")
    return out


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run (default 10)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32],
                        help="requests in flight (default: 8 32)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", PG_URL),
                        help=f"PostgreSQL database to create a throw-away schema in (default {PG_URL})")
    parser.add_argument("--users", type=int, default=1000, help="distinct openids (default 1000)")
    parser.add_argument("--senders", choices=["strangers", "teachers"], default="strangers",
                        help="who the openids are: followers not yet bound (default), or bound teachers")
    parser.add_argument("--max-requests", type=int, default=40000,
                        help="messages pre-built per run; a run stops early if they run out (default 40000)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before each run")
    parser.add_argument("--gunicorn-args", default="",
                        help="extra gunicorn flags for both apps, e.g. '--threads 4' (default: none)")
    parser.add_argument("--message", default=MESSAGE,
                        help=f"the text every request sends (default {MESSAGE!r}: the help)")
    parser.add_argument("--expect", default=OUR_REPLY_MARK,
                        help=f"what our app's every reply must contain (default {OUR_REPLY_MARK!r})")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each run, wait up to this long for the machine to be idle (default 0)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.users <= 0 or args.max_requests <= 0 or min(args.concurrency) <= 0:
        parser.error("--duration, --users, --max-requests and --concurrency must be positive")

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    extra = shlex.split(args.gunicorn_args)
    keys = Secrets.random()
    idle_load = machine_load()
    if idle_load > QUIET:
        print(f"WARNING: the machine is already {idle_load:.0%} busy before the benchmark; figures will be low",
              flush=True)
    print(f"gunicorn -w 2 {' '.join(extra)} | {os.cpu_count()} CPUs | {args.duration:g} s per run | "
          f"concurrency {args.concurrency} | {args.users} openids ({args.senders}) | message {args.message!r}", flush=True)

    results: list[tuple[str, RunResult, RunResult]] = []
    failures: list[str] = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"houqin-bench-{backend}-") as tmp:
            workdir = Path(tmp)
            with database(backend, workdir, args.pg_url) as url:
                if args.senders == "teachers":
                    bind_teachers(url, keys, args.users)
                env = keys.env(url, workdir / "instance")
                servers: list[Server] = []
                answered = 0
                try:
                    ours = start_server("houqin", "bot:create_app()", env, workdir, extra)
                    servers.append(ours)
                    echo = start_server("echo", "bench.echo_app:create_app()", env, workdir, extra)
                    servers.append(echo)
                    for concurrency in args.concurrency:
                        pair: dict[str, RunResult] = {}
                        for name, server in (("echo", echo), ("houqin", ours)):
                            spec = RunSpec(name, server.port, concurrency, args.duration, args.warmup,
                                           args.max_requests, args.users, keys, args.message, args.expect)
                            wait_quiet(args.wait_quiet)
                            pair[name] = measure(spec, server)
                            print_run(backend, pair[name])
                            if name == "houqin":
                                answered += pair[name].ok + pair[name].warmup_ok
                        results.append((backend, pair["echo"], pair["houqin"]))
                    for server in servers:
                        if server.process.poll() is not None:
                            failures.append(f"{backend}: {server.name} exited during the run")
                finally:
                    for server in servers:
                        stop_server(server)
                problems = check_database(url, answered)
                failures += [f"{backend} database: {p}" for p in problems]
                print(f"  {backend} database: " + ("; ".join(problems) if problems else
                                                   f"{answered} messages stored once each, handled, with replies"))
            for server in servers:
                text = server.log.read_text(errors="replace").strip()
                if text:
                    print(f"  {backend} {server.name} server log (last lines):")
                    for line in text.splitlines()[-10:]:
                        print("    " + line)

    print()
    print(table(results))
    print()
    for line in verdicts(results):
        print(line)
    failures += [f"{b} {r.app} c={r.concurrency}: {sum(r.errors.values())} bad responses"
                 for b, echo, ours in results for r in (echo, ours) if r.errors]
    for failure in failures:
        print("FAILED: " + failure)
    if args.json:
        args.json.write_text(json.dumps([{"backend": b, "echo": asdict(e), "houqin": asdict(o)}
                                         for b, e, o in results], indent=2), encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
