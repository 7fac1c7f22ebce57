"""Every benchmark, one after the other, then the summary table.

    python -m bench [--full]      (what `./dev bench` runs)

Each benchmark runs in its own process with its own servers; its results land in
bench/results/<name>.json, the table in bench/results/summary.md (and on stdout). To stay within
ten minutes the suite holds 4,000 waiting approvals (four times the worker's cache: past the
cache, a worker's memory stays flat); `--full` holds the issue's 10,000 (~9 more minutes here).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.summary import RESULTS, markdown, summary_rows

SUITE: tuple[tuple[str, ...], ...] = (
    ("policy_decisions",),
    ("signing",),
    ("codec",),
    ("audit_ledger",),
    ("e2e_latency",),
    ("adapters",),
    ("mcp_gateway",),
    ("waiting_memory", "--workflows", "4000"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--full", action="store_true", help="hold 10,000 waiting approvals instead of 4,000"
    )
    full = parser.parse_args().full
    began = time.monotonic()
    timings: list[str] = []
    for name, *args in SUITE:
        if full and name == "waiting_memory":
            args = []
        print(f"== bench.{name} {' '.join(args)}", flush=True)
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", f"bench.{name}", *args], check=True)
        timings.append(f"{name} {time.monotonic() - start:.0f} s")
    table = markdown(summary_rows())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.md").write_text(table)
    print()
    print(table)
    print(f"suite: {time.monotonic() - began:.0f} s ({', '.join(timings)})")


if __name__ == "__main__":
    main()
