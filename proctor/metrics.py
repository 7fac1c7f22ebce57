"""Proctor's Prometheus metrics: what ops alert on (decisions, waiting approvals, how long
humans take, audit latency and integrity, suspensions).

Counted where the fact becomes durable (the audit activities, the checkpointer, the approvals
app), never in workflow code, which replays. The Temporal SDK's own metrics are served by its
runtime on a separate port (`PROCTOR_SDK_METRICS_PORT`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
"""Proctor's registry (not the library's global one: tests start several workers in one
process, and only what we register here is exported)."""

_HUMAN_SECONDS = (
    30,
    60,
    300,
    900,
    1800,
    3600,
    4 * 3600,
    12 * 3600,
    86400,
    3 * 86400,
    7 * 86400,
    14 * 86400,
    30 * 86400,
)
_DB_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

DECISIONS = Counter(
    "proctor_decisions",
    "Governance decisions, by effect (identity refusals count as deny).",
    ["effect"],
    registry=REGISTRY,
)
OUTCOMES = Counter(
    "proctor_outcomes", "Governed actions closed, by final status.", ["status"], registry=REGISTRY
)
APPROVALS_PENDING = Gauge(
    "proctor_approvals_pending",
    "Actions waiting for a human now (Temporal visibility; refreshed periodically).",
    registry=REGISTRY,
)
TIME_TO_DECISION = Histogram(
    "proctor_approval_decision_seconds",
    "From escalation to the deciding vote or the timeout, by how it ended.",
    ["outcome"],
    buckets=_HUMAN_SECONDS,
    registry=REGISTRY,
)
AUDIT_APPEND = Histogram(
    "proctor_audit_append_seconds",
    "Latency of one audit append (commit included), by kind.",
    ["kind"],
    buckets=_DB_SECONDS,
    registry=REGISTRY,
)
AUDIT_APPEND_FAILURES = Counter(
    "proctor_audit_append_failures",
    "Audit appends that raised (the step is retried; the action waits).",
    registry=REGISTRY,
)
CHAIN_INTACT = Gauge(
    "proctor_audit_chain_intact",
    "1 if the last verification of new rows "
    "(before signing a checkpoint) found the chain intact, 0 if broken.",
    registry=REGISTRY,
)
CHAIN_VERIFIED_SEQ = Gauge(
    "proctor_audit_chain_verified_seq",
    "The last seq verified and covered by a signed checkpoint.",
    registry=REGISTRY,
)
CHAIN_VERIFIED_AT = Gauge(
    "proctor_audit_chain_verified_timestamp_seconds",
    "When the chain was last verified (Unix time).",
    registry=REGISTRY,
)
TRUST_SUSPENSIONS = Counter(
    "proctor_trust_suspensions",
    "Agents suspended because their trust score reached 0.",
    registry=REGISTRY,
)
VOTES = Counter(
    "proctor_votes",
    "Votes received by the approvals app, by verdict.",
    ["verdict"],
    registry=REGISTRY,
)
FORGED_REQUESTS = Counter(
    "proctor_forged_requests",
    "Refused requests that cost no trust because nothing proves them "
    "the named agent's (unsigned, forged, copied, wrong workflow), by the Temporal client "
    "identity that started them and the refusal.",
    ["source", "refusal"],
    registry=REGISTRY,
)
MAX_FORGED_SOURCES = 100
_forged_sources: set[str] = set()


def forged_source(identity: str | None) -> str:
    """The `source` label of FORGED_REQUESTS: the starter's client identity is chosen by
    whoever starts the workflow, so it is cut short and the distinct values are bounded (the
    rest count as `other`): a flood of made-up identities can't blow up the metric."""
    label = (identity or "unknown")[:64]
    if label in _forged_sources or len(_forged_sources) < MAX_FORGED_SOURCES:
        _forged_sources.add(label)
        return label
    return "other"


SHADOW_DECISIONS = Counter(
    "proctor_shadow_decisions",
    "Requests a shadow rule applied to, by whether the shadow decision's effect agrees with "
    "the enforced one and by the shadow rule (rule ids come from the policy: bounded).",
    ["agreement", "rule"],
    registry=REGISTRY,
)
GRANT_USES = Counter(
    "proctor_grant_uses",
    "Escalations allowed by a standing grant instead of a human, by the rule that escalated "
    "(rule ids come from the policy: bounded).",
    ["rule"],
    registry=REGISTRY,
)
SLACK_REFUSED = Counter(
    "proctor_slack_requests_refused",
    "Requests to the Slack endpoint refused for their signature.",
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
