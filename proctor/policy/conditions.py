"""Rule conditions in CEL (the expression language of Kubernetes, Envoy and Google IAM).

Compiled and type-checked once when a policy loads; evaluated per decision in microseconds by
Google's CEL runtime (`cel-expr-python`). Never `eval`.

Variables a condition sees:
- `params`  — the action's parameters (map)
- `agent`   — `{id, role, owner, trust, status}` (map)
- `time`    — the decision time (timestamp)
- `request` — `{id, action, requested_at, delegation}` (map; requested_at as RFC 3339 text;
  delegation is `{chain, depth, root}`: the verified chain's principals from the root to the
  requesting agent, its number of links and who it starts from — `[]`, 0 and `""` for a
  request made on no one's behalf)

The toolkit's `condition: "amount > 500"` form keeps its meaning: there the parameters are also
top-level names (so it is compiled without the type checker, which cannot know them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cel_expr_python import cel

from proctor.errors import InputError, ProctorError

ConditionKind = Literal["when", "unless", "condition"]

_DYN_MAP = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
_VARIABLES = {
    "params": _DYN_MAP,
    "agent": _DYN_MAP,
    "request": _DYN_MAP,
    "time": cel.Type.TIMESTAMP,
}
_ENV = cel.NewEnv(variables=_VARIABLES)
_BOOLEAN_RESULTS = ("bool", "dyn")


class ConditionSyntaxError(InputError):
    """The expression does not parse or type-check; the message says where."""


class ConditionEvaluationError(ProctorError, RuntimeError):
    """The expression failed on this request's data (missing key, wrong type, …)."""


@dataclass(frozen=True)
class Condition:
    kind: ConditionKind
    source: str
    _program: Any

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """True/False, or ConditionEvaluationError when the data doesn't fit the expression."""
        data = {**context["params"], **context} if self.kind == "condition" else context
        try:
            result = self._program.eval(data=data)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ConditionEvaluationError(_compact(str(exc))) from exc
        kind = result.type().name().lower()
        if kind == "error":
            raise ConditionEvaluationError(_compact(str(result.value())))
        if kind != "bool":
            raise ConditionEvaluationError(f"{self.source!r} gave a {kind}, not a boolean")
        return bool(result.value())


def compile_condition(kind: ConditionKind, source: str) -> Condition:
    if not isinstance(source, str) or not source.strip():
        raise ConditionSyntaxError("an empty condition")
    try:
        program = _ENV.compile(source, disable_check=kind == "condition")
    except (ValueError, RuntimeError) as exc:
        raise ConditionSyntaxError(_compact(str(exc))) from exc
    if kind != "condition":
        returned = program.return_type().name().lower()
        if returned not in _BOOLEAN_RESULTS:
            raise ConditionSyntaxError(f"the expression is a {returned}, not a boolean")
    return Condition(kind, source, program)


def _compact(message: str) -> str:
    """CEL's multi-line diagnostics as one line: `<input>:1:17: Syntax error: …`."""
    text = message
    for prefix in ("INVALID_ARGUMENT: ", "ERROR: ", "NOT_FOUND: ", "UNKNOWN: "):
        text = text.replace(prefix, "")
    text = text.strip()
    first = text.splitlines()[0] if text else "invalid expression"
    return first.replace("<input>", "expression").strip()
