"""The summary table: every benchmark's headline figure next to its same-run baseline, the
ratio, and the target it answers to (read from bench/results/*.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Row:
    measure: str
    figure: str
    baseline: str
    ratio: str
    target: str
    met: bool | None  # None: no target, reported for context


def _load(name: str) -> Any:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _policy(rows: list[Row]) -> None:
    results = _load("policy_decisions")
    if results is None:
        return
    for entry in results:
        if entry["rules"] != 1000:
            continue
        limit = 30.0 if entry["condition"] else 10.0
        engine, scan = entry["engine"]["p50_us"], entry["linear_scan"]["p50_us"]
        condition = ", CEL condition" if entry["condition"] else ""
        rows.append(
            Row(
                f"policy decision p50, 1,000 glob rules{condition}",
                f"{engine:.1f} µs",
                f"linear scan {scan:.1f} µs",
                f"{engine / scan:.3f}x",
                f"≤ {limit:.0f} µs",
                engine <= limit,
            )
        )


def _grants(rows: list[Row]) -> None:
    """A delegated request at 1,000 grant-allowing rules: the decision against its target,
    then with the standing-grant lookup that follows an escalation (one candidate grant)."""
    results = _load("policy_grants")
    if results is None:
        return
    for entry in results:
        if entry["condition"] or entry["candidates_for_action"] != 1:
            continue
        decide = entry["decide"]["p50_us"]
        later = entry["decide_and_covering_grant"]["p50_us"]
        first = entry["decide_and_covering_grant_first_use"]["p50_us"]
        rows.append(
            Row(
                "policy decision p50, 1,000 rules allowing grants, delegated request",
                f"{decide:.1f} µs",
                f"without delegation {entry['decide_without_delegation']['p50_us']:.1f} µs",
                "—",
                "≤ 10 µs",
                decide <= 10.0,
            )
        )
        rows.append(
            Row(
                "… + standing-grant lookup, one candidate (later uses / first use)",
                f"{later:.1f} / {first:.1f} µs",
                f"decision alone {decide:.1f} µs",
                f"{later / decide:.1f}x / {first / decide:.1f}x",
                "— (escalations of grant rules only)",
                None,
            )
        )


def _signing(rows: list[Row]) -> None:
    results = _load("signing")
    if results is None:
        return
    base = results["baseline_canonical_json"]["p50_us"]
    for key in ("ed25519", "rsa-2048"):
        both = results[key]["sign"]["p50_us"] + results[key]["verify"]["p50_us"]
        rows.append(
            Row(
                f"sign + verify a request p50, {key}",
                f"{both:.0f} µs",
                f"canonical JSON alone {base:.0f} µs",
                f"{both / base:.1f}x",
                "—",
                None,
            )
        )


def _codec(rows: list[Row]) -> None:
    results = _load("codec")
    if results is None:
        return
    p = results["per_payload"]
    plain, sealed = p["plain_converter"]["p50_us"], p["encrypting_converter"]["p50_us"]
    rows.append(
        Row(
            "an action's start input to payload and back p50, encrypted",
            f"{sealed:.1f} µs",
            f"plain converter {plain:.1f} µs",
            f"{p['ratio_p50']:.2f}x",
            "—",
            None,
        )
    )
    e = results.get("end_to_end")
    if e:
        rows.append(
            Row(
                "allowed action p50, start → outcome, history encrypted",
                f"{e['with_codec']['p50_ms']:.1f} ms",
                f"without the codec {e['without_codec']['p50_ms']:.1f} ms",
                f"{e['ratio_p50']:.2f}x",
                "—",
                None,
            )
        )


def _ledger(rows: list[Row]) -> None:
    results = _load("audit_ledger")
    if results is None:
        return
    append, single, verify = (
        results["append"],
        results["append"]["single_writer"],
        results["verify"],
    )
    rows.append(
        Row(
            f"chained audit append, {append['writers']} writers",
            f"{append['chained_batched_rows_per_second']:,} rows/s",
            f"plain INSERT {append['plain_insert_rows_per_second']:,} rows/s",
            f"{append['ratio_chained_to_plain']:.2f}x",
            "≥ 0.5x",
            append["ratio_chained_to_plain"] >= 0.5,
        )
    )
    rows.append(
        Row(
            "chained audit append, 1 writer",
            f"{single['chained_rows_per_second']:,} rows/s",
            f"plain INSERT {single['plain_rows_per_second']:,} rows/s",
            f"{single['ratio']:.2f}x",
            "—",
            None,
        )
    )
    scan = verify["baseline_count_scan_rows_per_second"]
    rows.append(
        Row(
            f"verify the chain, {verify['rows']:,} rows",
            f"{verify['rows_per_second']:,} rows/s",
            f"count(*) scan {scan:,} rows/s",
            f"{verify['rows_per_second'] / scan:.3f}x",
            "≥ 200,000 rows/s",
            verify["rows_per_second"] >= 200_000,
        )
    )


def _end_to_end(rows: list[Row]) -> None:
    results = _load("e2e_latency")
    if results is None or "default" not in results:
        return
    for server in ("default", "unthrottled"):
        r = results[server]
        shipped = server == "default"
        where = "dev server as shipped" if shipped else "dev server, task loading unthrottled"
        a, e = r["allowed_action"], r["empty_workflow"]
        rows.append(
            Row(
                f"allowed action p50, start → outcome ({where})",
                f"{a['p50_ms']:.1f} ms",
                f"empty workflow {e['p50_ms']:.1f} ms",
                f"{r['ratio_p50']:.2f}x",
                "≤ 1.5x" if shipped else "—",
                r["ratio_p50"] <= 1.5 if shipped else None,
            )
        )
        t = r["throughput"]
        rows.append(
            Row(
                f"throughput, {t['clients']} concurrent clients ({where})",
                f"{t['allowed_per_s']:.1f} actions/s",
                f"empty workflows {t['empty_per_s']:.1f}/s",
                f"{t['ratio']:.2f}x",
                "≥ 0.6x" if shipped else "—",
                t["ratio"] >= 0.6 if shipped else None,
            )
        )
        ap = r["approval_path"]
        floor = ap["signal_to_completion_baseline"]["p50_ms"]
        rows.append(
            Row(
                f"approval by signal p50, signal → outcome ({where})",
                f"{ap['signal_to_outcome']['p50_ms']:.1f} ms",
                f"signal → completion {floor:.1f} ms",
                f"{ap['ratio_p50']:.2f}x",
                "—",
                None,
            )
        )


def _memory(rows: list[Row]) -> None:
    r = _load("waiting_memory")
    if r is None:
        return
    rows.append(
        Row(
            f"worker memory, {r['workflows']:,} workflows waiting for approval "
            f"(cache {r['worker_cache']:,})",
            f"{r['holding_rss_mb']:.0f} MB",
            f"idle worker {r['idle_rss_mb']:.0f} MB",
            f"{r['holding_rss_mb'] / r['idle_rss_mb']:.1f}x",
            "≤ 1,024 MB",
            r["holding_rss_mb"] <= r["target_mb"],
        )
    )
    rows.append(
        Row(
            "worker memory per cached waiting workflow",
            f"{r['per_cached_workflow_kb']:.0f} KB",
            "—",
            "—",
            "—",
            None,
        )
    )


def _adapters(rows: list[Row]) -> None:
    """One allowed tool call through each framework adapter against the same framework calling
    `Client.execute` by hand."""
    results = _load("adapters")
    if results is None:
        return
    for name, pair in results["pairs"].items():
        adapter, baseline = pair["adapter"]["p50_ms"], pair["baseline"]["p50_ms"]
        rows.append(
            Row(
                f"allowed tool call p50, {name}",
                f"{adapter:.1f} ms",
                f"by hand with Client.execute {baseline:.1f} ms",
                f"{pair['ratio_p50']:.3f}x",
                "≤ 1.05x",
                pair["ratio_p50"] <= 1.05,
            )
        )


def summary_rows() -> list[Row]:
    rows: list[Row] = []
    for section in (
        _policy,
        _grants,
        _signing,
        _codec,
        _ledger,
        _end_to_end,
        _adapters,
        _memory,
    ):
        section(rows)
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| measure | figure | baseline (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(
            f"| {row.measure} | {row.figure} | {row.baseline} | {row.ratio} | "
            f"{row.target} | {met} |"
        )
    return "\n".join(lines) + "\n"
