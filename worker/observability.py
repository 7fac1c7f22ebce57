"""What a Proctor process exposes to ops: a Prometheus endpoint, the Temporal SDK's metrics,
the pending-approvals gauge, and JSON logs that carry the workflow and request ids."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from temporalio import activity
from temporalio import workflow as temporal_workflow
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError

from proctor.contract import GOVERNED_ACTION_WORKFLOW, STATUS_ATTRIBUTE
from proctor.metrics import APPROVALS_PENDING, exposition
from proctor.models import Stage
from proctor.settings import ProctorSettings

log = logging.getLogger(__name__)

PENDING_QUERY = (
    f'WorkflowType = "{GOVERNED_ACTION_WORKFLOW}" AND ExecutionStatus = "Running"'
    f' AND {STATUS_ATTRIBUTE.name} = "{Stage.AWAITING_APPROVAL.value}"'
)
ACTION_PREFIX = "action-"


class TemporalContext(logging.Filter):
    """Adds `workflow_id`, `run_id`, `request_id` and `activity` to every record made where
    they are known: Temporal's workflow/activity loggers attach them, and any log line made
    inside an activity (our own module loggers too) gets them from the activity's info."""

    def filter(self, record: logging.LogRecord) -> bool:
        context: dict[str, Any] = {}
        for key in ("temporal_workflow", "temporal_activity"):
            value = getattr(record, key, None)
            if isinstance(value, dict):
                context.update(value)
        if not context and activity.in_activity():
            info = activity.info()
            context = {
                "workflow_id": info.workflow_id,
                "run_id": info.workflow_run_id,
                "activity_type": info.activity_type,
            }
        workflow_id = context.get("workflow_id")
        if workflow_id:
            record.workflow_id = workflow_id
            record.run_id = context.get("run_id") or context.get("workflow_run_id")
            if str(workflow_id).startswith(ACTION_PREFIX):
                record.request_id = str(workflow_id)[len(ACTION_PREFIX) :]
        if context.get("activity_type"):
            record.activity = context["activity_type"]
        return True


def configure_logging(settings: ProctorSettings) -> None:
    """One handler on stderr: plain text, or one JSON object per line for log pipelines.

    On the root logger: every module logs under its own name (`proctor.*`, `worker.*`,
    `activities.*`), the Temporal SDK under its own, and all of them reach this handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TemporalContext())
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                timestamp="time",
                rename_fields={"levelname": "level", "name": "logger"},
                reserved_attrs=[
                    *RESERVED_ATTRS,
                    "taskName",
                    "temporal_workflow",
                    "temporal_activity",
                ],
            )
        )
        # The ids become fields of their own instead of a dict appended to each message.
        activity.logger.activity_info_on_message = False
        temporal_workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)


def temporal_runtime(settings: ProctorSettings) -> Runtime | None:
    """A runtime exporting the Temporal SDK's metrics, when a port is configured."""
    if settings.sdk_metrics_port is None:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{settings.metrics_host}:{settings.sdk_metrics_port}",
                durations_as_seconds=True,
            )
        )
    )


async def metrics_endpoint(_: web.Request) -> web.Response:
    body, content_type = exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


@asynccontextmanager
async def web_served(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve an aiohttp app until the block exits; yields the bound port (for port 0)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or ()
    try:
        yield next((int(s.getsockname()[1]) for s in sockets), port)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def metrics_served(settings: ProctorSettings) -> AsyncIterator[str | None]:
    """Proctor's /metrics on PROCTOR_METRICS_PORT (nothing when unset); yields its URL."""
    if settings.metrics_port is None:
        yield None
        return
    app = web.Application()
    app.router.add_get("/metrics", metrics_endpoint)
    async with web_served(app, settings.metrics_host, settings.metrics_port) as port:
        url = f"http://{settings.metrics_host}:{port}/metrics"
        log.info("metrics at %s", url)
        yield url


async def count_pending_approvals(client: Client, every_seconds: float = 15.0) -> None:
    """Keep the pending-approvals gauge current from Temporal visibility (all workers agree:
    it counts the cluster, not this process)."""
    while True:
        try:
            counted = await client.count_workflows(PENDING_QUERY)
            APPROVALS_PENDING.set(counted.count)
        except RPCError as exc:
            log.warning("could not count pending approvals: %s", exc.message)
        await asyncio.sleep(every_seconds)
