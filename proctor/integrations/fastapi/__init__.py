"""Proctor for agent-facing web APIs (FastAPI / Starlette): each HTTP request an agent sends is
a governed action of that agent, executed by the web service with its own key.

```python
app.add_middleware(ProctorMiddleware, key=service_key)  # every route, or actions={...}
# or, for one route: dependencies=[Depends(guard("refund_requests", key=service_key))]
```

The agent's side (`signed_request_headers`) needs no web framework and imports none; the
server side (`ProctorMiddleware`, `guard`, `status_router`) needs the `fastapi` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proctor.integrations.fastapi.headers import (
    REQUEST_HEADER,
    STATUS_PATH,
    HeaderError,
    route_action,
    signed_request_headers,
)

if TYPE_CHECKING:
    from proctor.integrations.fastapi.dependency import guard, status_router
    from proctor.integrations.fastapi.middleware import ProctorMiddleware

_SERVER_SIDE = {
    "ProctorMiddleware": "proctor.integrations.fastapi.middleware",
    "guard": "proctor.integrations.fastapi.dependency",
    "status_router": "proctor.integrations.fastapi.dependency",
}


def __getattr__(name: str) -> Any:
    """The server side, imported on first use: an agent importing this package for
    `signed_request_headers` never imports a web framework."""
    if name in _SERVER_SIDE:
        import importlib

        try:
            module = importlib.import_module(_SERVER_SIDE[name])
        except ModuleNotFoundError as exc:
            raise ImportError(
                f"{name} needs the web framework: pip install 'proctor[fastapi]' ({exc})"
            ) from exc
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REQUEST_HEADER",
    "STATUS_PATH",
    "HeaderError",
    "ProctorMiddleware",
    "guard",
    "route_action",
    "signed_request_headers",
    "status_router",
]
