"""Audit ledger throughput: chained appends vs plain INSERTs, and verification speed.

    python -m bench.audit_ledger [--rows 20000] [--verify-rows 1000000]

Baseline in the same run: the same rows INSERTed into an unchained table with the same
columns and indexes, by the same number of concurrent writers, one transaction per row (what
an application without a chain would do). Chained appends go through `AuditLog.append`
(group commit under the chain lock). Verification streams a ledger of `--verify-rows` rows
with signed checkpoints through `verify_ledger` (every link and every checkpoint).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.database import bench_database
from proctor.audit.checkpoints import Checkpointer, DirectorySink
from proctor.audit.keys import LedgerKeys
from proctor.audit.verify import verify_ledger
from proctor.canonical import canonical_text
from proctor.db import connect_pool
from proctor.models import AuditEvent
from proctor.stores.audit_log import AuditLog

RESULTS = Path(__file__).parent / "results"
WRITERS = 8


def event(i: int, prefix: str = "k") -> AuditEvent:
    return AuditEvent(
        idempotency_key=f"{prefix}{i}",
        event_type="decided",
        workflow_id=f"action-{prefix}{i}",
        agent_id=f"agent-{i % 50}",
        action="refund_requests",
        actor=f"agent-{i % 50}",
        payload={
            "params": {"orderId": i, "amount": 12.5},
            "decision": {"effect": "allow", "rule_id": "refunds"},
        },
    )


async def plain_inserts(pool: asyncpg.Pool, rows: int, writers: int) -> float:
    await pool.execute("CREATE TABLE IF NOT EXISTS plain_log (LIKE audit_log INCLUDING ALL)")
    await pool.execute("TRUNCATE plain_log")
    per = rows // writers

    async def writer(w: int) -> None:
        for i in range(w * per, (w + 1) * per):
            e = event(i, "p")
            await pool.execute(
                "INSERT INTO plain_log (seq, recorded_at, idempotency_key, workflow_id,"
                " event_type, agent_id, action, actor, payload, prev_hash, hash)"
                " VALUES ($1, now(), $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                i + 1,
                e.idempotency_key,
                e.workflow_id,
                e.event_type,
                e.agent_id,
                e.action,
                e.actor,
                canonical_text(e.payload),
                f"{i:064x}",
                f"{i + 1:064x}",
            )

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return per * writers / (time.perf_counter() - start)


async def chained(audit: AuditLog, rows: int, writers: int, prefix: str) -> float:
    per = rows // writers

    async def writer(w: int) -> None:
        for i in range(w * per, (w + 1) * per):
            await audit.append(event(i, prefix))

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return per * writers / (time.perf_counter() - start)


async def verification(dsn: str, rows: int, tmp: Path) -> dict[str, float]:
    pool = await connect_pool(dsn, max_size=4)
    try:
        audit = AuditLog(pool)
        have, _ = await audit.head()
        for start in range(have, rows, 10_000):
            await audit.append_many(
                [event(i, "v") for i in range(start, min(rows, start + 10_000))]
            )
        keys, sink = LedgerKeys.generate(), DirectorySink(tmp / "sink")
        await Checkpointer(audit, keys, sink, every_rows=10_000).catch_up()
        total, _ = await audit.head()
        # A freshly bulk-loaded table makes its first reader set hint bits on every page; a
        # ledger older than a few minutes has had that done by autovacuum. Measure both.
        cold = await timed_verify(audit, sink, keys, total)
        await pool.execute("VACUUM (ANALYZE) audit_log")
        warm = [await timed_verify(audit, sink, keys, total) for _ in range(3)]
        started = time.perf_counter()
        scanned = await pool.fetchval("SELECT count(*) FROM (SELECT * FROM audit_log) s")
        scan_seconds = time.perf_counter() - started
        best = min(warm)
        return {
            "rows": total,
            "first_pass_after_bulk_load_seconds": round(cold, 2),
            "first_pass_rows_per_second": round(total / cold),
            "vacuumed_seconds_median_of_3": round(sorted(warm)[1], 2),
            "rows_per_second": round(total / sorted(warm)[1]),
            "best_rows_per_second": round(total / best),
            "baseline_count_scan_rows_per_second": round(scanned / scan_seconds),
        }
    finally:
        await pool.close()


async def timed_verify(audit: AuditLog, sink: DirectorySink, keys: LedgerKeys, total: int) -> float:
    started = time.perf_counter()
    report = await verify_ledger(audit, keys=keys.pinned, external=sink.lines())
    seconds = time.perf_counter() - started
    assert report.intact and report.rows_checked == total, report.findings
    return seconds


async def main_async(rows: int, verify_rows: int) -> dict[str, Any]:
    async with bench_database() as dsn:
        pool = await connect_pool(dsn, max_size=WRITERS + 2)
        try:
            await chained(AuditLog(pool), 800, WRITERS, "warm")  # warm-up, not counted
            await plain_inserts(pool, 800, WRITERS)
            plain = await plain_inserts(pool, rows, WRITERS)
            batched = await chained(AuditLog(pool), rows, WRITERS, "b")
            single = await chained(AuditLog(pool), rows // 4, 1, "s")
            plain_one = await plain_inserts(pool, rows // 4, 1)
        finally:
            await pool.close()
        with tempfile.TemporaryDirectory() as tmp:
            verified = await verification(dsn, verify_rows, Path(tmp))
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "append": {
            "writers": WRITERS,
            "rows": rows,
            "plain_insert_rows_per_second": round(plain),
            "chained_batched_rows_per_second": round(batched),
            "ratio_chained_to_plain": round(batched / plain, 2),
            "single_writer": {
                "plain_rows_per_second": round(plain_one),
                "chained_rows_per_second": round(single),
                "ratio": round(single / plain_one, 2),
            },
        },
        "verify": verified,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--verify-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.rows, args.verify_rows))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit_ledger.json").write_text(json.dumps(result, indent=2) + "\n")
    append, verify = result["append"], result["verify"]
    print(
        f"append, {WRITERS} writers: plain INSERT {append['plain_insert_rows_per_second']}/s, "
        f"chained {append['chained_batched_rows_per_second']}/s "
        f"({append['ratio_chained_to_plain']:.2f}x of plain)"
    )
    one = append["single_writer"]
    print(
        f"append, 1 writer: plain {one['plain_rows_per_second']}/s, chained "
        f"{one['chained_rows_per_second']}/s ({one['ratio']:.2f}x)"
    )
    print(
        f"verify {verify['rows']} rows (links + signed checkpoints + external sink): "
        f"{verify['rows_per_second']} rows/s median of 3 "
        f"({verify['vacuumed_seconds_median_of_3']} s); first pass right after the bulk "
        f"load: {verify['first_pass_rows_per_second']} rows/s; a bare count(*) scan: "
        f"{verify['baseline_count_scan_rows_per_second']} rows/s"
    )


if __name__ == "__main__":
    main()
