"""proctor.delegation: pattern narrowing, signing links, and every way a chain can fail."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.approvals.keys import VoteSigner
from proctor.delegation import (
    DelegationError,
    chain_refusal,
    chain_view,
    covers,
    dump_chain,
    extend_chain,
    load_chain,
    matches,
    narrows,
    sign_link,
)
from proctor.models import ActionRequest, DelegationLink, ExecutionMode, ExecutionSpec
from proctor.signing import AgentKey, verify_request

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
HANDLER = ExecutionSpec(mode=ExecutionMode.HANDLER)
ALICE = VoteSigner.generate(approver="alice")
A = AgentKey.generate("planner")
B = AgentKey.generate("refunds")
C = AgentKey.generate("helper")


def keys_of(link: DelegationLink) -> tuple[str, ...]:
    """The registered keys: one per principal."""
    known = {
        "alice": ALICE.public_key_pem,
        **{f"agent:{k.agent_id}": k.public_key_pem for k in (A, B, C)},
    }
    return (known[link.principal],) if link.principal in known else ()


def link(
    signer: AgentKey | VoteSigner,
    to: AgentKey,
    actions: Sequence[str] = ("refund_*",),
    *,
    issued: datetime = NOW,
    expires: datetime = NOW + 2 * HOUR,
) -> DelegationLink:
    return sign_link(signer, to=to.agent_id, actions=actions, expires_at=expires, issued_at=issued)


def good_chain() -> tuple[DelegationLink, ...]:
    root = link(ALICE, A, ("refund_*", "read_*"))
    return (root, link(A, B, ("refund_small",), expires=NOW + HOUR))


def request(
    chain: Sequence[DelegationLink],
    *,
    by: AgentKey = B,
    action: str = "refund_small",
    on_behalf_of: str | None = "alice",
) -> ActionRequest:
    return by.new_request(
        action, {}, HANDLER, requested_at=NOW, on_behalf_of=on_behalf_of, delegation=chain
    )


def refusal(req: ActionRequest, *, max_depth: int = 3, at: datetime = NOW) -> str | None:
    return chain_refusal(req, keys_of=keys_of, max_depth=max_depth, at=at + timedelta(seconds=1))


# --- patterns -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parent", "child", "expected"),
    [
        ("*", "refund_*", True),
        ("refund_*", "refund_small", True),
        ("refund_*", "refund_*", True),
        ("refund_small", "refund_*", False),
        ("a*", "*b", False),
        ("*b", "a*", False),
        ("a*", "a*b", True),
        ("*b", "a*b", True),
        ("a*c", "a*b*c", True),
        ("a*b*c", "a*c", False),
        ("refund_*", "*", False),
        ("**", "*", True),
        ("*", "x", True),
        ("refund_small", "refund_small", True),
        ("refund_small", "refund_smaller", False),
        ("*_small", "refund_*", False),
        ("r*d", "r*", False),
    ],
)
def test_covers(parent: str, child: str, expected: bool) -> None:
    assert covers(parent, child) is expected


def test_an_action_matches_a_pattern_only_as_a_name() -> None:
    assert matches("refund_*", "refund_small")
    assert not matches("refund_*", "delete_user")
    assert not matches("*", "refund_*"), "an action name never holds a wildcard"


def test_narrows_names_the_first_uncovered_pattern() -> None:
    assert narrows(("refund_*", "read_*"), ("read_orders", "refund_big")) is None
    assert narrows(("refund_*",), ("refund_big", "delete_*")) == "delete_*"


def regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


PATTERNS = st.text(alphabet="ab*", min_size=1, max_size=8)
FILLINGS = st.lists(st.text(alphabet="ab", max_size=4), min_size=8, max_size=8)


@settings(max_examples=400, deadline=None)
@given(parent=PATTERNS, child=PATTERNS, fillings=FILLINGS)
def test_narrowing_is_sound(parent: str, child: str, fillings: list[str]) -> None:
    """If `child` ⊆ `parent` by our rule, every action `child` matches, `parent` matches."""
    if not covers(parent, child):
        return
    parts = child.split("*")
    action = parts[0] + "".join(f + p for f, p in zip(fillings, parts[1:], strict=False))
    assert regex(parent).fullmatch(action), (parent, child, action)


@settings(max_examples=400, deadline=None)
@given(pattern=PATTERNS, action=st.text(alphabet="ab", min_size=1, max_size=8))
def test_matching_agrees_with_glob_matching(pattern: str, action: str) -> None:
    assert matches(pattern, action) is bool(regex(pattern).fullmatch(action))


@settings(max_examples=200, deadline=None)
@given(p1=PATTERNS, p2=PATTERNS, p3=PATTERNS)
def test_narrowing_is_transitive(p1: str, p2: str, p3: str) -> None:
    if covers(p1, p2) and covers(p2, p3):
        assert covers(p1, p3)


# --- a chain that holds ---------------------------------------------------------------------


def test_a_human_to_agent_to_agent_chain_holds_and_shows_its_principals() -> None:
    req = request(good_chain())
    assert refusal(req) is None
    view = chain_view(req)
    assert view.chain == ("alice", "agent:planner", "agent:refunds")
    assert (view.depth, view.root) == (2, "alice")


def test_on_behalf_of_may_be_left_out_of_a_chain() -> None:
    assert refusal(request(good_chain(), on_behalf_of=None)) is None


def test_no_chain_and_no_claim_is_nothing_to_judge() -> None:
    req = request((), on_behalf_of=None)
    assert refusal(req) is None
    assert chain_view(req).depth == 0


def test_an_agent_may_root_a_chain() -> None:
    req = request((link(A, B),), on_behalf_of="agent:planner")
    assert refusal(req) is None
    assert chain_view(req).root == "agent:planner"


def test_an_rsa_agent_key_signs_a_link_that_verifies() -> None:
    rsa = AgentKey.generate("rsa-agent", "rsa-2048")
    chain = (link(rsa, B),)

    def rsa_keys(item: DelegationLink) -> tuple[str, ...]:
        return (rsa.public_key_pem,)

    req = request(chain, on_behalf_of=None)
    assert chain_refusal(req, keys_of=rsa_keys, max_depth=3, at=NOW) is None


# --- chains that do not ----------------------------------------------------------------------


def refused(req: ActionRequest, *fragments: str, max_depth: int = 3, at: datetime = NOW) -> None:
    why = refusal(req, max_depth=max_depth, at=at)
    assert why is not None
    for fragment in fragments:
        assert fragment in why, why


def test_a_claim_without_a_chain_is_refused() -> None:
    refused(request(()), "no delegation chain")


def test_on_behalf_of_must_be_the_root() -> None:
    refused(request(good_chain(), on_behalf_of="bob"), "not the chain's root")


def test_a_chain_deeper_than_the_maximum_is_refused() -> None:
    chain = (*good_chain()[:1], link(A, C), link(C, B))
    assert refusal(request(chain), max_depth=3) is None
    refused(request(chain), "3 links", "maximum of 2", max_depth=2)


def test_a_widened_link_is_refused() -> None:
    chain = (link(ALICE, A, ("refund_small",)), link(A, B, ("refund_*",), expires=NOW + HOUR))
    refused(request(chain), "link 2 (agent:planner → agent:refunds)", "'refund_*' is wider")


def test_an_expired_link_is_refused() -> None:
    chain = (link(ALICE, A), link(A, B, expires=NOW + HOUR))
    refused(request(chain), "link 2", "expired", at=NOW + HOUR)
    refused(request(chain), "link 1", "expired", at=NOW + 2 * HOUR)


def test_a_link_issued_after_receipt_is_refused() -> None:
    chain = (link(ALICE, A, issued=NOW + HOUR), link(A, B, expires=NOW + HOUR))
    refused(request(chain), "link 1", "after the request was received")


def test_a_link_issued_within_the_clock_skew_holds() -> None:
    """The delegator's clock may run ahead of the server's: the requester must not pay."""
    chain = (link(ALICE, A, issued=NOW + timedelta(seconds=60)), link(A, B, expires=NOW + HOUR))
    skew = timedelta(seconds=60)
    assert (
        chain_refusal(request(chain), keys_of=keys_of, max_depth=3, at=NOW, clock_skew=skew) is None
    )
    late = chain_refusal(
        request(chain), keys_of=keys_of, max_depth=3, at=NOW - timedelta(seconds=1), clock_skew=skew
    )
    assert late is not None and "after the request was received" in late


def test_a_link_outliving_its_parent_is_refused() -> None:
    chain = (link(ALICE, A, expires=NOW + HOUR), link(A, B, expires=NOW + 2 * HOUR))
    refused(request(chain), "link 2", "expires after the link it extends")


def test_a_link_signed_by_another_key_is_refused() -> None:
    mallory = AgentKey.generate("planner")  # same id, not the registered key
    chain = (link(ALICE, A), link(mallory, B, expires=NOW + HOUR))
    refused(request(chain), "link 2", "not signed by a key of agent:planner")


def test_a_human_link_signed_by_another_approver_key_is_refused() -> None:
    impostor = VoteSigner.generate(approver="alice")
    chain = (link(impostor, A), link(A, B, expires=NOW + HOUR))
    refused(request(chain), "link 1 (alice → agent:planner)", "not signed by a key of alice")


def test_a_link_edited_after_signing_is_refused() -> None:
    root = link(ALICE, A, ("refund_small",))
    widened = root.model_copy(update={"actions": ("*",)})
    refused(request((widened, link(A, B, expires=NOW + HOUR))), "link 1", "does not verify")


def test_an_unsigned_link_is_refused() -> None:
    root = link(ALICE, A).model_copy(update={"signature": ""})
    refused(request((root, link(A, B, expires=NOW + HOUR))), "link 1", "does not verify")


def test_a_delegator_without_keys_is_refused() -> None:
    stranger = AgentKey.generate("stranger")
    refused(request((link(stranger, B),), on_behalf_of=None), "not signed by a key")


def test_only_the_root_may_be_human() -> None:
    chain = (link(A, C), link(ALICE, B, expires=NOW + HOUR))
    refused(request(chain, on_behalf_of=None), "link 2", "only the root may be a human")


def test_links_must_hand_on_to_each_other() -> None:
    chain = (link(ALICE, A), link(C, B, expires=NOW + HOUR))
    refused(request(chain), "link 2", "its delegator is not agent:planner")


def test_the_last_link_must_name_the_requester() -> None:
    refused(request(good_chain(), by=C), "delegates to another agent than the requester")


def test_a_cycle_is_refused() -> None:
    chain = (link(ALICE, A), link(A, B, expires=NOW + HOUR), link(B, A, expires=NOW + HOUR))
    refused(request(chain, by=A), "twice")


def test_an_action_outside_the_last_link_is_refused() -> None:
    refused(request(good_chain(), action="refund_big"), "does not grant 'refund_big'")


def test_the_request_signature_covers_the_chain() -> None:
    req = request(good_chain())
    assert verify_request(req, B.public_key_pem)
    shortened = req.model_copy(update={"delegation": good_chain()[:1]})
    assert not verify_request(shortened, B.public_key_pem)


# --- making links ---------------------------------------------------------------------------


def test_an_agent_extends_the_chain_that_ends_with_it() -> None:
    root = extend_chain(ALICE, to=A.agent_id, actions=["refund_*"], expires_in=HOUR)
    chain = A.delegate(B.agent_id, ["refund_small"], expires_in=10 * HOUR, parent=root)
    assert len(chain) == 2 and chain[0] == root[0]
    assert chain[1].expires_at == root[0].expires_at, "cut to the parent's expiry"
    assert chain[1].delegator_kind == "agent" and chain[1].delegate == B.agent_id
    req = B.new_request("refund_small", {}, HANDLER, on_behalf_of="alice", delegation=chain)
    assert chain_refusal(req, keys_of=keys_of, max_depth=3, at=datetime.now(UTC)) is None


def test_extending_refuses_a_wider_grant_and_a_stranger() -> None:
    root = extend_chain(ALICE, to=A.agent_id, actions=["refund_small"], expires_in=HOUR)
    with pytest.raises(DelegationError, match="'refund_\\*' is not within"):
        A.delegate(B.agent_id, ["refund_*"], expires_in=HOUR, parent=root)
    with pytest.raises(DelegationError, match="only it extends it"):
        C.delegate(B.agent_id, ["refund_small"], expires_in=HOUR, parent=root)


def test_an_expired_chain_is_not_extended() -> None:
    root = (link(ALICE, A, issued=NOW - 2 * HOUR, expires=NOW - HOUR),)
    with pytest.raises(DelegationError, match="the chain expired at"):
        A.delegate(B.agent_id, ["refund_small"], expires_in=HOUR, parent=root)


def test_an_approval_service_key_cannot_delegate() -> None:
    slack = VoteSigner.generate(channel="slack")
    with pytest.raises(DelegationError, match="approval service"):
        sign_link(slack, to="planner", actions=["*"], expires_at=NOW + HOUR)


def test_bad_link_fields_are_one_line() -> None:
    with pytest.raises(DelegationError, match="actions"):
        sign_link(A, to="refunds", actions=["no spaces"], expires_at=NOW + HOUR, issued_at=NOW)
    with pytest.raises(DelegationError, match="expire before"):
        sign_link(A, to="refunds", actions=["*"], expires_at=NOW, issued_at=NOW)


def test_a_chain_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "chain.json"
    path.write_text(dump_chain(good_chain()))
    assert load_chain(path) == good_chain()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{", "not a delegation chain"), ('[{"delegator": "x"}]', "0.delegator_kind")],
)
def test_a_bad_chain_file_is_one_line_naming_it(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "chain.json"
    path.write_text(content)
    with pytest.raises(DelegationError) as caught:
        load_chain(path)
    assert str(caught.value).startswith(str(path)) and fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_chain_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DelegationError, match="cannot read the chain"):
        load_chain(tmp_path / "none.json")
