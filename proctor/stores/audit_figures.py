"""A period's figures over the ledger, by SQL aggregates: what compliance reports are made of.

Each figure reads the rows recorded in [start, end) only; a vote counts once it was accepted,
a decision by its effect, an outcome by its status.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from proctor.stores.connection import Queryable


class ApproverLine(BaseModel):
    approver: str
    approved: int
    denied: int
    refused_votes: int


class AgentLine(BaseModel):
    agent_id: str
    denied: int
    identity_refused: int
    failed: int


class TrustLine(BaseModel):
    agent_id: str
    changes: int
    net_delta: float
    last_score: float | None
    suspended: int


class PeriodFigures(BaseModel):
    totals: dict[str, int]
    """Decisions, effects, escalations, votes, timeouts, outcomes, erasures, policy loads."""
    seconds_to_decision: float | None
    """The median wait from escalation to outcome (or timeout); None when nothing waited."""
    approvers: list[ApproverLine]
    violations: list[AgentLine]
    """Agents with at least one denial, refused identity or failed outcome."""
    trust: list[TrustLine]


_WINDOW = "recorded_at >= $1 AND recorded_at < $2"
_WINDOW_OF_E = "e.recorded_at >= $1 AND e.recorded_at < $2"

_TOTALS = f"""
        SELECT
          count(*) FILTER (WHERE event_type = 'decided') AS decisions,
          count(*) FILTER (WHERE event_type = 'decided'
                           AND payload::jsonb #>> '{{decision,effect}}' = 'allow') AS allowed,
          count(*) FILTER (WHERE event_type = 'decided'
                           AND payload::jsonb #>> '{{decision,effect}}' = 'deny') AS denied,
          count(*) FILTER (WHERE event_type = 'escalated') AS escalations,
          count(*) FILTER (WHERE event_type = 'vote' AND payload::jsonb ->> 'accepted' = 'true'
                           AND payload::jsonb ->> 'approve' = 'true') AS approvals,
          count(*) FILTER (WHERE event_type = 'vote' AND payload::jsonb ->> 'accepted' = 'true'
                           AND payload::jsonb ->> 'approve' = 'false') AS rejections,
          count(*) FILTER (WHERE event_type = 'vote'
                           AND payload::jsonb ->> 'accepted' = 'false') AS refused_votes,
          count(*) FILTER (WHERE event_type = 'approval_timed_out') AS timeouts,
          count(*) FILTER (WHERE event_type = 'identity_refused') AS identity_refused,
          count(*) FILTER (WHERE event_type = 'outcome'
                           AND payload::jsonb ->> 'status' = 'completed') AS completed,
          count(*) FILTER (WHERE event_type = 'outcome'
                           AND payload::jsonb ->> 'status' = 'failed') AS failed,
          count(*) FILTER (WHERE event_type = 'subject_forgotten') AS subjects_erased,
          count(*) FILTER (WHERE event_type = 'policy_loaded') AS policy_changes
        FROM audit_log WHERE {_WINDOW}"""

_MEDIAN = f"""
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM done - began))
        FROM (SELECT e.workflow_id, min(e.recorded_at) AS began,
                     (SELECT min(o.recorded_at) FROM audit_log o WHERE o.workflow_id =
                      e.workflow_id AND o.event_type IN ('outcome', 'approval_timed_out')
                      AND o.seq > min(e.seq)) AS done
              FROM audit_log e WHERE e.event_type = 'escalated' AND {_WINDOW_OF_E}
              GROUP BY e.workflow_id) waits WHERE done IS NOT NULL"""

_APPROVERS = f"""
        SELECT actor AS approver,
          count(*) FILTER (WHERE payload::jsonb ->> 'accepted' = 'true'
                           AND payload::jsonb ->> 'approve' = 'true') AS approved,
          count(*) FILTER (WHERE payload::jsonb ->> 'accepted' = 'true'
                           AND payload::jsonb ->> 'approve' = 'false') AS denied,
          count(*) FILTER (WHERE payload::jsonb ->> 'accepted' = 'false') AS refused_votes
        FROM audit_log WHERE event_type = 'vote' AND {_WINDOW}
        GROUP BY actor ORDER BY actor"""

_VIOLATIONS = f"""
        SELECT agent_id,
          count(*) FILTER (WHERE event_type = 'decided'
                           AND payload::jsonb #>> '{{decision,effect}}' = 'deny') AS denied,
          count(*) FILTER (WHERE event_type = 'identity_refused') AS identity_refused,
          count(*) FILTER (WHERE event_type = 'outcome'
                           AND payload::jsonb ->> 'status' = 'failed') AS failed
        FROM audit_log WHERE agent_id IS NOT NULL AND {_WINDOW}
        GROUP BY agent_id
        HAVING count(*) FILTER (WHERE (event_type = 'decided'
                                AND payload::jsonb #>> '{{decision,effect}}' = 'deny')
                                OR event_type = 'identity_refused'
                                OR (event_type = 'outcome'
                                AND payload::jsonb ->> 'status' = 'failed')) > 0
        ORDER BY agent_id"""

_TRUST = f"""
        SELECT agent_id,
          count(*) FILTER (WHERE event_type = 'trust_changed') AS changes,
          coalesce(sum((payload::jsonb ->> 'delta')::float8)
                   FILTER (WHERE event_type = 'trust_changed'), 0) AS net_delta,
          (array_agg((payload::jsonb ->> 'new_score')::float8 ORDER BY seq DESC)
             FILTER (WHERE event_type = 'trust_changed'))[1] AS last_score,
          count(*) FILTER (WHERE event_type = 'agent_suspended') AS suspended
        FROM audit_log WHERE event_type IN ('trust_changed', 'agent_suspended') AND {_WINDOW}
        GROUP BY agent_id ORDER BY agent_id"""


async def period_figures(db: Queryable, start: datetime, end: datetime) -> PeriodFigures:
    """Every figure of the rows recorded from `start` (inclusive) to `end` (exclusive)."""
    totals = await db.fetchrow(_TOTALS, start, end)
    median = await db.fetchval(_MEDIAN, start, end)
    return PeriodFigures(
        totals=dict(totals or {}),
        seconds_to_decision=None if median is None else float(median),
        approvers=[ApproverLine(**dict(r.items())) for r in await db.fetch(_APPROVERS, start, end)],
        violations=[AgentLine(**dict(r.items())) for r in await db.fetch(_VIOLATIONS, start, end)],
        trust=[TrustLine(**dict(r.items())) for r in await db.fetch(_TRUST, start, end)],
    )
