"""Declarative YAML policy: schema, loader with line-accurate errors, compiler, linter and the
decision engine."""

from proctor.policy.decide import PolicyEngine
from proctor.policy.loader import PolicyError, PolicyProblem, PolicySet, load_policy_dir

__all__ = ["PolicyEngine", "PolicyError", "PolicyProblem", "PolicySet", "load_policy_dir"]
