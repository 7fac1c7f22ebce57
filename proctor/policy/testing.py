"""Policy test cases written in YAML next to the policies (`*.test.yaml`), like `opa test`.

```yaml
tests:
  - name: refunds go to a human
    agent: {id: customer-service-agent, role: support, trust: 100}
    action: refund_requests
    params: {orderId: 1, amount: 599.99}
    expect: {effect: escalate, rule: refunds-need-approval}
  - name: a refund asked on alice's behalf, through a planner
    agent: {id: customer-service-agent}
    action: refund_requests
    delegation: {chain: [alice, agent:planner, agent:customer-service-agent]}
    expect: {effect: escalate}
  - name: the trial rule would deny big refunds (mode shadow)
    agent: {id: customer-service-agent, role: support}
    action: refund_requests
    params: {amount: 900}
    expect: {effect: escalate}
    shadow: {effect: deny, rule: trial-no-big-refunds}
```

A case's `delegation` is the verified chain as conditions see it (`request.delegation`): its
depth and root follow from the chain. A case's `shadow` is what the decision would be with the
shadow rules (`mode: shadow`) enforced: the enforced decision when none of them applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from proctor.models import (
    AgentInfo,
    AgentStatus,
    Decision,
    DelegationView,
    Effect,
    Frozen,
    PolicyQuery,
)
from proctor.policy.decide import PolicyEngine
from proctor.policy.loader import PolicyError, PolicyProblem, read_yaml_mapping, validate_model


class TestAgent(Frozen):
    id: str
    role: str = "agent"
    owner: str = "owner@example.com"
    trust: float = Field(default=100.0, ge=0, le=100)


class Expectation(Frozen):
    effect: Effect
    rule: str | None = None
    approvers: tuple[str, ...] | None = None


class ShadowExpectation(Frozen):
    effect: Effect
    rule: str | None = None


class TestDelegation(Frozen):
    """A request made on someone's behalf, as policy sees its (already verified) chain."""

    chain: tuple[str, ...] = Field(min_length=2, max_length=32)
    """Every principal from the root to the requesting agent: `[alice, agent:planner,
    agent:<the case's agent>]`."""

    def view(self) -> DelegationView:
        return DelegationView(chain=self.chain, depth=len(self.chain) - 1, root=self.chain[0])


class TestCase(Frozen):
    name: str
    agent: TestAgent
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = None
    """The decision time (default: noon UTC on 2026-01-05, a Monday, for repeatable runs)."""
    delegation: TestDelegation | None = None
    """None: the agent acts for itself (`request.delegation.depth` is 0)."""
    expect: Expectation
    shadow: ShadowExpectation | None = None
    """What the shadow decision should be (checked only when given)."""

    @model_validator(mode="after")
    def _chain_ends_with_the_agent(self) -> TestCase:
        """A chain always ends with the agent making the request: one that doesn't describes a
        request no verified chain could give."""
        if self.delegation is not None and self.delegation.chain[-1] != f"agent:{self.agent.id}":
            raise ValueError(
                f"delegation.chain must end with the requesting agent, agent:{self.agent.id}"
            )
        return self


class TestFile(Frozen):
    tests: tuple[TestCase, ...]


REPEATABLE_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class CaseResult:
    file: str
    line: int
    case: TestCase
    differences: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.differences


def load_test_files(directory: Path) -> list[tuple[str, TestFile, dict[Any, int]]]:
    found = []
    problems: list[PolicyProblem] = []
    for path in sorted(directory.rglob("*.test.y*ml")):
        label = str(path.relative_to(directory))
        try:
            data, lines = read_yaml_mapping(path.read_bytes(), label)
            found.append((label, validate_model(TestFile, data, label, lines), lines))
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyError(problems)
    return found


def run_cases(engine: PolicyEngine, directory: Path) -> list[CaseResult]:
    results = []
    for label, test_file, lines in load_test_files(directory):
        for index, case in enumerate(test_file.tests):
            results.append(
                CaseResult(
                    label, lines.get(("tests", index), 0), case, tuple(_differences(engine, case))
                )
            )
    return results


def _differences(engine: PolicyEngine, case: TestCase) -> list[str]:
    agent = AgentInfo(
        agent_id=case.agent.id,
        display_name=case.agent.id,
        role=case.agent.role,
        owner=case.agent.owner,
        trust_score=case.agent.trust,
        status=AgentStatus.ACTIVE,
    )
    query = PolicyQuery(
        agent=agent,
        action=case.action,
        params=case.params,
        delegation=case.delegation.view() if case.delegation else DelegationView(),
    )
    at = case.at or REPEATABLE_NOON
    decision = engine.decide(query, at=at)
    wanted = case.expect
    differences = _shadow_differences(engine, case, query, decision, at)
    if decision.effect is not wanted.effect:
        differences.append(f"effect: expected {wanted.effect.value}, got {decision.effect.value}")
    if wanted.rule is not None and decision.rule_id != wanted.rule:
        differences.append(f"rule: expected {wanted.rule}, got {decision.rule_id}")
    if wanted.approvers is not None:
        got = decision.escalation.approvers if decision.escalation else ()
        if tuple(got) != wanted.approvers:
            differences.append(f"approvers: expected {list(wanted.approvers)}, got {list(got)}")
    if differences:
        differences.append(f"(decided by {decision.rule_id}: {decision.reason})")
    return differences


def _shadow_differences(
    engine: PolicyEngine, case: TestCase, query: PolicyQuery, enforced: Decision, at: datetime
) -> list[str]:
    """Where the shadow decision is not what the case's `shadow` says."""
    wanted = case.shadow
    if wanted is None:
        return []
    shadow = engine.shadow_decide(query, enforced, at=at)
    effect, rule = (
        (shadow.shadow_effect, shadow.shadow_rule)
        if shadow is not None
        else (enforced.effect, enforced.rule_id)
    )
    differences = []
    if effect is not wanted.effect:
        differences.append(f"shadow effect: expected {wanted.effect.value}, got {effect.value}")
    if wanted.rule is not None and rule != wanted.rule:
        differences.append(f"shadow rule: expected {wanted.rule}, got {rule}")
    return differences
