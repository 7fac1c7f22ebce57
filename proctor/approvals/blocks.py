"""Block Kit payloads for approval requests, reminders, outcomes and the vote modals.

Pure functions. Everything a requester controls (action, parameters, reason, names) is escaped
for mrkdwn, so it can't mention @channel or forge links, and cut to Slack's limits, so no
input can make Slack reject a message (`invalid_blocks`) and leave approvers unasked.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from proctor.models import ApprovalCard, ApprovalClosed

APPROVE = "proctor.approve"
APPROVE_FOR_A_WHILE = "proctor.approve_with_grant"
GRANT_BUTTON_SECONDS = 3600.0
"""The standing grant the "Approve for 1 h" button asks for (less when the rule allows less)."""
APPROVE_WITH_NOTE = "proctor.approve_with_note"
DENY = "proctor.deny"
DENY_MODAL = "proctor.deny_reason"
APPROVE_MODAL = "proctor.approve_note"
NOTE_BLOCK = "proctor.note"
NOTE_INPUT = "proctor.note_input"

# Slack's documented limits.
MAX_BLOCKS = 50
MAX_TEXT = 3000  # section / context text
MAX_FIELD = 2000  # each section field
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_FALLBACK = 4000  # message `text` (Slack truncates longer ones)
MAX_BUTTON_VALUE = 2000
MAX_MODAL_TITLE = 24
MAX_METADATA = 3000
MAX_NOTE = 3000

Block = dict[str, Any]


class ButtonValue(BaseModel):
    """What a button carries: the workflow and the digest of the exact request it decides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    w: str = Field(min_length=1, max_length=400)
    d: str = Field(pattern=r"^[0-9a-f]{64}$")

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, text: str) -> ButtonValue | None:
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            return None


class ModalContext(BaseModel):
    """A vote modal's private metadata: the button it came from and where to answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    button: ButtonValue
    channel: str | None = Field(default=None, max_length=80)

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, text: str) -> ModalContext | None:
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            return None


def escape(text: str) -> str:
    """mrkdwn-safe: `<`, `>` and `&` are Slack's control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str, limit: int = MAX_TEXT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def _code(value: Any, limit: int) -> str:
    """Parameters as a code block, cut to fit (backtick runs can't close the block early)."""
    text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str)
    text = escape(text).replace("```", "`\u200b``")
    room = limit - 8
    if len(text) > room:
        more = f"\n… ({len(text) - room} more characters)"
        text = text[: room - len(more)] + more
    return f"```{text}```"


def _when(moment: datetime) -> str:
    """A Slack date token (shown in the reader's time zone) with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def span(seconds: float) -> str:
    """A grant's length as people say it: `30 min`, `1 h`, `1 h 30 min`, `2 d`, `45 s`."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    if secs or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


def button_grant_seconds(card: ApprovalCard) -> float | None:
    """What "Approve for …" asks for under this card's rule: an hour, or the rule's maximum
    if shorter; None when the rule allows no standing grants (then there is no such button)."""
    if card.grant_max_seconds is None:
        return None
    return min(GRANT_BUTTON_SECONDS, card.grant_max_seconds)


SEVERITY_MARK = {"low": "🟢", "medium": "🟡", "high": "🟠", "critical": "🔴"}


def on_behalf_of(card: ApprovalCard) -> str:
    """The verified delegation chain (`alice → agent:planner → agent:refunds`), and the human
    the agent says triggered it: nobody named here may approve."""
    chain = " → ".join(card.delegation_chain)
    if chain and card.triggered_by:
        return f"{chain} (triggered by {card.triggered_by})"
    return chain or card.triggered_by or ""


def _request_blocks(card: ApprovalCard, redacted_params: dict[str, Any]) -> list[Block]:
    mark = SEVERITY_MARK.get(card.severity or "", "🔶")
    score = () if card.trust_score is None else (f"*Trust score*\n{card.trust_score:g}",)
    fields = [
        _mrkdwn(f"*Agent*\n`{escape(card.agent_id)}`", MAX_FIELD),
        _mrkdwn(f"*Action*\n`{escape(card.action)}`", MAX_FIELD),
        _mrkdwn(f"*Rule*\n`{escape(card.rule_id)}`", MAX_FIELD),
        *(_mrkdwn(text, MAX_FIELD) for text in score),
        _mrkdwn(f"*Decide by*\n{_when(card.deadline)}", MAX_FIELD),
        _mrkdwn(f"*Approvals needed*\n{card.quorum}", MAX_FIELD),
    ]
    if card.severity:
        fields.append(_mrkdwn(f"*Severity*\n{mark} {card.severity}", MAX_FIELD))
    if card.delegation_chain or card.triggered_by:
        fields.append(_mrkdwn(f"*On behalf of*\n{escape(on_behalf_of(card))}", MAX_FIELD))
    return [
        {"type": "header", "text": _plain(f"{mark} Approval needed: {card.action}", MAX_HEADER)},
        {"type": "section", "text": _mrkdwn(f"*Why:* {escape(card.reason)}")},
        {"type": "section", "fields": fields[:MAX_FIELDS]},
        {
            "type": "section",
            "text": _mrkdwn(f"*Parameters*\n{_code(redacted_params, MAX_TEXT - 20)}"),
        },
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    f"Approvers: {escape(', '.join(card.approvers))} · "
                    f"request `{card.request_id}` · "
                    f"digest `{card.request_digest[:12]}`"
                )
            ],
        },
    ]


def approval_request(
    card: ApprovalCard, redacted_params: dict[str, Any], *, note: str | None = None
) -> dict[str, Any]:
    """The message asking for a decision: `text` (notifications) plus blocks with buttons."""
    value = ButtonValue(w=card.workflow_id, d=card.request_digest).encode()
    blocks = _request_blocks(card, redacted_params)
    if note:
        blocks.insert(1, {"type": "context", "elements": [_mrkdwn(escape(note))]})
    blocks.append(
        {
            "type": "actions",
            "block_id": "proctor.vote",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "style": "primary",
                    "value": value,
                    "text": _plain("Approve", 75),
                },
                *_grant_button(card, value),
                {
                    "type": "button",
                    "action_id": APPROVE_WITH_NOTE,
                    "value": value,
                    "text": _plain("Approve with note…", 75),
                },
                {
                    "type": "button",
                    "action_id": DENY,
                    "style": "danger",
                    "value": value,
                    "text": _plain("Deny…", 75),
                },
            ],
        }
    )
    return {"text": fallback_text(card), "blocks": blocks}


def _grant_button(card: ApprovalCard, value: str) -> list[Block]:
    """ "Approve for 1 h": this request and the agent's similar ones under the same rule, for
    that long (shown only where the rule allows standing grants)."""
    seconds = button_grant_seconds(card)
    if seconds is None:
        return []
    return [
        {
            "type": "button",
            "action_id": APPROVE_FOR_A_WHILE,
            "value": value,
            "text": _plain(f"Approve for {span(seconds)}", 75),
        }
    ]


def fallback_text(card: ApprovalCard) -> str:
    return clip(
        escape(
            f"Approval needed: {card.agent_id} wants {card.action} ({card.rule_id}): {card.reason}"
        ),
        MAX_FALLBACK,
    )


OUTCOME_LINE = {
    "approved": "✅ *Approved*",
    "rejected": "⛔ *Denied*",
    "timed_out": "⏱️ *Timed out* (no decision before the deadline)",
    "cancelled": "🚫 *Closed*",
}


def approval_closed(closed: ApprovalClosed, redacted_params: dict[str, Any]) -> dict[str, Any]:
    """The same message, decided: outcome, who and when; no buttons left to click."""
    line = OUTCOME_LINE[closed.status]
    if closed.decided_by:
        line += f" by {escape(', '.join(closed.decided_by))}"
    line += f" · {_when(closed.at)}"
    if closed.note:
        line += f"\n> {escape(closed.note)}"
    blocks = _request_blocks(closed.card, redacted_params)
    blocks[0] = {
        "type": "header",
        "text": _plain(
            f"{closed.status.replace('_', ' ').capitalize()}: {closed.card.action}", MAX_HEADER
        ),
    }
    blocks.insert(1, {"type": "section", "text": _mrkdwn(line)})
    text = clip(
        escape(f"{closed.status.replace('_', ' ')}: {closed.card.agent_id} {closed.card.action}"),
        MAX_FALLBACK,
    )
    return {"text": text, "blocks": blocks}


def reminder(card: ApprovalCard, pending: tuple[str, ...], number: int) -> dict[str, Any]:
    """A thread reply / DM nudging the approvers who haven't voted yet."""
    text = (
        f"⏰ Reminder {number}: still waiting for {escape(', '.join(pending))} to decide "
        f"`{escape(card.action)}` for `{escape(card.agent_id)}` (decide by "
        f"{_when(card.deadline)})."
    )
    return {
        "text": clip(text, MAX_FALLBACK),
        "blocks": [{"type": "section", "text": _mrkdwn(text)}],
    }


def tier_joined(card: ApprovalCard, tier: int, added: tuple[str, ...]) -> dict[str, Any]:
    """Told to the earlier approvers when a ladder tier joins."""
    text = (
        f"⬆️ Escalated to tier {tier}: {escape(', '.join(added)) or 'nobody new'} "
        f"may now decide `{escape(card.action)}` for `{escape(card.agent_id)}`."
    )
    return {
        "text": clip(text, MAX_FALLBACK),
        "blocks": [{"type": "section", "text": _mrkdwn(text)}],
    }


def vote_modal(kind: str, context: ModalContext, card_summary: str) -> dict[str, Any]:
    """Deny asks for a reason (required); approve-with-note for an optional note."""
    deny = kind == DENY_MODAL
    return {
        "type": "modal",
        "callback_id": kind,
        "private_metadata": context.encode(),
        "title": _plain("Deny request" if deny else "Approve request", MAX_MODAL_TITLE),
        "submit": _plain("Deny" if deny else "Approve", MAX_MODAL_TITLE),
        "close": _plain("Cancel", MAX_MODAL_TITLE),
        "blocks": [
            {"type": "section", "text": _mrkdwn(escape(card_summary))},
            {
                "type": "input",
                "block_id": NOTE_BLOCK,
                "optional": not deny,
                "label": _plain(
                    "Reason (shown to the agent, kept in the audit log)"
                    if deny
                    else "Note (kept in the audit log)",
                    2000,
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": NOTE_INPUT,
                    "multiline": True,
                    "max_length": MAX_NOTE,
                },
            },
        ],
    }
