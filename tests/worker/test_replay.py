"""proctor_server.worker.replay finds where a history and today's code part ways."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory

from proctor_server.worker.replay import replay_all, replay_one

HISTORIES = Path(__file__).parents[1] / "histories"
WORKFLOW_IDS: dict[str, str] = json.loads((HISTORIES / "workflow_ids.json").read_text())
"""Fixtures replay under their recorded workflow ids (votes and asks are bound to them)."""


def edited(name: str, change: Any) -> WorkflowHistory:
    data = json.loads((HISTORIES / f"{name}.json").read_text())
    change(data["events"])
    return WorkflowHistory.from_json(WORKFLOW_IDS[name], json.dumps(data))


def rename_activity(index: int, new: str) -> Any:
    def change(events: list[dict[str, Any]]) -> None:
        scheduled = [e for e in events if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"]
        scheduled[index]["activityTaskScheduledEventAttributes"]["activityType"]["name"] = new

    return change


async def test_recorded_histories_replay_clean() -> None:
    histories = [
        WorkflowHistory.from_json(WORKFLOW_IDS[p.stem], p.read_text())
        for p in sorted(HISTORIES.glob("*.json"))
        if p.stem in WORKFLOW_IDS
    ]
    assert len(histories) == len(WORKFLOW_IDS)
    reports = [r async for r in replay_all(histories)]
    assert len(reports) == len(histories) and all(r.deterministic for r in reports)


@pytest.mark.parametrize("index, expected_event", [(0, 6), (2, 28), (-1, 37)])
async def test_divergence_is_located_at_the_changed_event(index: int, expected_event: int) -> None:
    report = await replay_one(edited("slack_approved", rename_activity(index, "proctor.old")))
    assert not report.deterministic
    assert report.error is not None and report.error.startswith("non-determinism: ")
    assert report.event_id == expected_event
    assert report.event is not None and "proctor.old" in report.event


async def test_a_patch_the_code_no_longer_knows_is_located() -> None:
    """As if a patch had been removed while workflows recorded with it still ran: the
    history's first local-activity marker turned into a patch marker the code never asks
    for."""

    def other_patch(events: list[dict[str, Any]]) -> None:
        marker = next(e for e in events if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED")
        marker["markerRecordedEventAttributes"] = {
            "markerName": "core_patch",
            "details": {
                "patch-data": {
                    "payloads": [
                        {
                            "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                            "data": base64.b64encode(
                                b'{"id":"renamed","deprecated":false}'
                            ).decode(),
                        }
                    ]
                }
            },
        }

    report = await replay_one(edited("rate_limited", other_patch))
    assert not report.deterministic
    assert report.event == "event 12 MARKER_RECORDED: code version marker: patched 'renamed'"
