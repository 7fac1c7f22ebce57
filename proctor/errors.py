"""Proctor's errors: one family, so a caller catches `ProctorError` and a bug stays a traceback.

Every error Proctor raises on purpose is a `ProctorError` whose message is one line saying what
went wrong and where (a file and line, a flag, an agent id). The `proctor` command prints that
line and exits 2; anything else is a bug and keeps its traceback. Each family also keeps the
built-in base that older callers caught (`ValueError`, `LookupError`, `RuntimeError`).

    ProctorError
    ├── InputError (ValueError)              what was given is wrong: a file, a flag, a value
    │   ├── PolicyError                      proctor.policy.loader: a policy set that does not load
    │   ├── ConditionSyntaxError             proctor.policy.conditions: a CEL condition
    │   ├── CanonicalizationError            proctor.canonical: a value JSON cannot hash
    │   ├── DelegationError                  proctor.delegation: a link or chain file
    │   ├── HeaderError                      proctor.integrations.fastapi: no or a bad signed header
    │   ├── BodyError                        proctor.integrations.fastapi: body too big, not JSON
    │   ├── Unroutable                       proctor.integrations.fastapi: no route, no action
    │   ├── GatewayConfigError               proctor.mcp_gateway.config: a bad mcp.yaml
    │   └── KeyMaterialError                 a key file missing, unreadable or of the wrong kind
    │       ├── AgentKeyError                proctor.signing
    │       ├── UnusableKey                  proctor.attestation: a public key too weak or unknown
    │       ├── VoteKeyError                 proctor.approvals.keys
    │       ├── PayloadKeyError              proctor.payload_keys
    │       │   └── PayloadKeysMissing       no ring where one is required
    │       └── KeyFileError                 proctor.audit.keys
    │           └── SinkCorrupt              proctor.audit.sink: the checkpoint sink unreadable
    ├── NotFoundError (LookupError)          a named thing does not exist
    │   ├── UnknownAgent                     proctor.stores.agents
    │   ├── UnknownWorkflow                  proctor.approvals.operations
    │   └── UnknownGroup                     proctor.policy.escalation: an approver group
    ├── ConflictError (ValueError)           it exists already, or its state forbids the change
    │   ├── AgentExists                      proctor.stores.agents
    │   ├── SecretFileExists                 proctor.secret_files: keys are never overwritten
    │   ├── IdempotencyConflict              proctor.stores.audit_log: one key, two payloads
    │   ├── GrantConflict                    proctor.stores.grants: one grant id, two runs
    │   └── NotCancellable                   proctor.approvals.operations: the run has ended
    ├── ConfigurationError (RuntimeError)    a setting is missing or contradicts another
    │   └── NotConfigured                    proctor.temporal (re-exported by proctor.settings)
    ├── UnavailableError (RuntimeError)      a service Proctor needs cannot be reached or used
    │   ├── DatabaseUnavailable              proctor.db
    │   ├── SchemaOutdated                   proctor.db
    │   ├── TemporalUnavailable              proctor.temporal
    │   ├── UpstreamFailed                   proctor.mcp_gateway.upstream: down or hung
    │   ├── SlackUnusable                    proctor.approvals.slack: token revoked, scope missing
    │   └── StackError                       proctor_server.worker.stack: the stack did not start
    ├── IntegrityError (RuntimeError)        stored evidence does not hold up
    │   ├── ChainBrokenError                 proctor.audit.checkpoints
    │   ├── PruneRefused                     proctor.audit.retention
    │   └── PayloadDecryptError              proctor.codec: a payload no key of the ring opens
    │       ├── PayloadTampered              its authentication tag does not verify
    │       └── UnknownPayloadKey            it names a key the ring does not hold
    ├── ConditionEvaluationError (RuntimeError)  proctor.policy.conditions: a condition failed at
    │                                        run time (the request is denied, fail closed)
    ├── ActionNotCompleted (RuntimeError)    `Outcome.raise_for_status()`: the action ended
    │   │                                    other than completed (status, rule, reason kept)
    │   ├── ActionDenied                     policy, identity or a rate limit said no
    │   ├── ActionRejected                   an authorised approver said no
    │   ├── ActionTimedOut                   nobody decided before the deadline
    │   ├── ActionCancelled                  stopped before it ran (or ended outside Proctor)
    │   ├── ActionFailed                     the handler or tool raised (its error kept)
    │   └── OutcomeUnknown                   a process took the permission and never reported
    ├── GovernanceError (RuntimeError)       proctor.client: governance itself could not
    │                                        complete (the action was not executed)
    └── ToolOutputLost (RuntimeError)        proctor.integrations.openai_agents: a guarded tool
                                             raised before its output could be reported
"""

from __future__ import annotations


class ProctorError(Exception):
    """A failure Proctor raised on purpose; its message is one line for the person concerned."""


class InputError(ProctorError, ValueError):
    """What was given is wrong: a file, a flag, a value."""


class KeyMaterialError(InputError):
    """A key file is missing, unreadable, or not the kind of key asked for."""


class NotFoundError(ProctorError, LookupError):
    """A named thing (an agent, a workflow, a key) does not exist."""


class ConflictError(ProctorError, ValueError):
    """The thing exists already, or its state forbids the change asked for."""


class ConfigurationError(ProctorError, RuntimeError):
    """A setting is missing or contradicts another."""


class UnavailableError(ProctorError, RuntimeError):
    """A service Proctor needs (Postgres, Temporal, a port) cannot be reached or used."""


class IntegrityError(ProctorError, RuntimeError):
    """Stored evidence (the audit chain, a checkpoint, an encrypted payload) does not hold up."""


class ActionNotCompleted(ProctorError, RuntimeError):
    """A governed action that ended other than completed (`Outcome.raise_for_status()`): what
    the outcome says of it, kept as plain values so the error pickles and logs as it is."""

    def __init__(
        self,
        message: str,
        *,
        status: str,
        workflow_id: str,
        rule_id: str,
        reason: str,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.workflow_id = workflow_id
        self.rule_id = rule_id
        self.reason = reason
        self.error = error
        """The handler's or tool's error (ActionFailed), or why it was cancelled or unknown."""

    def __reduce__(self) -> tuple[object, ...]:
        fields = (self.status, self.workflow_id, self.rule_id, self.reason, self.error)
        return (_rebuild, (type(self), str(self), *fields))


def _rebuild(
    kind: type[ActionNotCompleted],
    message: str,
    status: str,
    workflow_id: str,
    rule_id: str,
    reason: str,
    error: str | None,
) -> ActionNotCompleted:
    """Unpickle keyword-only fields (exceptions pickle their positional args by default)."""
    return kind(
        message, status=status, workflow_id=workflow_id, rule_id=rule_id, reason=reason, error=error
    )


class ActionDenied(ActionNotCompleted):
    """Policy, identity or a rate limit said no."""


class ActionRejected(ActionNotCompleted):
    """An authorised approver said no."""


class ActionTimedOut(ActionNotCompleted):
    """Nobody decided before the deadline (and the policy said deny)."""


class ActionCancelled(ActionNotCompleted):
    """Stopped before it ran (`proctor cancel`, a Temporal cancellation), or ended outside
    Proctor (terminated, reset)."""


class ActionFailed(ActionNotCompleted):
    """The handler or durable tool raised: `error` holds what it raised."""


class OutcomeUnknown(ActionNotCompleted):
    """A process took the permission to execute and never reported: it may or may not have
    run."""
