"""How each result in a recorded history reads: the model an activity returns and the sentence
made of it, and the run's own outcome.

A payload that no longer fits its model (the code changed since) is told as plain JSON, and one
still encrypted is named by its key, so one odd result never fails the whole timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from proctor.codec import is_encrypted, key_id_of
from proctor.contract import (
    ADMIT_RATE,
    CLOSE_APPROVAL_MESSAGES,
    EVALUATE_POLICY,
    JUDGE_REQUEST,
    MAKE_GRANT,
    NOTIFY_APPROVERS,
    PLAN_REINSTATEMENT,
    REMIND_APPROVERS,
    RESOLVE_APPROVERS,
    VERIFY_IDENTITY,
    VOTE_KEYS,
    tool_activity,
)
from proctor.models import (
    Decision,
    GrantReceipt,
    IdentityVerdict,
    Judgement,
    NotifyResult,
    RateVerdict,
    ReinstatementPlan,
    ResolvedApprovers,
    VoteKeys,
)

TOOL_PREFIX = tool_activity("")
"""What starts the name of a durable tool's activity (the action follows)."""
_converter = pydantic_data_converter.payload_converter


def decode(payloads: Payloads | None, model: type[BaseModel] | None = None) -> Any:
    """The first payload as `model` (or plain JSON when the model no longer fits)."""
    if payloads is None or not payloads.payloads:
        return None
    payload = payloads.payloads[0]
    if is_encrypted(payload):
        return f"(encrypted under key {key_id_of(payload)})"
    if model is not None:
        try:
            return _converter.from_payloads([payload], [model])[0]
        except (ValidationError, TypeError, ValueError):
            pass
    return _converter.from_payloads([payload])[0]


_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def duration(value: float) -> str:
    """Seconds as a person says them: 1d, 1.5h, 25h, 5min, 30s, and 1h 1min 40s when no one
    unit says it in whole or half units."""
    seconds = round(value)
    for suffix, size in _UNITS[:-1]:
        if seconds >= size and (seconds * 2) % size == 0:
            return f"{seconds / size:g}{suffix}"
    if seconds < 60:
        return f"{seconds}s"
    parts: list[str] = []
    for suffix, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{suffix}")
    return " ".join(parts)


def _identity(verdict: Any) -> str:
    if not isinstance(verdict, IdentityVerdict):
        return f"identity checked: {verdict}"
    if verdict.verified and verdict.agent is not None:
        agent = verdict.agent
        return (
            f"identity verified: {agent.agent_id} ({agent.role}, owner {agent.owner}), "
            f"trust {agent.trust_score:g}, status {agent.status.value}"
        )
    return f"identity REFUSED: {verdict.refusal}" + (
        f" ({verdict.detail})" if verdict.detail else ""
    )


def _decision(decision: Any) -> str:
    if not isinstance(decision, Decision):
        return f"policy decided: {decision}"
    text = (
        f"policy decided {decision.effect.value.upper()} by rule {decision.rule_id}"
        f" ({decision.policy_file or '-'}, policy {decision.policy_version}): "
        f"{decision.reason}"
    )
    escalation = decision.escalation
    if escalation is not None:
        text += (
            f"; approvers {', '.join(escalation.approvers)}, quorum {escalation.quorum}, "
            f"timeout {duration(escalation.timeout_seconds)} then {escalation.on_timeout}"
        )
    return text


def _judgement(judgement: Any) -> list[str]:
    """Identity, then (when it passed) the policy's decision: judged in one step, told as
    the two it used to be."""
    if not isinstance(judgement, Judgement):
        return [f"request judged: {judgement}"]
    return [_identity(judgement.identity)] + (
        [_decision(judgement.decision)] if judgement.decision else []
    )


def _vote_keys(keys: Any) -> str:
    if not isinstance(keys, VoteKeys):
        return f"vote keys read: {keys}"
    return (
        f"vote keys read: {len(keys.approver)} approver key(s), {len(keys.channel)} "
        "approval-service key(s)"
    )


def _rate(verdict: Any) -> str:
    if isinstance(verdict, RateVerdict):
        return (
            "rate limit: admitted"
            if verdict.admitted
            else (f"rate limit EXCEEDED: {verdict.exceeded}")
        )
    return f"rate limit checked: {verdict}"


def _notified(result: Any, what: str) -> str:
    if not isinstance(result, NotifyResult):
        return f"{what}: {result}"
    if result.skipped:
        return f"{what}: skipped ({result.skipped})"
    text = f"{what}: {len(result.messages)} Slack message(s)"
    if result.undelivered:
        text += f", undelivered to {', '.join(result.undelivered)}"
    return text


def _resolved(result: Any) -> str:
    if not isinstance(result, ResolvedApprovers):
        return f"approvers resolved: {result}"
    text = f"approvers resolved: {', '.join(result.approvers) or 'nobody'}"
    return text + (f" (unresolved {', '.join(result.unresolved)})" if result.unresolved else "")


def _plan(plan: Any) -> str:
    if isinstance(plan, ReinstatementPlan):
        if plan.problem:
            return f"reinstatement refused: {plan.problem}"
        return (
            f"reinstatement planned: approvers {', '.join(plan.approvers)}, "
            f"score back to {plan.restore_score:g}"
        )
    return f"reinstatement planned: {plan}"


def _grant(receipt: Any) -> str:
    if isinstance(receipt, GrantReceipt):
        return f"standing grant {receipt.grant_id} made (audited as row #{receipt.audit_seq})"
    return f"standing grant made: {receipt}"


@dataclass(frozen=True)
class _Result:
    """How one activity's result is told: the model it returns, and its sentence."""

    model: type[BaseModel]
    tell: Callable[[Any], str]


_RESULTS: dict[str, _Result] = {
    VERIFY_IDENTITY: _Result(IdentityVerdict, _identity),
    VOTE_KEYS: _Result(VoteKeys, _vote_keys),
    EVALUATE_POLICY: _Result(Decision, _decision),
    ADMIT_RATE: _Result(RateVerdict, _rate),
    RESOLVE_APPROVERS: _Result(ResolvedApprovers, _resolved),
    NOTIFY_APPROVERS: _Result(NotifyResult, partial(_notified, what="approvers notified")),
    REMIND_APPROVERS: _Result(NotifyResult, partial(_notified, what="reminder sent")),
    CLOSE_APPROVAL_MESSAGES: _Result(
        NotifyResult, partial(_notified, what="Slack messages closed")
    ),
    PLAN_REINSTATEMENT: _Result(ReinstatementPlan, _plan),
    MAKE_GRANT: _Result(GrantReceipt, _grant),
}


def result_texts(name: str, result: Payloads | None) -> list[str]:
    """What activity `name` answered, as sentences (judging a request answers two)."""
    if name == JUDGE_REQUEST:
        return _judgement(decode(result, Judgement))
    if name.startswith(TOOL_PREFIX):
        return [f"durable tool {name.removeprefix(TOOL_PREFIX)} returned {decode(result)}"]
    known = _RESULTS.get(name)
    if known is None:
        return [f"{name} returned {decode(result)}"]
    return [known.tell(decode(result, known.model))]


def outcome_text(outcome: Any) -> str:
    """A run's result: the outcome's status, rule and error when it is one."""
    if not (isinstance(outcome, dict) and "status" in outcome):
        return f"completed: {outcome}"
    decision = outcome.get("decision") or {}
    text = f"outcome {str(outcome['status']).upper()}"
    if decision:
        text += f" (rule {decision.get('rule_id')}, policy {decision.get('policy_version')})"
    if outcome.get("error"):
        text += f": {outcome['error']}"
    return text
