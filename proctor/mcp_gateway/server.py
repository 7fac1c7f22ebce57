"""The gateway as an MCP server: the upstreams' tools under their prefixes (schemas as the
upstream wrote them), each call governed (`calls.GovernedCalls`); resources and prompts passed
through, reads optionally governed as `mcp:<server>:read`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.client import Client as McpClient
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from proctor.mcp_gateway.calls import GovernedCalls, read_action, tool_call_action
from proctor.mcp_gateway.config import GatewayConfig
from proctor.mcp_gateway.local_policy import LocalPolicy
from proctor.mcp_gateway.upstream import Upstream, UpstreamFailed

log = logging.getLogger(__name__)

MAX_PAGES = 100
"""Pages of one upstream listing read before giving up (a paginator that never ends)."""
Context = ServerRequestContext[Any]


class Gateway:
    """Routes the MCP client's requests to the upstreams, through governance."""

    def __init__(
        self,
        config: GatewayConfig,
        upstreams: dict[str, Upstream],
        calls: GovernedCalls,
        policy: LocalPolicy | None,
    ) -> None:
        self.config = config
        self.upstreams = upstreams
        self.calls = calls
        self.hiding = policy if config.hide_denied_tools else None
        self._tools: dict[str, tuple[str, str]] = {}
        """Listed name → (server, upstream tool name), hidden tools included."""
        self._prompts: dict[str, tuple[str, str]] = {}
        self._resources: dict[str, str] = {}
        """Resource uri → server that listed it."""

    def server(self) -> Server[Any]:
        return Server(
            "proctor-mcp-gateway",
            instructions="Tools behind Proctor: each call is governed by policy and may wait "
            "for a human approval.",
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_list_resource_templates=self.list_resource_templates,
            on_read_resource=self.read_resource,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
        )

    # --- tools ----------------------------------------------------------------------------

    async def list_tools(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        listed: list[types.Tool] = []
        routes: dict[str, tuple[str, str]] = {}
        for server, upstream in self.upstreams.items():
            tools = await self._listing(upstream, "tools/list", _all_tools)
            if tools is None:  # down: its tools stay callable (a call says it is down)
                routes.update({n: r for n, r in self._tools.items() if r[0] == server})
                continue
            prefix = self.config.prefix_of(server)
            for tool in tools:
                name = f"{prefix}{tool.name}"
                if name in routes:
                    log.warning("%s's tool %s not listed: the name is taken", server, name)
                    continue
                routes[name] = (server, tool.name)
                action = tool_call_action(server, tool.name)
                if self.hiding is None or not self.hiding.hides(action):
                    listed.append(tool.model_copy(update={"name": name}))
        self._tools = routes
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        self, ctx: Context, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        route = self._tools.get(params.name)
        if route is None:
            await self.list_tools(ctx, None)  # a client may call before listing, or after a change
            route = self._tools.get(params.name)
        if route is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool: {params.name}")
        server, tool = route
        return await self.calls.call_tool(
            ctx, server, self.upstreams[server], tool, params.arguments
        )

    # --- resources ------------------------------------------------------------------------

    async def list_resources(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        resources: list[types.Resource] = []
        for server, upstream in self.upstreams.items():
            for resource in await self._listing(upstream, "resources/list", _all_resources) or []:
                self._resources.setdefault(str(resource.uri), server)
                resources.append(resource)
        return types.ListResourcesResult(resources=resources)

    async def list_resource_templates(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        templates: list[types.ResourceTemplate] = []
        for upstream in self.upstreams.values():
            listing = await self._listing(upstream, "resources/templates/list", _all_templates)
            templates.extend(listing or [])
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(
        self, ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        candidates = [self._resources[uri]] if uri in self._resources else list(self.upstreams)
        last: MCPError | None = None
        for server in candidates:
            try:
                read = await self._read(ctx, server, uri)
            except MCPError as exc:  # not this upstream's resource: try the next
                last = exc
                continue
            if isinstance(read, str):  # governance said no: no other upstream is asked
                raise MCPError(types.INVALID_REQUEST, read)
            return read
        raise last or MCPError(types.INVALID_PARAMS, f"unknown resource: {uri}")

    async def _read(self, ctx: Context, server: str, uri: str) -> types.ReadResourceResult | str:
        """`server`'s answer to reading `uri` (governed if its config says so), or why
        governance refused it."""
        upstream = self.upstreams[server]

        async def read(**_: Any) -> dict[str, Any]:
            result = await upstream.request("resources/read", lambda c: c.read_resource(uri))
            dumped: dict[str, Any] = result.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
            return dumped

        if not self.config.servers[server].govern_reads:
            try:
                result: types.ReadResourceResult = await upstream.request(
                    "resources/read", lambda c: c.read_resource(uri)
                )
            except UpstreamFailed as exc:
                raise MCPError(types.INTERNAL_ERROR, str(exc)) from None
            return result
        governed = await self.calls.govern(ctx, read_action(server), {"uri": uri}, read)
        if governed.refusal is not None:
            return governed.refusal
        return types.ReadResourceResult.model_validate(governed.value)

    # --- prompts --------------------------------------------------------------------------

    async def list_prompts(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        prompts: list[types.Prompt] = []
        routes: dict[str, tuple[str, str]] = {}
        for server, upstream in self.upstreams.items():
            prefix = self.config.prefix_of(server)
            for prompt in await self._listing(upstream, "prompts/list", _all_prompts) or []:
                name = f"{prefix}{prompt.name}"
                if name not in routes:
                    routes[name] = (server, prompt.name)
                    prompts.append(prompt.model_copy(update={"name": name}))
        self._prompts = routes
        return types.ListPromptsResult(prompts=prompts)

    async def get_prompt(
        self, ctx: Context, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        route = self._prompts.get(params.name)
        if route is None:
            await self.list_prompts(ctx, None)
            route = self._prompts.get(params.name)
        if route is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown prompt: {params.name}")
        server, prompt = route
        try:
            result: types.GetPromptResult = await self.upstreams[server].request(
                "prompts/get", lambda c: c.get_prompt(prompt, params.arguments)
            )
        except UpstreamFailed as exc:
            raise MCPError(types.INTERNAL_ERROR, str(exc)) from None
        return result

    async def _listing(
        self,
        upstream: Upstream,
        what: str,
        fetch: Callable[[McpClient], Awaitable[list[Any]]],
    ) -> list[Any] | None:
        """One upstream's listing: None if it is down (logged), empty if it does not offer the
        kind, rather than failing the whole listing."""
        try:
            listed: list[Any] = await upstream.request(what, fetch)
        except UpstreamFailed as exc:
            log.warning("%s", exc)
            return None
        except MCPError as exc:
            if exc.code != types.METHOD_NOT_FOUND:
                log.warning("upstream %s: %s failed: %s", upstream.name, what, exc.message)
            return []
        return listed


async def _all_tools(client: McpClient) -> list[types.Tool]:
    return await _pages(lambda cursor: client.list_tools(cursor=cursor), "tools")


async def _all_resources(client: McpClient) -> list[types.Resource]:
    return await _pages(lambda cursor: client.list_resources(cursor=cursor), "resources")


async def _all_templates(client: McpClient) -> list[types.ResourceTemplate]:
    return await _pages(
        lambda cursor: client.list_resource_templates(cursor=cursor), "resource_templates"
    )


async def _all_prompts(client: McpClient) -> list[types.Prompt]:
    return await _pages(lambda cursor: client.list_prompts(cursor=cursor), "prompts")


async def _pages(fetch: Callable[[str | None], Awaitable[Any]], field: str) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor)
        items.extend(getattr(page, field))
        cursor = page.next_cursor
        if not cursor:
            break
    return items
