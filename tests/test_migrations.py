"""The Alembic migrations are the schema: on SQLite and PostgreSQL they build exactly what the models
declare, and every one of them can be undone and done again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from bot.db import alembic_config, make_engine, upgrade
from models import Base
from tests.conftest import PG_URL, PG_WHY


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of each backend (PostgreSQL: a schema of this test's own)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield engine
        engine.dispose()
        return
    if PG_URL is None:
        pytest.skip(PG_WHY)
    schema = "houqin_migrations_" + uuid.uuid4().hex[:10]
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, schema=schema)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_the_migrations_build_exactly_the_models(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_every_migration_can_be_undone_and_redone(empty_engine: Engine) -> None:
    config = alembic_config(empty_engine)
    revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]
    assert len(revisions) >= 8
    upgrade(empty_engine)
    for older in revisions[1:]:  # newest first: step down one at a time to the first
        command.downgrade(config, "-1")
        with empty_engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == older
    command.downgrade(config, "base")
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    upgrade(empty_engine)
    assert differences(empty_engine) == []
