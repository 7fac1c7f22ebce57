"""What encrypting history costs: the payload codec against the plain pydantic converter.

    python -m bench.codec [--runs 2000] [--actions 100]

1. Per payload: a typical governed action's start input (a signed ActionRequest) converted to
   a payload and back, with the plain converter (the baseline) and with the encrypting one
   (the same plus AES-256-GCM under a key ring), in the same process, interleaved.
2. End to end (when a Temporal dev server binary is installed): one allowed action at a time,
   start -> outcome, through a client and worker with the codec vs a client and worker without
   it, on the same dev server (task loading unthrottled, so the floor shows), A/B alternated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from bench.database import bench_database
from bench.e2e_latency import POLICY, SERVERS, alternate, summary
from proctor import AgentKey, Client
from proctor.approvals.keys import VoteKeyDirectory
from proctor.audit.keys import LedgerKeys
from proctor.codec import EncryptionCodec
from proctor.contract import SEARCH_ATTRIBUTES
from proctor.db import connect_pool
from proctor.models import ExecutionMode, ExecutionSpec, GovernedActionInput
from proctor.payload_keys import KeyRing
from proctor.policy import PolicyEngine
from proctor.policy.loader import PolicySet, parse_policy_text
from proctor.stores.agents import AgentStore
from proctor.temporal import connect_temporal, encrypted_converter
from proctor_server.worker.main import build_worker

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
PARAMS = {
    "customer_email": "jane.doe@example.com",
    "orderId": 12345,
    "amount": 599.99,
    "currency": "USD",
    "note": "customer asked twice",
    "items": [{"sku": "A-1", "qty": 2}],
}


def start_input() -> GovernedActionInput:
    key = AgentKey.generate("bench-agent", "ed25519")
    return GovernedActionInput(
        request=key.new_request(
            "refund_requests", PARAMS, ExecutionSpec(mode=ExecutionMode.HANDLER)
        )
    )


def timed_us(run: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": statistics.median(ordered),
        "p99_us": ordered[max(0, int(len(ordered) * 0.99) - 1)],
    }


def per_payload(runs: int) -> dict[str, Any]:
    """Convert + encode + decode + convert back, sync (the codec's async methods only wrap
    these; an event loop per call would measure asyncio, not the codec)."""
    value = start_input()
    plain = pydantic_data_converter.payload_converter
    codec = EncryptionCodec(KeyRing.in_memory())  # what encrypted_converter installs

    def baseline() -> None:
        plain.from_payloads(plain.to_payloads([value]), [GovernedActionInput])

    def encrypted() -> None:
        sealed = codec.encode_sync(plain.to_payloads([value]))
        plain.from_payloads(codec.decode_sync(sealed), [GovernedActionInput])

    payload = plain.to_payloads([value])[0]
    sealed = codec.encode_sync([payload])[0]

    def codec_alone() -> None:
        codec.decode_sync(codec.encode_sync([payload]))

    for run in (baseline, encrypted, codec_alone):
        timed_us(run, 200)  # warm up
    base: list[float] = []
    enc: list[float] = []
    alone: list[float] = []
    for _ in range(10):  # interleaved blocks: drift hits all alike
        base += timed_us(baseline, runs // 10)
        enc += timed_us(encrypted, runs // 10)
        alone += timed_us(codec_alone, runs // 10)
    b, e = percentiles(base), percentiles(enc)
    return {
        "payload_bytes": len(payload.SerializeToString()),
        "encrypted_bytes": len(sealed.SerializeToString()),
        "plain_converter": b,
        "encrypting_converter": e,
        "codec_only": percentiles(alone),
        "ratio_p50": e["p50_us"] / b["p50_us"],
    }


class Side:
    """One client and its worker: with the codec or without."""

    def __init__(self, temporal: TemporalClient, keys: AgentKey, queue: str) -> None:
        self.temporal = temporal
        self.key = keys
        self.queue = queue
        self.proctor = Client(temporal, task_queue=queue)

    async def allowed(self) -> None:
        outcome = await self.proctor.execute(
            self.key, "read:orders", PARAMS, handler=lambda params: 1
        )
        assert outcome.ok, outcome


async def end_to_end(dsn: str, actions: int) -> dict[str, Any]:
    engine = PolicyEngine(PolicySet((parse_policy_text(POLICY, "bench.yaml"),), "bench"))
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=SERVERS["unthrottled"],
    ) as env:
        address = env.client.service_client.config.target_host
        converter: DataConverter = encrypted_converter(KeyRing.in_memory())
        encrypted = await connect_temporal(address, converter=converter)
        pool = await connect_pool(dsn, max_size=10)
        sides = []
        for temporal in (env.client, encrypted):
            key = AgentKey.generate(f"bench-{uuid.uuid4().hex[:8]}", "ed25519")
            await AgentStore(pool).register(
                key.agent_id, role="bench", owner="b@example.com", public_key_pem=key.public_key_pem
            )
            sides.append(Side(temporal, key, f"bench-codec-{uuid.uuid4().hex[:6]}"))
        plain_side, sealed_side = sides
        with tempfile.TemporaryDirectory(prefix="proctor-bench-votekeys-") as folder:
            votes = VoteKeyDirectory(Path(folder))
            async with (
                build_worker(
                    plain_side.temporal,
                    pool,
                    lambda: engine,
                    task_queue=plain_side.queue,
                    keys=LedgerKeys.generate(),
                    vote_keys=votes,
                ),
                build_worker(
                    sealed_side.temporal,
                    pool,
                    lambda: engine,
                    task_queue=sealed_side.queue,
                    keys=LedgerKeys.generate(),
                    vote_keys=votes,
                ),
            ):
                for _ in range(10):  # warm up caches, pools, sticky queues
                    await plain_side.allowed()
                    await sealed_side.allowed()
                with_codec, without = await alternate(
                    sealed_side.allowed, plain_side.allowed, actions
                )
        await pool.close()
    a, b = summary(with_codec), summary(without)
    return {
        "server": " ".join(SERVERS["unthrottled"]),
        "actions": actions,
        "with_codec": a,
        "without_codec": b,
        "ratio_p50": a["p50_ms"] / b["p50_ms"],
    }


def report(result: dict[str, Any]) -> None:
    p = result["per_payload"]
    print(
        f"start input of one action: {p['payload_bytes']} bytes, encrypted "
        f"{p['encrypted_bytes']} bytes"
    )
    print(
        f"convert + back, plain:      p50 {p['plain_converter']['p50_us']:7.1f} us "
        f"(p99 {p['plain_converter']['p99_us']:7.1f})"
    )
    print(
        f"convert + encrypt + back:   p50 {p['encrypting_converter']['p50_us']:7.1f} us "
        f"(p99 {p['encrypting_converter']['p99_us']:7.1f})   = {p['ratio_p50']:.2f}x"
    )
    print(
        f"the codec alone (encrypt + decrypt): p50 {p['codec_only']['p50_us']:.1f} us "
        f"(p99 {p['codec_only']['p99_us']:.1f})"
    )
    e = result.get("end_to_end")
    if e:
        print(
            f"allowed action start -> outcome ({e['actions']} each, A/B): with codec p50 "
            f"{e['with_codec']['p50_ms']:.1f} ms, without {e['without_codec']['p50_ms']:.1f}"
            f" ms = {e['ratio_p50']:.2f}x"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--actions", type=int, default=100)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "benchmark": "codec",
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python "
        f"{platform.python_version()}",
        "per_payload": per_payload(args.runs),
    }
    if (BIN / "temporal").exists() and args.actions > 0:
        async with bench_database() as dsn:
            result["end_to_end"] = await end_to_end(dsn, args.actions)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "codec.json").write_text(json.dumps(result, indent=2) + "\n")
    report(result)


if __name__ == "__main__":
    asyncio.run(main())
