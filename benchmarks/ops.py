"""umbau.ops benchmark: writers' latency while the same schema change runs as plain Alembic
revisions and as ``umbau.ops`` revisions, side by side in one run.

A table ``items`` of ``--rows`` rows; a writer process (its own connections) updates a
random row or inserts one every few milliseconds and times each statement. The change,
four revisions each way: an index on ``owner_id``, a foreign key to ``owners``,
``owner_id`` NOT NULL, ``score`` from double precision to numeric(12,4).

- plain: ``op.create_index``, ``op.create_foreign_key`` (validated), ``op.alter_column(
  nullable=False)``, ``op.alter_column(type_=...)``;
- ops: ``ops.create_index``, ``ops.add_foreign_key``, ``ops.set_not_null``,
  ``ops.change_type`` (expand, backfill) and ``ops.contract_change_type``.

Both run through ``umbau upgrade`` (lock_timeout 2 s, retries). Printed per way: the
migration's duration and the writers' p50, p99 and maximum latency, and the ratios.

    python -m benchmarks.ops [--rows 2000000] [--database-url URL] [--pause-ms 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import tempfile
import textwrap
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psycopg

from benchmarks._common import libpq as _libpq
from benchmarks._common import machine, table, write_results
from benchmarks._common import server as common_server
from umbau.postgres.connect import normalize_url

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "umbau_bench_ops"
SLOW = 0.1  # a write slower than this counts as stalled (seconds)

SEED = """
CREATE TABLE owners (id int PRIMARY KEY);
INSERT INTO owners SELECT g FROM generate_series(1, 100) g;
CREATE TABLE items_seed AS
SELECT g::bigint AS id, 1 + g % 100 AS owner_id, (g % 1000) / 1000.0::float8 AS score,
       repeat('x', 60) AS payload
FROM generate_series(1, {rows}) g;
"""

PLAIN = [
    ('op.create_index("ix_items_owner", "items", ["owner_id"])',
     'op.drop_index("ix_items_owner", table_name="items")'),
    ('op.create_foreign_key("fk_items_owner", "items", "owners", ["owner_id"], ["id"])',
     'op.drop_constraint("fk_items_owner", "items", type_="foreignkey")'),
    ('op.alter_column("items", "owner_id", nullable=False)',
     'op.alter_column("items", "owner_id", nullable=True)'),
    ('op.alter_column("items", "score", type_=sa.Numeric(12, 4))',
     'op.alter_column("items", "score", type_=sa.Float())'),
]
OPS = [
    ('ops.create_index("ix_items_owner", "items", ["owner_id"])',
     'ops.drop_index("ix_items_owner", "items")'),
    ('ops.add_foreign_key("fk_items_owner", "items", "owners", ["owner_id"], ["id"])',
     'op.drop_constraint("fk_items_owner", "items", type_="foreignkey")'),
    ('ops.set_not_null("items", "owner_id")',
     'op.alter_column("items", "owner_id", nullable=True)'),
    ('ops.change_type("items", "score", sa.Numeric(12, 4))',
     'ops.revert_change_type("items", "score", sa.Float())'),
    ('ops.contract_change_type("items", "score", sa.Numeric(12, 4))',
     'ops.revert_contract_change_type("items", "score", sa.Numeric(12, 4), sa.Float())'),
]

REVISION = '''"""{message}

Breaking changes:
- none

Migration guide:
- nothing to do
"""
import sqlalchemy as sa
from alembic import op

from umbau import ops

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    {upgrade}


def downgrade():
    {downgrade}
'''


def server(database_url: str | None) -> AbstractContextManager[str]:
    """The maintenance-database URL of the named server, or of the embedded one."""
    return common_server(database_url, "ops-pg")


def fresh_database(server_url: str, rows: int) -> str:
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = normalize_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(SEED.format(rows=int(rows)))
    return url


def fresh_items(url: str) -> None:
    """``items`` from the seed, with its primary key, vacuumed; no umbau state left."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        for statement in ("DROP TABLE IF EXISTS items, alembic_version, umbau_history, "
                          "umbau_backfill_chunks, umbau_backfills CASCADE",
                          "DROP FUNCTION IF EXISTS umbau_sync_items_score_score_umbau_new()",
                          "CREATE TABLE items AS SELECT * FROM items_seed",
                          "ALTER TABLE items ADD PRIMARY KEY (id)",
                          "VACUUM ANALYZE items", "CHECKPOINT"):
            conn.execute(statement)


def write_project(folder: Path, steps: Sequence[tuple[str, str]], url: str) -> Any:
    from umbau.commands.init import init
    from umbau.settings import load_settings

    init(load_settings(cwd=folder, environ={}), folder)
    down = None
    for number, (up, back) in enumerate(steps, start=1):
        revision = f"r{number}"
        source = REVISION.format(message=f"step {number}", revision=revision, down=down,
                                 upgrade=up, downgrade=back)
        if up.startswith("ops.contract"):
            source = source.replace("depends_on = None\n", 'depends_on = None\nphase = "post"\n')
        (folder / "migrations" / "versions" / f"{revision}.py").write_text(source)
        down = revision
    return load_settings(cwd=folder, environ={}, flags={"database_url": url})


def writer(url: str, rows: int, pause: float, stop: Any, out: Any) -> None:
    """The application: update a random row or insert one, timing every statement."""
    rng = random.Random(7)
    latencies: list[float] = []
    next_id = 10 * rows
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        while not stop.is_set():
            began = time.perf_counter()
            if rng.random() < 0.3:
                next_id += 1
                conn.execute("INSERT INTO items (id, owner_id, score, payload) "
                             "VALUES (%s, %s, 0.5, 'w')", (next_id, 1 + next_id % 100))
            else:
                conn.execute("UPDATE items SET score = %s WHERE id = %s",
                             (rng.random(), rng.randint(1, rows)))
            latencies.append(time.perf_counter() - began)
            time.sleep(pause)
    out.put(latencies)


def measure(url: str, settings: Any, rows: int, pause: float) -> dict[str, Any]:
    """Upgrade to head with the writer running; the writer's latencies and the duration."""
    from umbau.commands.migrate import upgrade

    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=writer, args=(url, rows, pause, stop, out))
    proc.start()
    time.sleep(2.0)  # the writer is connected and warm
    began = time.perf_counter()
    result = upgrade(settings, "head", allow_unsafe=True, backup="never")
    duration = time.perf_counter() - began
    time.sleep(1.0)
    stop.set()
    latencies = sorted(out.get(timeout=60))
    proc.join(30)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    slow = [x for x in latencies if x > SLOW]
    return {"duration_s": round(duration, 2), "retries": result.retries,
            "steps_s": [round(s.duration, 2) for s in result.steps],
            "writes": len(latencies), "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(p99 * 1000, 1), "max_ms": round(latencies[-1] * 1000, 1),
            "slow_writes": len(slow), "stalled_s": round(sum(slow), 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--pause-ms", type=float, default=5.0,
                        help="the writer's pause between statements")
    parser.add_argument("--database-url",
                        help="a server's maintenance database instead of the embedded one")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    with server(args.database_url) as server_url, tempfile.TemporaryDirectory() as tmp:
        url = fresh_database(server_url, args.rows)
        with psycopg.connect(_libpq(url)) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        for name, steps in (("plain Alembic", PLAIN), ("umbau.ops", OPS)):
            fresh_items(url)
            settings = write_project(Path(tmp) / name.split()[0], steps, url)
            results[name] = measure(url, settings, args.rows, args.pause_ms / 1000)
            print(f"{name}: {results[name]}", flush=True)
        with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    plain, ops = results["plain Alembic"], results["umbau.ops"]
    rows = [[name, f"{r['duration_s']:.1f}", r["writes"], f"{r['p50_ms']:.1f}",
             f"{r['p99_ms']:.1f}", f"{r['max_ms']:.1f}", r["slow_writes"],
             f"{r['stalled_s']:.2f}"] for name, r in results.items()]
    print(f"\n{args.rows:,} rows, PostgreSQL {version}; writer pause {args.pause_ms} ms")
    print(table(rows, ["way", "migration s", "writes", "p50 ms", "p99 ms", "max ms",
                       "writes > 100 ms", "stalled s"]))
    print(textwrap.dedent(f"""
        writers' max:  plain / ops = {plain['max_ms'] / ops['max_ms']:.1f}x
        writers' p99:  plain / ops = {plain['p99_ms'] / ops['p99_ms']:.1f}x
        migration:     ops / plain = {ops['duration_s'] / plain['duration_s']:.1f}x
        target (ops):  max <= 2000 ms: {ops['max_ms'] <= 2000}; p99 <= 50 ms: {ops['p99_ms'] <= 50}
        """).rstrip())
    path = write_results("ops", {"args": vars(args), "server_version": version,
                                 "machine": machine(), "results": results})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
