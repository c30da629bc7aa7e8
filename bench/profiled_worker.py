"""`houqin worker` under cProfile, every thread of it: bench/county.py --profile DIR runs this instead.

    python bench/profiled_worker.py OUT.prof

Each thread runs under a profiler of its own (threading.Thread.run wrapped before anything starts);
when the worker stops (SIGTERM, as `houqin worker` stops), the threads' stats are merged into OUT.prof.
Read it with `python -m pstats OUT.prof` (sort tottime / cumulative).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROFILES: list[cProfile.Profile] = []
LOCK = threading.Lock()
_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile(time.thread_time)  # CPU, not wall: waits on WeChat and locks cost nothing
    with LOCK:
        PROFILES.append(profile)
    profile.enable()
    try:
        _run(self)
    finally:
        profile.disable()


def dump(out: Path) -> None:
    with LOCK:
        profiles = list(PROFILES)
    stats: Any = None
    for p in profiles:
        p.disable()  # a daemon thread still running: its figures so far
        try:
            stats = pstats.Stats(p) if stats is None else stats.add(p)
        except TypeError:  # a profiler that never collected anything
            continue
    if stats is not None:
        stats.dump_stats(str(out))


def main() -> None:
    out = Path(sys.argv[1])
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    from bot.cli import main as houqin

    main_profile = cProfile.Profile(time.thread_time)
    with LOCK:
        PROFILES.append(main_profile)
    main_profile.enable()
    try:
        houqin(["worker"], standalone_mode=False)
    finally:
        main_profile.disable()
        dump(out)


if __name__ == "__main__":
    main()
