"""send_notice to N parents on a fresh SQLite database: how long one notice (a push and page per
recipient) takes to queue. `python bench/notice_fanout.py 500`."""
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root: tests.conftest

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from bot.db import upgrade
from bot.outbox import Outbox
from handlers.notices import send_notice
from models import Binding, Person, PersonRole

n = int(sys.argv[1])
tmp = Path(tempfile.mkdtemp())
engine = create_engine(f"sqlite:///{tmp}/b.db")
upgrade(engine)
Session = sessionmaker(engine)
with Session() as s, s.begin():
    for i in range(n):
        p = Person(name=f"家长{i}", roles=[PersonRole(role="parent")])
        s.add(p)
        s.flush()
        s.add(Binding(openid=f"o{i:027d}", person_id=p.id))
from tests.conftest import make_settings  # noqa: E402

settings = make_settings(tmp)
now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
with Session() as s, s.begin():
    t = time.perf_counter()
    sent = send_notice(s, Outbox(s, settings, now), None, "全体家长", "防溺水告家长书", "远离危险水域。")
    took = time.perf_counter() - t
    count = len(sent.notice.recipients)
print(f"{n} parents: {took:.2f}s ({count} recipients)")
