"""Names shared by the workflow, its activities, the worker and the clients.

Kept apart from the implementations so that a client never imports workflow code and the
workflow never imports activity code: each side depends only on these strings and on models.
"""

from temporalio.common import SearchAttributeKey

GOVERNED_ACTION_WORKFLOW = "GovernedActionWorkflow"
REINSTATEMENT_WORKFLOW = "ReinstatementWorkflow"
DECIDE_SIGNAL = "decide"
CANCEL_SIGNAL = "cancel"
PROGRESS_QUERY = "progress"
REQUEST_PERMISSION_UPDATE = "request_permission"
REPORT_RESULT_UPDATE = "report_result"

JUDGE_REQUEST = "proctor.judge_request"
VOTE_KEYS = "proctor.vote_keys"
VERIFY_IDENTITY = "proctor.verify_identity"
EVALUATE_POLICY = "proctor.evaluate_policy"
RECORD_AUDIT = "proctor.record_audit"
RECORD_OUTCOME = "proctor.record_outcome"
ADMIT_RATE = "proctor.admit_rate"
RESOLVE_APPROVERS = "proctor.resolve_approvers"
NOTIFY_APPROVERS = "proctor.notify_approvers"
REMIND_APPROVERS = "proctor.remind_approvers"
CLOSE_APPROVAL_MESSAGES = "proctor.close_approval_messages"
PLAN_REINSTATEMENT = "proctor.plan_reinstatement"
REINSTATE_AGENT = "proctor.reinstate_agent"
MAKE_GRANT = "proctor.make_grant"

STATUS_ATTRIBUTE = SearchAttributeKey.for_keyword("ProctorStatus")
AGENT_ATTRIBUTE = SearchAttributeKey.for_keyword("ProctorAgent")
ACTION_ATTRIBUTE = SearchAttributeKey.for_keyword("ProctorAction")
DEADLINE_ATTRIBUTE = SearchAttributeKey.for_datetime("ProctorDeadline")
"""When a pending approval times out: `approvals list` sorts and filters on it."""
SEARCH_ATTRIBUTES = (STATUS_ATTRIBUTE, AGENT_ATTRIBUTE, ACTION_ATTRIBUTE, DEADLINE_ATTRIBUTE)


def reinstatement_workflow_id(agent_id: str, request_id: str) -> str:
    return f"reinstate-{agent_id}-{request_id}"


def tool_activity(action: str) -> str:
    """The activity an agent registers for the durable tool named after its action."""
    return f"tool:{action}"


def step_key(workflow_id: str, run_id: str, step: str) -> str:
    """The idempotency key of one audited step of one workflow run: a retried step writes
    nothing twice, and a second run of the same workflow id never collides with the first."""
    return f"{workflow_id}:{run_id}:{step}"
