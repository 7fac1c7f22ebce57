"""Sign + verify one request (RFC 8785 canonical JSON of the whole request), per key type.

    python -m bench.signing

Baseline in the same run: canonicalising the same request without any cryptography, so the
figures separate the key's cost from the JSON work every request pays anyway.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from proctor.canonical import canonical_bytes
from proctor.models import ExecutionMode, ExecutionSpec
from proctor.signing import AgentKey, KeyAlgorithm, verify_request

RESULTS = Path(__file__).parent / "results"
PARAMS = {
    "orderId": 12345,
    "amount": 599.99,
    "currency": "USD",
    "note": "customer asked twice",
    "items": [{"sku": "A-1", "qty": 2}],
}
RUNS = 2000


def timed(fn: Any) -> dict[str, float]:
    for _ in range(100):
        fn()
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    return {
        "p50_us": statistics.median(samples) / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
    }


def main() -> None:
    spec = ExecutionSpec(mode=ExecutionMode.HANDLER)
    rows: dict[str, Any] = {}
    algorithms: tuple[KeyAlgorithm, ...] = ("ed25519", "rsa-2048")
    for algorithm in algorithms:
        key = AgentKey.generate("bench-agent", algorithm)
        pem = key.public_key_pem
        request = key.new_request("refund_requests", PARAMS, spec)
        assert verify_request(request, pem)
        unsigned = request.model_copy(update={"signature": ""})
        rows[algorithm] = {
            "sign": timed(lambda k=key, r=unsigned: k.sign(r)),
            "verify": timed(lambda r=request, p=pem: verify_request(r, p)),
        }
    rows["baseline_canonical_json"] = timed(lambda: canonical_bytes(unsigned.signing_payload()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "signing.json").write_text(json.dumps(rows, indent=2) + "\n")
    base = rows["baseline_canonical_json"]["p50_us"]
    print(f"canonical JSON of the request alone (baseline): p50 {base:.1f} us")
    for algorithm in ("ed25519", "rsa-2048"):
        sign, verify = rows[algorithm]["sign"], rows[algorithm]["verify"]
        print(
            f"{algorithm:9} sign p50 {sign['p50_us']:7.1f} us (p99 {sign['p99_us']:7.1f})   "
            f"verify p50 {verify['p50_us']:6.1f} us (p99 {verify['p99_us']:6.1f})   "
            f"sign+verify = {(sign['p50_us'] + verify['p50_us']) / base:5.1f}x baseline"
        )


if __name__ == "__main__":
    main()
