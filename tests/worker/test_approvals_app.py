"""Why a request is refused as not Slack's: the verdict is slack-sdk's verifier."""

from __future__ import annotations

import time

from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack_web_api import SIGNING_SECRET, sign
from worker.approvals_app import interaction_key, refusal_reason

VERIFIER = SignatureVerifier(SIGNING_SECRET)
BODY = b"payload=%7B%7D"


def test_a_request_signed_like_slack_passes() -> None:
    now = str(int(time.time()))
    assert refusal_reason(VERIFIER, BODY, now, sign(BODY, now)) is None


def test_each_kind_of_bad_request_is_named() -> None:
    now = str(int(time.time()))
    old = str(int(time.time()) - 301)
    assert refusal_reason(VERIFIER, BODY, None, None) == "missing signature or timestamp"
    assert refusal_reason(VERIFIER, BODY, now, "") == "missing signature or timestamp"
    assert refusal_reason(VERIFIER, BODY, "12abc", sign(BODY, "12abc")) == (
        "non-numeric timestamp")
    assert refusal_reason(VERIFIER, BODY, old, sign(BODY, old)) == (
        "timestamp older than 5 minutes")
    assert refusal_reason(VERIFIER, BODY + b"x", now, sign(BODY, now)) == "bad signature"
    assert refusal_reason(VERIFIER, BODY, now, sign(BODY, now, "another-secret")) == (
        "bad signature")


def test_interactions_are_keyed_by_trigger_id_else_by_content() -> None:
    assert interaction_key({"type": "block_actions", "trigger_id": "1.2.3"}) == (
        "block_actions:1.2.3")
    assert interaction_key({"type": "x", "a": 1}) == interaction_key({"a": 1, "type": "x"})
    assert interaction_key({"type": "x", "a": 1}) != interaction_key({"type": "x", "a": 2})
