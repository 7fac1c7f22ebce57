"""How results read in a timeline: a model that no longer fits, an encrypted payload, a tool's
result or an activity nobody taught the timeline is told, never a failure."""

from __future__ import annotations

from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from proctor.codec import EncryptionCodec
from proctor.contract import NOTIFY_APPROVERS, REMIND_APPROVERS, tool_activity
from proctor.history.results import decode, duration, outcome_text, result_texts
from proctor.models import NotifyResult
from proctor.payload_keys import KeyRing

CONVERTER = pydantic_data_converter.payload_converter


def payloads(value: object) -> Payloads:
    return Payloads(payloads=CONVERTER.to_payloads([value]))


def test_durations_read_as_people_say_them() -> None:
    assert [duration(s) for s in (30, 90, 5400, 86400, 129600)] == [
        "30s",
        "1.5min",
        "1.5h",
        "1d",
        "1.5d",
    ]


def test_durations_no_single_unit_says_are_spelled_out() -> None:
    # 25 hours once read "1.04167d": a day count only when it is whole or half.
    assert [duration(s) for s in (90000, 3700, 100000, 59.6)] == [
        "25h",
        "1h 1min 40s",
        "1d 3h 46min 40s",
        "1min",
    ]


def test_a_result_that_no_longer_fits_its_model_is_plain_json() -> None:
    assert decode(payloads({"renamed": 1}), NotifyResult) == {"renamed": 1}
    assert decode(None) is None
    assert decode(Payloads()) is None


def test_an_encrypted_result_names_its_key() -> None:
    codec = EncryptionCodec(KeyRing.in_memory())
    sealed = Payloads(payloads=codec.encode_sync(CONVERTER.to_payloads([{"secret": 1}])))
    assert decode(sealed, NotifyResult) == f"(encrypted under key {codec.ring.current})"


def test_each_activity_is_told_in_its_own_words() -> None:
    skipped = payloads(NotifyResult(skipped="Slack is not configured"))
    assert result_texts(NOTIFY_APPROVERS, skipped) == [
        "approvers notified: skipped (Slack is not configured)"
    ]
    assert result_texts(REMIND_APPROVERS, skipped) == [
        "reminder sent: skipped (Slack is not configured)"
    ]
    assert result_texts(tool_activity("refund"), payloads({"id": 7})) == [
        "durable tool refund returned {'id': 7}"
    ]
    assert result_texts("someone.elses_activity", payloads([1])) == [
        "someone.elses_activity returned [1]"
    ]


def test_a_runs_outcome_reads_with_its_rule_and_error() -> None:
    outcome = {
        "status": "failed",
        "decision": {"rule_id": "r1", "policy_version": "v1"},
        "error": "handler raised",
    }
    assert outcome_text(outcome) == "outcome FAILED (rule r1, policy v1): handler raised"
    assert outcome_text({"status": "denied"}) == "outcome DENIED"
    assert outcome_text(["not", "an", "outcome"]) == "completed: ['not', 'an', 'outcome']"
