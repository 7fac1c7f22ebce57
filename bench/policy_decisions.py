"""Policy decision latency: the indexed engine vs a straightforward linear scan, same run.

    python -m bench.policy_decisions

For 10, 100 and 1,000 rules (a third each allow / deny / escalate, half exact names, half
wildcards), with and without a CEL condition on every rule. The requested action matches one
allow rule near the end of the set: the worst case for a scan.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from proctor.models import AgentInfo, AgentStatus, Decision, PolicyQuery
from proctor.policy import PolicyEngine
from proctor.policy.compiled import PRECEDENCE
from proctor.policy.decide import condition_context
from proctor.policy.loader import PolicySet, parse_policy_text

RESULTS = Path(__file__).parent / "results"
AGENT = AgentInfo(
    agent_id="bench-agent",
    display_name="b",
    role="bench",
    owner="o@x.io",
    trust_score=100,
    status=AgentStatus.ACTIVE,
)
NOON = datetime(2026, 1, 5, 12, tzinfo=UTC)
REPEAT = 20_000


def policy_text(rules: int, condition: bool) -> bytes:
    per_effect: dict[str, list[Any]] = {"allow": [], "deny": [], "escalate": []}
    for i in range(rules):
        effect = ("allow", "deny", "escalate")[i % 3]
        pattern = f"svc{i}:op" if i % 2 == 0 else f"svc{i}:*"
        rule: dict[str, Any] = {"action": pattern}
        if condition:
            rule["when"] = f"params.amount < {1000 + i}"
        per_effect[effect].append(rule)
    document = {"escalation": {"approvers": ["boss@example.com"]}, "permissions": per_effect}
    return yaml.safe_dump(document).encode()


def linear_scan(engine: PolicyEngine, query: PolicyQuery) -> Decision | None:
    context = condition_context(query, NOON)
    for effect in PRECEDENCE:
        applying = [
            rule
            for compiled in engine.files
            for rule in compiled.rules
            if rule.effect is effect and rule.matches(query.action) and rule.judge(context).applies
        ]
        if applying:
            return engine.decision_for(applying, query.agent)
    return None


def sample(fn: Any, query: PolicyQuery) -> dict[str, float]:
    for _ in range(1000):
        fn(query)
    timings = []
    for _ in range(REPEAT):
        start = time.perf_counter_ns()
        fn(query)
        timings.append(time.perf_counter_ns() - start)
    timings.sort()
    return {
        "p50_us": statistics.median(timings) / 1000,
        "p99_us": timings[int(len(timings) * 0.99)] / 1000,
    }


def main() -> None:
    rows: list[dict[str, Any]] = []
    for condition in (False, True):
        for rules in (10, 100, 1000):
            engine = PolicyEngine(
                PolicySet(
                    (parse_policy_text(policy_text(rules, condition), "bench.yaml"),), "bench"
                )
            )
            last_allow = max(i for i in range(rules) if i % 3 == 0)
            action = f"svc{last_allow}:op" if last_allow % 2 == 0 else f"svc{last_allow}:run"
            query = PolicyQuery(agent=AGENT, action=action, params={"amount": 5})
            indexed = engine.decide(query, at=NOON)
            assert indexed.effect.value == "allow", indexed
            assert linear_scan(engine, query) == indexed
            fast = sample(lambda q, e=engine: e.decide(q, at=NOON), query)
            scan = sample(lambda q, e=engine: linear_scan(e, q), query)
            rows.append(
                {
                    "rules": rules,
                    "condition": condition,
                    "engine": fast,
                    "linear_scan": scan,
                    "speedup_p50": scan["p50_us"] / fast["p50_us"],
                }
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "policy_decisions.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(
        f"{'rules':>6} {'condition':>9} {'engine p50':>11} {'p99':>8} {'scan p50':>9} "
        f"{'speedup':>8}"
    )
    for row in rows:
        print(
            f"{row['rules']:>6} {row['condition']!s:>9} {row['engine']['p50_us']:>9.1f}us "
            f"{row['engine']['p99_us']:>6.1f}us {row['linear_scan']['p50_us']:>7.1f}us "
            f"{row['speedup_p50']:>7.1f}x"
        )


if __name__ == "__main__":
    main()
