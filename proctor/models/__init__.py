"""Pydantic models for everything that crosses a process boundary.

Workflows, activities, the client and the CLI exchange only these types (through Temporal's
pydantic data converter), so a field added here is validated the same way everywhere. They are
grouped by boundary; import them from here.
"""

from __future__ import annotations

from pydantic import JsonValue

from proctor.models.approval import (
    ApprovalCard,
    CancelRequest,
    GrantScope,
    PendingApproval,
    RecordedVote,
    Vote,
    VoteKeyQuery,
    VoteKeys,
    approver_key,
)
from proctor.models.audit import AuditEvent, AuditReceipt, OutcomeRecord
from proctor.models.base import (
    ACTION_GLOB_PATTERN,
    ACTION_NAME_PATTERN,
    AGENT_ID_PATTERN,
    Frozen,
    Jsonable,
)
from proctor.models.decision import (
    APPROVER_REFERENCE_PREFIXES,
    Decision,
    Effect,
    EscalationSettings,
    Judgement,
    JudgeRequest,
    LadderTier,
    PolicyQuery,
    RateCheck,
    RateLimit,
    RateVerdict,
    is_approver_reference,
)
from proctor.models.delegation import DelegationLink, DelegationView, PrincipalKind
from proctor.models.execution import (
    HandlerReport,
    Permission,
    PermissionRequest,
    ToolCall,
    ToolResult,
)
from proctor.models.grants import GrantDraft, GrantReceipt, StandingGrant
from proctor.models.identity import (
    AgentInfo,
    AgentStatus,
    IdentityVerdict,
    TrustChange,
    TrustPolicy,
)
from proctor.models.notices import (
    ApprovalClosed,
    ApprovalNotice,
    ApproverNames,
    ClosedAs,
    NotifyResult,
    ReminderNotice,
    ResolvedApprovers,
    SlackMessageRef,
)
from proctor.models.outcome import ActionStatus, Outcome, Progress, Stage
from proctor.models.reinstatement import (
    Reinstatement,
    ReinstatementOutcome,
    ReinstatementPlan,
    ReinstatementRequest,
)
from proctor.models.request import (
    ActionRequest,
    ExecutionMode,
    ExecutionSpec,
    GovernedActionInput,
    workflow_id_for,
)

__all__ = [
    "ACTION_GLOB_PATTERN",
    "ACTION_NAME_PATTERN",
    "AGENT_ID_PATTERN",
    "APPROVER_REFERENCE_PREFIXES",
    "ActionRequest",
    "ActionStatus",
    "AgentInfo",
    "AgentStatus",
    "ApprovalCard",
    "ApprovalClosed",
    "ApprovalNotice",
    "ApproverNames",
    "AuditEvent",
    "AuditReceipt",
    "CancelRequest",
    "ClosedAs",
    "Decision",
    "DelegationLink",
    "DelegationView",
    "Effect",
    "EscalationSettings",
    "ExecutionMode",
    "ExecutionSpec",
    "Frozen",
    "GovernedActionInput",
    "GrantDraft",
    "GrantReceipt",
    "GrantScope",
    "HandlerReport",
    "IdentityVerdict",
    "JsonValue",
    "Jsonable",
    "JudgeRequest",
    "Judgement",
    "LadderTier",
    "NotifyResult",
    "Outcome",
    "OutcomeRecord",
    "PendingApproval",
    "Permission",
    "PermissionRequest",
    "PolicyQuery",
    "PrincipalKind",
    "Progress",
    "RateCheck",
    "RateLimit",
    "RateVerdict",
    "RecordedVote",
    "Reinstatement",
    "ReinstatementOutcome",
    "ReinstatementPlan",
    "ReinstatementRequest",
    "ReminderNotice",
    "ResolvedApprovers",
    "SlackMessageRef",
    "Stage",
    "StandingGrant",
    "ToolCall",
    "ToolResult",
    "TrustChange",
    "TrustPolicy",
    "Vote",
    "VoteKeyQuery",
    "VoteKeys",
    "approver_key",
    "is_approver_reference",
    "workflow_id_for",
]
