"""`govern(tool)`: any LangChain `BaseTool` governed by Proctor, for LangGraph's `ToolNode` and
agents built without middleware."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages import ToolCall
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.tools import BaseTool, ToolException

from proctor.client import Client
from proctor.errors import ActionNotCompleted
from proctor.integrations import Governor, tool_action, verdict_text
from proctor.integrations.langchain._calls import GovernedCall
from proctor.integrations.langchain._naming import request_id_for
from proctor.integrations.langchain._runs import run_governed, run_governed_sync
from proctor.signing import AgentKey

_tool_call_id: ContextVar[str | None] = ContextVar("proctor_langchain_tool_call_id", default=None)
"""The id of the tool call being run (BaseTool hands it to `run`, not to `_run`)."""


def govern(
    tool: BaseTool, *, key: AgentKey, client: Client | None = None, action: str | None = None
) -> GovernedTool:
    """`tool` with every run governed by Proctor as `action` (default `tool:<name>`): same
    name, description and arguments, sync and async. A refusal raises `ToolException` with the
    verdict, which the tool turns into its answer (an error `ToolMessage` in a `ToolNode`)."""
    if not isinstance(tool, BaseTool):
        raise TypeError(
            f"govern() takes a LangChain BaseTool, not {type(tool).__name__}: "
            "make it one with @tool first"
        )
    return GovernedTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema if tool.args_schema is not None else tool.get_input_schema(),
        return_direct=tool.return_direct,
        handle_validation_error=tool.handle_validation_error,
        tool=tool,
        governor=Governor(key, client),
        action=action or tool_action(tool.name),
    )


class GovernedTool(BaseTool):
    """A tool run only once Proctor allows it (see `govern`). Its arguments, as the tool
    receives them, are the request's params; the request id comes from the agent, the thread
    and the tool call's id, so a re-run after a crash joins the request it made (called
    without a tool call or a thread id, each run is a new request)."""

    tool: BaseTool
    governor: Governor
    action: str
    handle_tool_error: bool = True
    """A refusal (and a `ToolException` of the wrapped tool) is the tool's answer to the
    model, an error `ToolMessage` in a `ToolNode`, not a crash of the run."""

    def invoke(
        self,
        input: str | dict[str, Any] | ToolCall,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        token = _tool_call_id.set(_id_of(input))
        try:
            return super().invoke(input, config, **kwargs)
        finally:
            _tool_call_id.reset(token)

    async def ainvoke(
        self,
        input: str | dict[str, Any] | ToolCall,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        token = _tool_call_id.set(_id_of(input))
        try:
            return await super().ainvoke(input, config, **kwargs)
        finally:
            _tool_call_id.reset(token)

    def _run(
        self,
        *args: Any,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> Any:
        call = self._governed(args, kwargs, config)
        child = patch_config(config, callbacks=run_manager.get_child() if run_manager else None)
        try:
            output = run_governed_sync(
                self.governor,
                call.action,
                call.params,
                call.request_id,
                lambda: self.tool.invoke(self._input(args, kwargs, call), child),
            )
        except ActionNotCompleted as error:
            if not call.is_own(error):
                raise
            raise ToolException(verdict_text(error, call.action)) from error
        return call.answer(output)

    async def _arun(
        self,
        *args: Any,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> Any:
        call = self._governed(args, kwargs, config)
        child = patch_config(config, callbacks=run_manager.get_child() if run_manager else None)
        try:
            output = await run_governed(
                self.governor,
                call.action,
                call.params,
                call.request_id,
                lambda: self.tool.ainvoke(self._input(args, kwargs, call), child),
            )
        except ActionNotCompleted as error:
            if not call.is_own(error):
                raise
            raise ToolException(verdict_text(error, call.action)) from error
        return call.answer(output)

    def _governed(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], config: RunnableConfig
    ) -> GovernedCall:
        tool_call_id = _tool_call_id.get()
        return GovernedCall(
            tool=self.name,
            tool_call_id=tool_call_id or "",
            action=self.action,
            params={"input": args[0]} if args else dict(kwargs),
            request_id=request_id_for(self.governor.key.agent_id, config, tool_call_id),
        )

    def _input(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], call: GovernedCall
    ) -> str | dict[str, Any] | ToolCall:
        """What the wrapped tool is invoked with: the same input, as a tool call when there
        is one (so the tool answers with its own message, artifact included)."""
        if args:
            return str(args[0])
        if call.tool_call_id:
            return ToolCall(
                name=self.tool.name, args=kwargs, id=call.tool_call_id, type="tool_call"
            )
        return kwargs


def _id_of(tool_input: object) -> str | None:
    if isinstance(tool_input, dict) and tool_input.get("type") == "tool_call":
        identifier = tool_input.get("id")
        return str(identifier) if identifier else None
    return None
