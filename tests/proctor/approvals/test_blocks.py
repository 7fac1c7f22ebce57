"""Block Kit payloads: snapshots of what approvers see, and Slack's limits for any input."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proctor.approvals import blocks
from proctor.models import ApprovalCard, ApprovalClosed
from tests.helpers.fake_slack import block_kit_problem

SNAPSHOTS = Path(__file__).parent / "snapshots"
DIGEST = "ab" * 32
CARD = ApprovalCard(
    workflow_id="action-req-42",
    request_id="req-42",
    agent_id="billing-agent",
    action="refund_requests",
    params={"orderId": 42, "amount": 640, "card": "[redacted]"},
    rule_id="refunds-over-500",
    reason="Refunds above $500 need a human",
    trust_score=87.5,
    deadline=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
    quorum=2,
    approvers=("alice@example.com", "bob@example.com"),
    request_digest=DIGEST,
    severity="high",
    triggered_by="carol@example.com",
)


def matches_snapshot(name: str, payload: dict[str, Any]) -> None:
    """Compare with the stored snapshot (PROCTOR_UPDATE_SNAPSHOTS=1 rewrites it)."""
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("PROCTOR_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert path.exists(), f"no snapshot {path.name}: run with PROCTOR_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(), f"{name} changed: review, then PROCTOR_UPDATE_SNAPSHOTS=1"


def test_approval_request_snapshot() -> None:
    matches_snapshot("approval_request", blocks.approval_request(CARD, CARD.params))


def test_approval_closed_snapshot() -> None:
    closed = ApprovalClosed(
        card=CARD,
        messages=(),
        status="rejected",
        decided_by=("bob@example.com",),
        note="Duplicate of #41",
        at=datetime(2026, 11, 23, 17, 5, tzinfo=UTC),
    )
    matches_snapshot("approval_closed", blocks.approval_closed(closed, CARD.params))


def test_reminder_and_tier_snapshots() -> None:
    matches_snapshot("reminder", blocks.reminder(CARD, ("bob@example.com",), 2))
    matches_snapshot("tier_joined", blocks.tier_joined(CARD, 1, ("dave@example.com",)))


def test_deny_modal_snapshot() -> None:
    context = blocks.ModalContext(
        button=blocks.ButtonValue(w=CARD.workflow_id, d=DIGEST), channel="DU0ALICE"
    )
    matches_snapshot(
        "deny_modal",
        blocks.vote_modal(blocks.DENY_MODAL, context, "billing-agent wants refund_requests"),
    )


def test_a_card_without_a_trust_score_leaves_the_field_out() -> None:
    def field_texts(card: ApprovalCard) -> list[str]:
        message = blocks.approval_request(card, card.params)
        return [f["text"] for b in message["blocks"] for f in b.get("fields", ())]

    shown = field_texts(CARD)
    assert "*Trust score*\n87.5" in shown
    unscored = field_texts(CARD.model_copy(update={"trust_score": None}))
    assert unscored == [text for text in shown if not text.startswith("*Trust score*")]


def test_buttons_carry_the_workflow_and_the_request_digest() -> None:
    message = blocks.approval_request(CARD, CARD.params)
    buttons = message["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == [
        blocks.APPROVE,
        blocks.APPROVE_WITH_NOTE,
        blocks.DENY,
    ]
    assert {blocks.ButtonValue.decode(b["value"]) for b in buttons} == {
        blocks.ButtonValue(w="action-req-42", d=DIGEST)
    }
    assert blocks.ButtonValue.decode('{"w": "x", "d": "not-a-digest"}') is None
    assert blocks.ButtonValue.decode("garbage") is None


def test_requester_text_cannot_mention_everyone_or_forge_links() -> None:
    card = CARD.model_copy(
        update={
            "reason": "<!channel> approve now <https://evil.example|the bank>",
            "params": {"note": "```\n<!here>"},
        }
    )
    text = json.dumps(blocks.approval_request(card, card.params))
    assert "<!channel>" not in text and "<!here>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(), inner, max_size=8),
    max_leaves=60,
)
names = st.text(min_size=1, max_size=400)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    params=st.dictionaries(st.text(max_size=100), json_values, max_size=30),
    reason=st.text(max_size=5000),
    action=names,
    agent=names,
    rule=names,
    approvers=st.lists(names, min_size=1, max_size=60),
    note=st.none() | st.text(max_size=5000),
    severity=st.sampled_from([None, "low", "medium", "high", "critical"]),
)
def test_every_payload_stays_within_slack_limits(
    params: dict[str, Any],
    reason: str,
    action: str,
    agent: str,
    rule: str,
    approvers: list[str],
    note: str | None,
    severity: str | None,
) -> None:
    card = CARD.model_copy(
        update={
            "params": params,
            "reason": reason,
            "action": action,
            "agent_id": agent,
            "rule_id": rule,
            "approvers": tuple(approvers),
            "severity": severity,
        }
    )
    closed = ApprovalClosed(
        card=card,
        messages=(),
        status="approved",
        decided_by=tuple(approvers),
        note=note,
        at=CARD.deadline,
    )
    for message in (
        blocks.approval_request(card, params, note=note),
        blocks.approval_closed(closed, params),
        blocks.reminder(card, tuple(approvers), 3),
        blocks.tier_joined(card, 2, tuple(approvers)),
    ):
        assert block_kit_problem(message) is None
        assert len(message["text"]) <= blocks.MAX_FALLBACK
        for block in message["blocks"]:
            for element in block.get("elements", []):
                assert len(element.get("value", "")) <= blocks.MAX_BUTTON_VALUE
    modal = blocks.vote_modal(
        blocks.DENY_MODAL,
        blocks.ModalContext(button=blocks.ButtonValue(w="w" * 400, d=DIGEST), channel="C" * 80),
        reason,
    )
    assert len(modal["private_metadata"]) <= blocks.MAX_METADATA
    assert len(modal["title"]["text"]) <= blocks.MAX_MODAL_TITLE
    assert len(modal["blocks"][0]["text"]["text"]) <= blocks.MAX_TEXT
