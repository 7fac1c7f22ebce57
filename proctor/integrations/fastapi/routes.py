"""Which routes of a Starlette / FastAPI app are governed, under which action, and whether an
HTTP request is what the agent signed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import JsonValue
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from proctor.canonical import canonical_bytes
from proctor.errors import ConfigurationError, InputError
from proctor.integrations.fastapi.headers import route_action
from proctor.models import ActionRequest


@dataclass(frozen=True)
class GovernedRoute:
    """A matched route that is governed: its action and its path parameters as text."""

    action: str
    path_params: dict[str, str]


class Unroutable(InputError):
    """Governing every route, the request reaches something that is not a route (a mounted
    app, a host): Proctor cannot name its action, so it does not run (fail closed)."""


def route_key(method: str, route: Route) -> str:
    """How `actions=` names a route: `POST /refunds/{order_id}`. HEAD is the GET route's."""
    return f"{_method(method)} {route.path}"


def _method(method: str) -> str:
    return "GET" if method.upper() == "HEAD" else method.upper()


class RouteActions:
    """`actions=None`: every route, as `http:<METHOD>:<template>`; else only the routes the
    mapping names (`"POST /refunds/{order_id}": "refund_requests"`)."""

    def __init__(self, actions: Mapping[str, str] | None) -> None:
        self.actions = None if actions is None else {_key(k): v for k, v in actions.items()}
        self._checked = False
        names = Counter((self.actions or {}).values())
        shared = sorted(action for action, routes in names.items() if routes > 1)
        if shared:
            # A signed request names its route only through its action: two routes under one
            # name would let a request signed for one run the other.
            raise ConfigurationError(f"actions= gives several routes one action: {shared}")

    def governed(self, scope: Scope, routes: Sequence[BaseRoute]) -> GovernedRoute | None:
        """The governed route this request reaches, or None (not governed, or no route: the
        app answers 404 / 405 and runs nothing)."""
        if not self._checked:
            self._check(routes)
        for route in routes:
            match, child = route.matches(scope)
            if match is not Match.FULL:
                continue
            if not isinstance(route, Route):
                if self.actions is None:
                    raise Unroutable(f"{scope['path']} is not a route Proctor can govern")
                return None
            method = _method(scope["method"])
            if self.actions is None:
                action = route_action(method, route.path)
            elif route_key(method, route) in self.actions:
                action = self.actions[route_key(method, route)]
            else:
                return None
            convertors = route.param_convertors
            params = {
                name: str(convertors[name].to_string(value)) if name in convertors else str(value)
                for name, value in child.get("path_params", {}).items()
            }
            return GovernedRoute(action, params)
        return None

    def _check(self, routes: Sequence[BaseRoute]) -> None:
        """Fail closed on a mapping naming a route the app does not have (a typo would leave
        the real route ungoverned)."""
        if self.actions is not None:
            known = {
                f"{m} {r.path}" for r in routes if isinstance(r, Route) for m in r.methods or ()
            }
            unknown = sorted(set(self.actions) - known)
            if unknown:
                raise ConfigurationError(f"actions= names routes the app does not have: {unknown}")
        self._checked = True


def _key(text: str) -> str:
    method, _, path = text.strip().partition(" ")
    if not method or not path.strip().startswith("/"):
        raise ConfigurationError(f"actions= key {text!r} is not 'METHOD /path/template'")
    return f"{_method(method)} {path.strip()}"


def mismatch(request: ActionRequest, action: str, params: dict[str, JsonValue]) -> str | None:
    """What differs between the signed request and this HTTP request, or None."""
    if request.action != action:
        return f"signed for {request.action}, but this route is {action}"
    for part, value in params.items():
        if canonical_bytes(request.params.get(part)) != canonical_bytes(value):
            return f"the request's {part} is not what the agent signed"
    if set(request.params) != set(params):
        return "the signed params are not {path, query, body}"
    return None
