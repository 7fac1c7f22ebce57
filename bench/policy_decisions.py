"""Policy decision latency: the indexed engine vs a straightforward linear scan, same run.

    python -m bench.policy_decisions

For 10, 100 and 1,000 rules (a third each allow / deny / escalate, half exact names, half
wildcards), with and without a CEL condition on every rule. The requested action matches one
allow rule near the end of the set: the worst case for a scan.

Then standing grants and delegation (results/policy_grants.json): at 1,000 rules whose escalate
rules allow grants (`grant: {max: 8h}`), a request made through a delegation chain that one of
them escalates, decided alone and followed by the judge's in-process grant lookup
(`proctor.grants.cover.covering_grant` over the agent's live grants for the action), among 50
live grants for the agent: at a grant's first use in a process (its votes' signatures checked)
and at every later use (the same signed votes and keys: compared, not checked again).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from proctor.approvals.keys import VoteSigner
from proctor.canonical import digest
from proctor.grants.cover import (
    Coverage,
    CoverQuery,
    covering_grant,
    forget_verified,
    grantable,
)
from proctor.models import (
    ActionRequest,
    AgentInfo,
    AgentStatus,
    Decision,
    DelegationView,
    ExecutionMode,
    ExecutionSpec,
    GrantScope,
    PolicyQuery,
    StandingGrant,
    VoteKeys,
)
from proctor.policy import PolicyEngine
from proctor.policy.compiled import PRECEDENCE
from proctor.policy.conditions import Condition, compile_condition
from proctor.policy.decide import condition_context
from proctor.policy.loader import PolicySet, parse_policy_text
from proctor.signing import AgentKey

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


def sample(fn: Any, query: PolicyQuery, repeat: int = REPEAT) -> dict[str, float]:
    for _ in range(min(1000, repeat)):
        fn(query)
    timings = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn(query)
        timings.append(time.perf_counter_ns() - start)
    timings.sort()
    return {
        "p50_us": statistics.median(timings) / 1000,
        "p95_us": timings[int(len(timings) * 0.95)] / 1000,
        "p99_us": timings[int(len(timings) * 0.99)] / 1000,
    }


def main() -> None:
    decisions()
    grants()


def decisions() -> None:
    """The indexed engine against a linear scan, 10 to 1,000 rules."""
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


# --- standing grants and delegation ------------------------------------------------------

GRANTS_PER_AGENT = 50
APPROVER = "boss@example.com"
DELEGATION = DelegationView(
    chain=("alice@example.com", "agent:planner", f"agent:{AGENT.agent_id}"),
    depth=2,
    root="alice@example.com",
)
HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)
Lookup = Callable[[Decision, PolicyQuery], object]


def grant_policy_text(rules: int, condition: bool) -> bytes:
    """`policy_text`, with every escalate rule allowing grants (and, with conditions, each
    condition reading the delegation chain too)."""
    document = yaml.safe_load(policy_text(rules, condition))
    for rule in document["permissions"]["escalate"]:
        rule["grant"] = {"max": "8h"}
        if condition:
            rule["when"] += " && request.delegation.depth < 3"
    return yaml.safe_dump(document).encode()


class GrantBench:
    """One agent's live grants and what the judge checks them with, built once."""

    def __init__(self, engine: PolicyEngine, action: str, candidates: int, at: datetime) -> None:
        self.engine = engine
        self.at = at
        self.key = AgentKey.generate(AGENT.agent_id)
        self.signer = VoteSigner.generate(approver=APPROVER)
        self.request = self.key.new_request(action, {"amount": 5}, HANDLER)
        rule_id = engine.decide(self.query(), at=at).rule_id
        # Soonest to expire first, as the store returns them: the one that covers comes last.
        others = [f"{action}-other{k}" for k in range(GRANTS_PER_AGENT - candidates)]
        self.grants = [
            *(
                self.grant(action, rule_id, "params.amount > 10000", 1 + k)
                for k in range(candidates - 1)
            ),
            self.grant(action, rule_id, "params.amount <= 500", 8),
            *(self.grant(other, rule_id, None, 2) for other in others),
        ]
        self.approver_keys = VoteKeys(approver=(self.signer.public_key_pem,))
        self.agent_keys = (self.key.public_key_pem,)
        self.by_action: dict[tuple[str, str], list[StandingGrant]] = {}
        for grant in self.grants:
            self.by_action.setdefault((grant.agent_id, grant.action), []).append(grant)

    def query(self) -> PolicyQuery:
        return PolicyQuery(
            agent=AGENT,
            action=self.request.action,
            params=self.request.params,
            request_id=self.request.request_id,
            requested_at=self.request.requested_at,
            delegation=DELEGATION,
        )

    def grant(self, action: str, rule_id: str, when: str | None, hours: int) -> StandingGrant:
        """A grant as the store reads it back: made on an earlier request, one signed vote."""
        made_on = self.key.new_request(action, {"amount": 1}, HANDLER)
        scope = GrantScope(rule_id=rule_id, duration_seconds=hours * 3600.0, when=when)
        vote = self.signer.sign(
            workflow_id=made_on.workflow_id,
            request_digest=digest(made_on.signing_payload()),
            approve=True,
            grant=scope,
        )
        assert vote.signed_at is not None
        return StandingGrant(
            grant_id=f"g-{made_on.request_id}",
            agent_id=made_on.agent_id,
            action=action,
            rule_id=rule_id,
            made_at=vote.signed_at,
            expires_at=vote.signed_at + timedelta(seconds=scope.duration_seconds),
            when=when,
            made_by=(APPROVER,),
            workflow_id=made_on.workflow_id,
            request=made_on,
            votes=(vote,),
        )

    def keys(self, approver: str, channel: str) -> VoteKeys:
        """The trusted directory's answer (read once here: the worker reads its files)."""
        return self.approver_keys if approver == APPROVER else VoteKeys()

    def live_for(self, request: ActionRequest) -> list[StandingGrant]:
        """What the store's indexed read returns (an index on agent and action; its own cost
        is the database's, measured in bench/database.py), from memory."""
        return self.by_action.get((request.agent_id, request.action), [])

    def covered(self, decision: Decision, query: PolicyQuery) -> Coverage | None:
        """The judge's in-process step after the decision (proctor_server judgement)."""
        settings = grantable(decision)
        if settings is None or settings.grant_max_seconds is None:
            return None
        cover = CoverQuery(
            request=self.request,
            decision=decision,
            context=condition_context(query, self.at),
            keys=self.keys,
            agent_keys=self.agent_keys,
            at=self.at,
            chain=query.delegation.chain,
            owner=AGENT.owner,
        )
        return covering_grant(self.live_for(self.request), cover)

    def covered_first_use(self, decision: Decision, query: PolicyQuery) -> Coverage | None:
        """The same at a grant's first use in this process: every vote's signature checked."""
        forget_verified()
        return self.covered(decision, query)

    def scope_only(self, decision: Decision, query: PolicyQuery) -> StandingGrant | None:
        """The lookup without re-verifying votes (as if verified grants were cached): rule,
        action and `when` only."""
        settings = grantable(decision)
        if settings is None or settings.grant_max_seconds is None:
            return None
        context = condition_context(query, self.at)
        return next(
            (g for g in self.live_for(self.request) if _scope_holds(g, decision, context)), None
        )

    def timed(self, lookup: Lookup | None) -> Callable[[PolicyQuery], object]:
        def run(query: PolicyQuery) -> object:
            decision = self.engine.decide(query, at=self.at)
            return decision if lookup is None else lookup(decision, query)

        return run


def _scope_holds(grant: StandingGrant, decision: Decision, context: dict[str, Any]) -> bool:
    if grant.rule_id != decision.rule_id:
        return False
    return grant.when is None or _condition(grant.when).evaluate(context)


@lru_cache(maxsize=512)
def _condition(source: str) -> Condition:
    """Compiled once per distinct source, as the judge does."""
    return compile_condition("when", source)


def grant_engine(condition: bool) -> tuple[PolicyEngine, str]:
    """1,000 rules allowing grants, and an action one escalate rule near the end decides."""
    rules = 1000
    engine = PolicyEngine(
        PolicySet((parse_policy_text(grant_policy_text(rules, condition), "bench.yaml"),), "bench")
    )
    last = max(i for i in range(rules) if i % 3 == 2)
    return engine, f"svc{last}:op" if last % 2 == 0 else f"svc{last}:run"


def grant_rows(condition: bool, at: datetime) -> list[dict[str, Any]]:
    engine, action = grant_engine(condition)
    rows = []
    for candidates in (1, 5):
        bench = GrantBench(engine, action, candidates, at)
        query = bench.query()
        decision = engine.decide(query, at=at)
        assert decision.effect.value == "escalate" and decision.escalation is not None
        assert decision.escalation.grant_max_seconds == 8 * 3600.0, decision
        found = bench.covered(decision, query)
        assert found is not None and found.grant is bench.grants[candidates - 1], found
        assert bench.scope_only(decision, query) is found.grant
        plain = query.model_copy(update={"delegation": DelegationView()})
        rows.append(
            {
                "rules": 1000,
                "condition": condition,
                "grants_for_agent": GRANTS_PER_AGENT,
                "candidates_for_action": candidates,
                "decide_without_delegation": sample(bench.timed(None), plain),
                "decide": sample(bench.timed(None), query),
                "decide_and_scope_only": sample(bench.timed(bench.scope_only), query),
                "decide_and_covering_grant": sample(bench.timed(bench.covered), query),
                "decide_and_covering_grant_first_use": sample(
                    bench.timed(bench.covered_first_use), query, 2000
                ),
            }
        )
    return rows


def grants() -> None:
    """Decisions with delegation and grant-allowing rules, alone and with the grant lookup."""
    at = datetime.now(UTC)
    rows = [row for condition in (False, True) for row in grant_rows(condition, at)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "policy_grants.json").write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(
        f"{'condition':>9} {'cand.':>5} {'decide p50/p95':>15} {'+grant p50/p95':>15} "
        f"{'+grant, first use p50/p95':>26} {'ratio p50':>9}"
    )
    for row in rows:
        print(_grant_line(row))


def _grant_line(row: dict[str, Any]) -> str:
    def pair(key: str) -> str:
        return f"{row[key]['p50_us']:.1f}/{row[key]['p95_us']:.1f}us"

    ratio = row["decide_and_covering_grant"]["p50_us"] / row["decide"]["p50_us"]
    return (
        f"{row['condition']!s:>9} {row['candidates_for_action']:>5} {pair('decide'):>15} "
        f"{pair('decide_and_covering_grant'):>15} "
        f"{pair('decide_and_covering_grant_first_use'):>26} "
        f"{ratio:>8.1f}x"
    )


if __name__ == "__main__":
    main()
