"""What an agent signs: a request without delegation signs exactly what it signed before the
fields existed (recorded histories and stored requests still verify); with one, the chain is
covered by the agent's signature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from proctor.models import ActionRequest, DelegationLink, ExecutionMode, ExecutionSpec

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def request(**own: object) -> ActionRequest:
    return ActionRequest.model_validate(
        {
            "request_id": "r1",
            "agent_id": "refunds-agent",
            "action": "refund_requests",
            "params": {"amount": 5},
            "requested_at": AT,
            "nonce": "n" * 16,
            "execution": ExecutionSpec(mode=ExecutionMode.HANDLER),
            **own,
        }
    )


def test_a_request_without_delegation_signs_what_it_signed_before() -> None:
    payload = request().signing_payload()

    assert set(payload) == {
        "request_id",
        "agent_id",
        "action",
        "params",
        "requested_at",
        "nonce",
        "execution",
    }


def test_a_delegated_request_signs_its_chain() -> None:
    link = DelegationLink(
        delegator="alice",
        delegator_kind="human",
        delegate="refunds-agent",
        actions=("refund_*",),
        issued_at=AT,
        expires_at=AT + timedelta(hours=1),
        key_id="k",
        signature="s",
    )

    payload = request(on_behalf_of="alice", delegation=(link,)).signing_payload()

    assert payload["on_behalf_of"] == "alice"
    assert payload["delegation"] == [link.model_dump(mode="json")]
    assert link.principal == "alice"
    assert link.model_copy(update={"delegator_kind": "agent"}).principal == "agent:alice"
