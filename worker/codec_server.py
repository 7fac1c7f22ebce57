"""The codec endpoint: Temporal's UI and CLI show decrypted payloads to operators who prove
they hold the codec token, and nothing to anyone else.

Temporal's codec server protocol: POST `.../encode` and `.../decode` take and return
`{"payloads": [...]}` (Payloads in protobuf JSON); only the last path segment is looked at,
so the endpoint may be mounted under any prefix. The UI calls it from the browser, across
origins: preflights are answered for the UI's origins only, and a request naming another
namespace (X-Namespace) is refused, since the ring is this deployment's.

Authentication, on every encode and decode (never on a preflight, which carries no
credentials): `Authorization: Bearer <PROCTOR_CODEC_TOKEN>` (the Temporal CLI:
`--codec-auth "Bearer …"`), or the session cookie that `/login` sets once the token is typed
there: the UI sends it when "Include cross-origin credentials" is on in its codec settings
(the UI's own page cannot add a header). Both are compared in constant time. The server
refuses to start without a token: an open decode endpoint is a decryption oracle for anyone
who can reach it.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from proctor import payload_keys
from proctor.codec import EncryptionCodec, PayloadDecryptError
from proctor.settings import NotConfigured, ProctorSettings, payload_key_dir
from proctor_server.worker.observability import web_served

log = logging.getLogger(__name__)
SESSION_COOKIE = "proctor_codec"
SESSION_SECONDS = 8 * 3600
MIN_TOKEN_LENGTH = 16
MAX_BODY_BYTES = 16 * 1024 * 1024
_ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def codec_token(settings: ProctorSettings) -> str:
    """The token the endpoint requires; refuses to go on without a usable one."""
    if settings.codec_token is None:
        raise NotConfigured(
            "the codec endpoint needs PROCTOR_CODEC_TOKEN (a long random "
            "secret, e.g. `openssl rand -hex 32`): without it anyone who "
            "can reach the port could decrypt history"
        )
    token = settings.codec_token.get_secret_value()
    if len(token) < MIN_TOKEN_LENGTH:
        raise NotConfigured(
            f"PROCTOR_CODEC_TOKEN: at least {MIN_TOKEN_LENGTH} characters, found {len(token)}"
        )
    return token


def ui_origins(settings: ProctorSettings) -> list[str]:
    """The Temporal UI of the embedded stack, by either loopback name."""
    return [
        f"http://127.0.0.1:{settings.temporal_ui_port}",
        f"http://localhost:{settings.temporal_ui_port}",
    ]


def endpoint_for(settings: ProctorSettings, origins: Sequence[str] = ()) -> CodecEndpoint:
    """The endpoint with the deployment's ring and token (refused without either)."""
    token = codec_token(settings)
    ring = payload_keys.load(payload_key_dir(settings))
    return CodecEndpoint(
        EncryptionCodec(ring),
        token=token,
        namespace=settings.temporal_namespace,
        origins=origins or ui_origins(settings),
    )


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class CodecEndpoint:
    """The aiohttp handlers around one codec, one token, one namespace."""

    def __init__(
        self, codec: PayloadCodec, *, token: str, namespace: str, origins: Sequence[str]
    ) -> None:
        self.codec = codec
        self.namespace = namespace
        self.origins = frozenset(origins)
        self._token = _digest(token)
        self._session = hmac.new(
            token.encode(), b"proctor-codec-session", hashlib.sha256
        ).hexdigest()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._cors], client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_route("OPTIONS", "/{tail:.*}", self._preflight)
        app.router.add_post("/{tail:.*}", self._codec)
        return app

    def authenticated(self, request: web.Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(_digest(value.strip()), self._token):
            return True
        cookie = request.cookies.get(SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(_digest(cookie), _digest(self._session))

    @web.middleware
    async def _cors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        origin = request.headers.get("Origin")
        if origin in self.origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        return response

    async def _preflight(self, request: web.Request) -> web.Response:
        if request.headers.get("Origin") not in self.origins:
            return _error(
                403,
                f"origin {request.headers.get('Origin')!r} is not the "
                "Temporal UI this codec endpoint serves",
            )
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )

    async def _codec(self, request: web.Request) -> web.Response:
        operation = request.path.rstrip("/").rsplit("/", 1)[-1]
        if operation not in ("encode", "decode"):
            return _error(
                404, f"{request.path}: the codec endpoint serves .../encode and .../decode"
            )
        if not self.authenticated(request):
            return _error(
                401,
                "missing or wrong codec token (Authorization: Bearer …, or sign in at /login)",
                {"WWW-Authenticate": 'Bearer realm="proctor-codec"'},
            )
        namespace = request.headers.get("X-Namespace")
        if namespace and namespace != self.namespace:
            return _error(
                403,
                f"namespace {namespace!r}: this codec endpoint holds the keys "
                f"of namespace {self.namespace!r} only",
            )
        try:
            payloads = json_format.Parse(await request.text(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return _error(400, f"{operation}: the body is not Payloads as protobuf JSON ({exc})")
        try:
            if operation == "encode":
                done = await self.codec.encode(payloads.payloads)
            else:
                done = await self.codec.decode(payloads.payloads)
        except PayloadDecryptError as exc:
            return _error(400, f"decode: {exc}")
        return web.Response(
            text=json_format.MessageToJson(Payloads(payloads=done)), content_type="application/json"
        )

    async def _login_form(self, _: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=_LOGIN_PAGE.format(message=""))

    async def _login(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(_digest(given), self._token):
            page = _LOGIN_PAGE.format(message="<p>Wrong token.</p>")
            return web.Response(status=401, content_type="text/html", text=page)
        signed_in = html.escape(
            "Signed in: the Temporal UI now decodes payloads (turn on "
            "'Include cross-origin credentials' in its codec settings)."
        )
        response = web.Response(
            content_type="text/html", text=_LOGIN_PAGE.format(message=f"<p>{signed_in}</p>")
        )
        response.set_cookie(
            SESSION_COOKIE,
            self._session,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="Strict",
            path="/",
            secure=request.secure,
        )
        return response


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


_LOGIN_PAGE = """<!doctype html><title>Proctor codec</title>
<h1>Proctor codec endpoint</h1>{message}
<form method="post" action="/login"><label>Codec token
<input type="password" name="token" autocomplete="off"></label>
<button type="submit">Sign in</button></form>"""


@asynccontextmanager
async def codec_served(endpoint: CodecEndpoint, host: str, port: int) -> AsyncIterator[str]:
    """Serve the endpoint until the block exits; yields its base URL."""
    async with web_served(endpoint.app(), host, port) as bound:
        url = f"http://{host}:{bound}"
        log.info("codec endpoint at %s (UI origins %s)", url, ", ".join(sorted(endpoint.origins)))
        yield url
