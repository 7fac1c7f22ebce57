"""Proctor: durable governance for AI agents' actions, on Temporal."""

from proctor.client import Client, GovernanceError
from proctor.models import ActionStatus, Outcome
from proctor.signing import AgentKey

__all__ = ["ActionStatus", "AgentKey", "Client", "GovernanceError", "Outcome"]
