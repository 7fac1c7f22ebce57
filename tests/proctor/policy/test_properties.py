"""Properties that must hold for every policy, however written (hypothesis)."""

from __future__ import annotations

import random
import re

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.models import Decision, Effect, EscalationSettings, PolicyQuery
from proctor.policy import PolicyEngine
from proctor.policy.loader import PolicySet, parse_policy_text
from tests.helpers.policies import NOON, agent, engine

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


PATTERNS = ["pay", "pay*", "p*", "*", "read:*", "*:x", "x", "pay:x"]
APPROVERS = ["a@x.io", "b@x.io", "c@x.io"]
NAMES = ["p0.yaml", "p1.yaml", "zz-article.yaml", "customer-service-agent.yaml", "00.yaml"]
ORG_APPROVERS = ["a@x.io", "b@x.io"]
ORG: dict[str, object] = {"escalation": {"approvers": ORG_APPROVERS}}


@st.composite
def rules(draw: st.DrawFn, file: int, index: int) -> tuple[str, dict[str, object]]:
    effect = draw(st.sampled_from(["allow", "deny", "escalate"]))
    rule: dict[str, object] = {"action": draw(st.sampled_from(PATTERNS)), "id": f"r{file}-{index}"}
    if draw(st.booleans()):
        rule["reason"] = draw(st.sampled_from(["one", "two"]))
    if draw(st.booleans()):
        rule["when"] = draw(st.sampled_from(["params.n > 1", "params.n > 3"]))
    if effect == "escalate":
        approvers = draw(
            st.one_of(
                st.none(), st.lists(st.sampled_from(APPROVERS), min_size=1, max_size=3, unique=True)
            )
        )
        if approvers is not None:
            rule["approvers"] = approvers
        quorum = draw(st.integers(1, 2))
        if quorum <= len(approvers or ORG_APPROVERS):
            rule["quorum"] = quorum
        rule["timeout"] = draw(st.sampled_from(["1h", "2h", "3h"]))
        rule["on_timeout"] = draw(st.sampled_from(["deny", "approve"]))
        rule["severity"] = draw(st.sampled_from(["low", "high"]))
        grant = draw(st.sampled_from([None, "1h", "8h", "30d"]))
        if grant is not None:
            rule["grant"] = {"max": grant}
    return effect, rule


@st.composite
def policy_files(draw: st.DrawFn) -> list[dict[str, object]]:
    """Two or three files (with the organisation's approvers beside them) whose rules overlap."""
    documents: list[dict[str, object]] = [ORG]
    for file in range(draw(st.integers(2, 3))):
        permissions: dict[str, list[dict[str, object]]] = {}
        for index in range(draw(st.integers(1, 4))):
            effect, rule = draw(rules(file, index))
            permissions.setdefault(effect, []).append(rule)
        document: dict[str, object] = {"metadata": {"description": f"file {file}"}}
        if draw(st.booleans()):
            document["agent"] = "a1"
        documents.append({**document, "permissions": permissions})
    return documents


def named_engine(
    documents: list[dict[str, object]], names: list[str], order: list[int]
) -> PolicyEngine:
    files = tuple(parse_policy_text(yaml.safe_dump(documents[k]).encode(), names[k]) for k in order)
    return PolicyEngine(PolicySet(files, "v"))


def name_free(decision: Decision, names: list[str]) -> str:
    """The decision with every file name replaced by which document it is."""
    index = {name: f"<{k}>" for k, name in enumerate(names)}

    def unname(text: str) -> str:
        return re.sub(r"[\w.-]+\.yaml", lambda m: index.get(m.group(0), m.group(0)), text)

    return unname(decision.model_dump_json())


@settings(max_examples=200, deadline=None)
@given(
    policy_files(),
    st.permutations(NAMES),
    st.randoms(use_true_random=False),
    st.sampled_from(["pay", "pay:x", "read:x", "x", "pz"]),
    st.integers(0, 4),
)
def test_file_names_and_file_order_never_change_a_decision(
    documents: list[dict[str, object]],
    names: list[str],
    rng: random.Random,
    action: str,
    n: int,
) -> None:
    count = len(documents)
    plain = named_engine(documents, NAMES[:count], list(range(count)))
    renamed_names = names[:count]
    order = rng.sample(range(count), count)
    renamed = named_engine(documents, renamed_names, order)
    query = PolicyQuery(agent=agent("a1"), action=action, params={"n": n})
    assert name_free(renamed.decide(query, at=NOON), renamed_names) == name_free(
        plain.decide(query, at=NOON), NAMES[:count]
    )


STRICTNESS = {Effect.DENY: 0, Effect.ESCALATE: 1, Effect.ALLOW: 2}
ON_TIMEOUT = {"deny": 0, "escalate": 1, "approve": 2}


@settings(max_examples=200, deadline=None)
@given(policy_files(), st.sampled_from(["pay", "pay:x", "read:x", "x", "pz"]), st.integers(0, 4))
def test_adding_a_file_never_loosens_what_a_rule_decided(
    documents: list[dict[str, object]], action: str, n: int
) -> None:
    names = NAMES[: len(documents)]
    fewer = named_engine(documents[:-1], names[:-1], list(range(len(documents) - 1)))
    more = named_engine(documents, names, list(range(len(documents))))
    query = PolicyQuery(agent=agent("a1"), action=action, params={"n": n})
    before, after = fewer.decide(query, at=NOON), more.decide(query, at=NOON)
    if before.rule_id == "default-deny":
        return  # granting what nothing decided is what an allow rule is for
    assert STRICTNESS[after.effect] <= STRICTNESS[before.effect]
    if before.escalation and after.escalation and after.rule_id != "trust-minimum":
        assert after.escalation.quorum >= before.escalation.quorum
        assert ON_TIMEOUT[after.escalation.on_timeout] <= ON_TIMEOUT[before.escalation.on_timeout]
        if before.escalation.approvers != tuple(ORG_APPROVERS):  # some rule named them
            assert set(after.escalation.approvers) <= set(before.escalation.approvers)
        assert no_longer_grant(after.escalation.grant_max_seconds, before.escalation)


def no_longer_grant(after: float | None, before: EscalationSettings) -> bool:
    """Grants only where they were allowed already, and never for longer."""
    if after is None:
        return True
    return before.grant_max_seconds is not None and after <= before.grant_max_seconds
