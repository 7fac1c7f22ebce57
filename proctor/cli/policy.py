"""`proctor policy check`: validate a policy directory before the worker loads it."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import click

from proctor.approvals.defaults import DefaultApprovers
from proctor.approvals.directory import ApproverDirectory
from proctor.cli.common import database, run_async, settings
from proctor.cli.shadow_report import parse_since, render, rule_reports
from proctor.models import AgentInfo, AgentStatus, PolicyQuery
from proctor.policy import PolicyEngine, PolicyError, load_policy_dir
from proctor.policy.backtest import PastRequest, changes
from proctor.policy.escalation import grant_summary
from proctor.policy.lint import nobody_approves, unknown_roles
from proctor.policy.loader import read_yaml_value
from proctor.policy.shadow import SHADOW_EVENT
from proctor.policy.testing import run_cases
from proctor.stores.agents import AgentStore
from proctor.stores.audit_log import AuditLog
from proctor.stores.shadow_decisions import shadow_counts


@click.group("policy")
def policy_group() -> None:
    """Work with policy files."""


@policy_group.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option(
    "--approvers",
    type=click.Path(path_type=Path),
    help="Approver directory for role: and default approvers (default PROCTOR_APPROVERS_FILE).",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
def check(directory: Path | None, approvers: Path | None, strict: bool) -> None:
    """Validate DIRECTORY (default PROCTOR_POLICY_DIR): one `file:line: error: field: message`
    or `file:line: warning: ...` line per finding. Errors stop the worker loading the set:
    exit 1. Warnings don't (rules a broader deny makes unreachable, rules of one effect in two
    files that overlap and what they merge to, roles no approver holds, escalations nobody can
    approve, limits not enforced): exit 1 on them only with --strict."""
    target, engine = _engine(directory)
    try:
        people = ApproverDirectory.load(approvers or settings().approvers_file)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(problem.at_level("error"), err=True)
        sys.exit(1)
    defaults = DefaultApprovers.from_settings(settings())
    warnings = sorted(
        [
            *engine.notes,
            *engine.findings,
            *engine.overlaps,
            *unknown_roles(engine.files, people.roles),
            *nobody_approves(engine.files, defaults.resolve(people), defaults.describe()),
        ],
        key=lambda problem: (problem.file, problem.line),
    )
    for warning in warnings:
        click.echo(warning.at_level("warning"), err=True)
    if strict and warnings:
        sys.exit(1)
    rules = sum(len(f.rules) for f in engine.files)
    counted = f" ({len(warnings)} warnings)" if warnings else ""
    click.echo(
        f"{target}: {len(engine.files)} files, {rules} rules, version {engine.version}: OK{counted}"
    )


def _engine(directory: Path | None) -> tuple[Path, PolicyEngine]:
    target = directory or settings().policy_dir
    try:
        return target, PolicyEngine(load_policy_dir(target))
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(problem.at_level("error"), err=True)
        sys.exit(1)


@policy_group.command("test")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def test(directory: Path | None) -> None:
    """Run the *.test.yaml cases in DIRECTORY against its policies; exit 1 on any failure."""
    target, engine = _engine(directory)
    try:
        results = run_cases(engine, target)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(problem.at_level("error"), err=True)
        sys.exit(1)
    failed = [r for r in results if not r.passed]
    for result in failed:
        click.echo(f"FAIL {result.file}:{result.line}: {result.case.name}")
        for difference in result.differences:
            click.echo(f"     {difference}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed or not results:
        sys.exit(1)


@policy_group.command("explain")
@click.argument("agent_id")
@click.argument("action")
@click.option("--role", default="agent", show_default=True)
@click.option("--owner", default="owner@example.com", show_default=True)
@click.option("--trust", type=click.FloatRange(0, 100), default=100.0, show_default=True)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter; VALUE is read as YAML (5, true, text, [1, 2]).",
)
@click.option("--dir", "directory", type=click.Path(path_type=Path))
def explain(
    agent_id: str,
    action: str,
    role: str,
    owner: str,
    trust: float,
    params: tuple[str, ...],
    directory: Path | None,
) -> None:
    """The decision for AGENT_ID doing ACTION, and why each rule did or did not match."""
    _, engine = _engine(directory)
    agent = AgentInfo(
        agent_id=agent_id,
        display_name=agent_id,
        role=role,
        owner=owner,
        trust_score=trust,
        status=AgentStatus.ACTIVE,
    )
    query = PolicyQuery(agent=agent, action=action, params=_params(params))
    result = engine.explain(query, at=datetime.now(UTC))
    decision = result.decision
    click.echo(
        f"{decision.effect.value.upper()} by {decision.rule_id}"
        f"{f' ({decision.policy_file})' if decision.policy_file else ''}: "
        f"{decision.reason}"
    )
    if decision.escalation:
        e = decision.escalation
        asked = ", ".join(e.approvers) or _default_approvers_now()
        click.echo(
            f"  approvers {asked}, quorum {e.quorum}, timeout "
            f"{e.timeout_seconds:g}s, on timeout {e.on_timeout}{grant_summary(e)}"
        )
    if len(result.contributing) > 1:
        click.echo(
            "  merged from " + ", ".join(f"{r.rule_id} ({r.file})" for r in result.contributing)
        )
    shadow = engine.shadow_decide(query, decision, at=datetime.now(UTC))
    if shadow is not None:
        verdict = "agrees" if shadow.agree else "disagrees"
        click.echo(
            f"  shadow: {shadow.shadow_effect.value.upper()} by {shadow.shadow_rule} "
            f"({verdict}; shadow rules applying: {', '.join(shadow.shadow_rules)})"
        )
    click.echo(
        f"policy version {decision.policy_version}; files applying: "
        f"{', '.join(result.files_applying) or 'none'}"
    )
    for considered in result.considered:
        mark = "✓" if considered.verdict.applies else "·"
        tried = " (shadow)" if considered.rule.shadow else ""
        click.echo(
            f"  {mark} {considered.rule.effect.value:8} {considered.rule.rule_id:40} "
            f"{considered.verdict.why}{tried}"
        )


def _default_approvers_now() -> str:
    """Who the default approvers are now (the worker resolves them when it decides)."""
    defaults = DefaultApprovers.from_settings(settings())
    try:
        people = ApproverDirectory.load(settings().approvers_file)
    except PolicyError as exc:
        return f"the default approvers (the directory does not load: {exc.problems[0]})"
    names = defaults.resolve(people)
    if not names:
        return f"nobody (the default approvers: {defaults.describe()}; it can only time out)"
    return f"{', '.join(names)} (the default approvers: {defaults.describe()})"


def _params(pairs: tuple[str, ...]) -> dict[str, object]:
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair[:80]!r}: use KEY=VALUE", param_hint="--param")
        try:
            params[key] = read_yaml_value(value, key) if value else ""
        except PolicyError as exc:
            problem = exc.problems[0]
            raise click.BadParameter(
                f"{key[:40]}=…: {problem.message}", param_hint="--param"
            ) from exc
    return params


@policy_group.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--last",
    type=click.IntRange(1, 1_000_000),
    default=10_000,
    show_default=True,
    help="How many of the most recent decisions to replay.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when any decision would change.")
@run_async
async def diff(old: Path, new: Path, last: int, exit_code: bool) -> None:
    """Which past requests (from the audit log) the policy set NEW decides unlike OLD."""
    _, before = _engine(old)
    _, after = _engine(new)
    async with database() as pool:
        requests = await past_requests(pool, last)
    found = changes(before, after, requests)
    for change in found:
        click.echo(str(change))
    click.echo(
        f"{len(found)} of {len(requests)} past requests change effect "
        f"({before.version} -> {after.version})"
    )
    if exit_code and found:
        sys.exit(1)


async def past_requests(pool: asyncpg.Pool, last: int) -> list[PastRequest]:
    """Requests as they were decided (params, and the agent as it is now)."""
    agents: dict[str, AgentInfo | None] = {}
    store = AgentStore(pool)
    requests = []
    for row in await AuditLog(pool).recent_of_type("decided", last):
        if row.agent_id is None or row.action is None:
            continue
        if row.agent_id not in agents:
            record = await store.get(row.agent_id)
            agents[row.agent_id] = record.info if record else None
        agent = agents[row.agent_id]
        if agent is None:
            continue
        payload = json.loads(row.payload)
        trust = payload.get("trust_score", agent.trust_score)
        requests.append(
            PastRequest(
                PolicyQuery(
                    agent=agent.model_copy(update={"trust_score": trust}),
                    action=row.action,
                    params=payload.get("params", {}),
                ),
                at=row.recorded_at,
            )
        )
    return requests


@policy_group.command("shadow-report")
@click.option("--since", help="A duration back from now (24h, 7d) or a timestamp (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@run_async
async def shadow_report(since: str | None, as_json: bool) -> None:
    """Per shadow rule (mode: shadow), how often its decision agreed with the enforced one,
    and where not, which effects differed (enforced -> shadow), from the audit log."""
    start = parse_since(since, datetime.now(UTC))
    async with database() as pool:
        reports = rule_reports(await shadow_counts(pool, SHADOW_EVENT, start))
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
        return
    for line in render(reports, start):
        click.echo(line)
