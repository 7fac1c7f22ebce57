"""Properties that must hold for every policy, however written (hypothesis)."""

from __future__ import annotations

import random
import re

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.models import Effect, PolicyQuery
from proctor.policy import PolicyEngine
from tests.helpers.policies import agent, engine

AGENT = agent(role="r")
segments = st.text(alphabet="ab:", min_size=0, max_size=4)
patterns = (
    st.lists(st.one_of(segments, st.just("*")), min_size=1, max_size=4)
    .map("".join)
    .filter(lambda p: p != "")
)
actions = st.text(alphabet="ab:", min_size=1, max_size=8)
rule_lists = st.lists(patterns, max_size=6)


def compile_set(allow: list[str], deny: list[str], escalate: list[str]) -> PolicyEngine:
    document = {
        "escalation": {"approvers": ["boss@x.io"]},
        "permissions": {"allow": allow, "deny": deny, "escalate": escalate},
    }
    return engine(yaml.safe_dump(document))


def reference(allow: list[str], deny: list[str], escalate: list[str], action: str) -> Effect:
    """A straightforward linear scan, written independently of the engine."""

    def any_match(rules: list[str]) -> bool:
        return any(re.fullmatch(".*".join(map(re.escape, r.split("*"))), action) for r in rules)

    if any_match(deny):
        return Effect.DENY
    if any_match(escalate):
        return Effect.ESCALATE
    if any_match(allow):
        return Effect.ALLOW
    return Effect.DENY


@settings(max_examples=300, deadline=None)
@given(rule_lists, rule_lists, rule_lists, st.lists(actions, min_size=1, max_size=5))
def test_indexed_engine_agrees_with_a_linear_scan(
    allow: list[str], deny: list[str], escalate: list[str], requests: list[str]
) -> None:
    engine = compile_set(allow, deny, escalate)
    for action in requests:
        decision = engine.decide(PolicyQuery(agent=AGENT, action=action, params={}))
        assert decision.effect is reference(allow, deny, escalate, action), action


@settings(max_examples=200, deadline=None)
@given(rule_lists, rule_lists, rule_lists, actions, st.randoms(use_true_random=False))
def test_no_policy_lets_a_denied_action_through_and_order_does_not_matter(
    allow: list[str],
    deny: list[str],
    escalate: list[str],
    action: str,
    rng: random.Random,
) -> None:
    engine = compile_set(allow, deny, escalate)
    shuffled = compile_set(*(rng.sample(rules, len(rules)) for rules in (allow, deny, escalate)))
    query = PolicyQuery(agent=AGENT, action=action, params={})
    effect = engine.decide(query).effect
    assert shuffled.decide(query).effect is effect
    if reference([], deny, [], action) is Effect.DENY and any(
        re.fullmatch(".*".join(map(re.escape, r.split("*"))), action) for r in deny
    ):
        assert effect is Effect.DENY
