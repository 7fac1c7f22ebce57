"""Every benchmark, one after the other, then the summary table.

    python -m bench            (what `./dev bench` runs)

Each benchmark runs in its own process with its own servers; its results land in
bench/results/<name>.json, the table in bench/results/summary.md (and on stdout).
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.summary import RESULTS, markdown, summary_rows

SUITE = ("policy_decisions", "signing", "audit_ledger", "e2e_latency", "waiting_memory")


def main() -> None:
    began = time.monotonic()
    timings: list[str] = []
    for name in SUITE:
        print(f"== bench.{name}", flush=True)
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", f"bench.{name}"], check=True)
        timings.append(f"{name} {time.monotonic() - start:.0f} s")
    table = markdown(summary_rows())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.md").write_text(table)
    print()
    print(table)
    print(f"suite: {time.monotonic() - began:.0f} s ({', '.join(timings)})")


if __name__ == "__main__":
    main()
