"""Policy test cases written in YAML next to the policies (`*.test.yaml`), like `opa test`.

```yaml
tests:
  - name: refunds go to a human
    agent: {id: customer-service-agent, role: support, trust: 100}
    action: refund_requests
    params: {orderId: 1, amount: 599.99}
    expect: {effect: escalate, rule: refunds-need-approval}
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from proctor.models import AgentInfo, AgentStatus, Effect, Frozen, PolicyQuery
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


class TestCase(Frozen):
    name: str
    agent: TestAgent
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = None
    """The decision time (default: noon UTC on 2026-01-05, a Monday, for repeatable runs)."""
    expect: Expectation


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
    decision = engine.decide(
        PolicyQuery(agent=agent, action=case.action, params=case.params),
        at=case.at or REPEATABLE_NOON,
    )
    wanted = case.expect
    differences = []
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
