"""Compliance reports over a period: what happened, who decided, and whether the record holds.

Figures come from the ledger's aggregates (`proctor.stores.audit_figures`); each section says
which controls of the chosen framework it evidences, so an auditor can file it against their
checklist.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from proctor.audit.verify import LedgerReport
from proctor.stores.audit_figures import AgentLine, ApproverLine, TrustLine, period_figures
from proctor.stores.connection import Queryable, database_now

Template = Literal["soc2", "gdpr", "hipaa"]

CONTROLS: dict[Template, dict[str, str]] = {
    "soc2": {
        "decisions": "CC6.1 logical access is restricted by policy, evaluated outside the agent",
        "approvals": "CC6.3 authorisation with separation of duties (no self-approval, quorum)",
        "violations": "CC7.2 monitoring detects anomalous or unauthorised activity",
        "trust": "CC7.3 security events are evaluated and acted on (trust, suspension)",
        "integrity": "CC7.2 / PI1.4 the activity record is complete and tamper-evident",
    },
    "gdpr": {
        "decisions": "Art. 30 records of processing activities carried out by agents",
        "approvals": "Art. 22 human involvement in decisions with significant effects",
        "violations": "Art. 33 detection of incidents that may need notification",
        "trust": "Art. 32(1)(d) regular testing and evaluation of safeguards",
        "integrity": "Art. 5(1)(f) integrity; Art. 17 erasure by key destruction; "
        "Art. 25 minimisation by redaction before storage",
    },
    "hipaa": {
        "decisions": "§164.312(a)(1) access control over actions on ePHI",
        "approvals": "§164.308(a)(4) information access management (authorised approvers)",
        "violations": "§164.308(a)(1)(ii)(D) information system activity review",
        "trust": "§164.308(a)(6) security incident procedures",
        "integrity": "§164.312(b) audit controls; §164.312(c)(1) integrity; "
        "§164.316(b)(2) six-year retention",
    },
}


class Integrity(BaseModel):
    intact: bool
    rows_checked: int
    checkpoints_matched: int
    external_checkpoints: int
    first_problem: str | None


class ComplianceReport(BaseModel):
    template: Template
    period_from: datetime
    period_to: datetime
    generated_at: datetime
    totals: dict[str, int]
    median_seconds_to_decision: float | None
    approvers: list[ApproverLine]
    violations: list[AgentLine]
    trust: list[TrustLine]
    integrity: Integrity
    controls: dict[str, str]


async def build_report(
    db: Queryable, template: Template, start: datetime, end: datetime, integrity: LedgerReport
) -> ComplianceReport:
    """The period's figures, the ledger's integrity and the controls they evidence."""
    figures = await period_figures(db, start, end)
    median = figures.seconds_to_decision
    first = integrity.first_finding
    return ComplianceReport(
        template=template,
        period_from=start,
        period_to=end,
        generated_at=await database_now(db),
        totals=figures.totals,
        median_seconds_to_decision=None if median is None else round(median, 3),
        approvers=figures.approvers,
        violations=figures.violations,
        trust=figures.trust,
        integrity=Integrity(
            intact=integrity.intact,
            rows_checked=integrity.rows_checked,
            checkpoints_matched=integrity.checkpoints_checked,
            external_checkpoints=integrity.external_checkpoints,
            first_problem=None if first is None else str(first),
        ),
        controls=CONTROLS[template],
    )


def _sections(report: ComplianceReport) -> list[tuple[str, str, list[str], list[list[Any]]]]:
    """(title, control evidenced, header, rows) for each section, format-independent."""
    median = report.median_seconds_to_decision
    return [
        (
            "Decisions",
            report.controls["decisions"],
            ["measure", "count"],
            [[k.replace("_", " "), v] for k, v in report.totals.items()]
            + [["median time to decision (s)", "-" if median is None else median]],
        ),
        (
            "Approvals by approver",
            report.controls["approvals"],
            ["approver", "approved", "denied", "refused votes"],
            [[a.approver, a.approved, a.denied, a.refused_votes] for a in report.approvers],
        ),
        (
            "Violations by agent",
            report.controls["violations"],
            ["agent", "denied", "identity refused", "failed"],
            [[v.agent_id, v.denied, v.identity_refused, v.failed] for v in report.violations],
        ),
        (
            "Trust changes",
            report.controls["trust"],
            ["agent", "changes", "net delta", "last score", "suspended"],
            [[t.agent_id, t.changes, t.net_delta, t.last_score, t.suspended] for t in report.trust],
        ),
        (
            "Ledger integrity",
            report.controls["integrity"],
            ["check", "result"],
            [
                ["chain and checkpoints", "intact" if report.integrity.intact else "TAMPERED"],
                ["rows verified", report.integrity.rows_checked],
                ["signed checkpoints matched", report.integrity.checkpoints_matched],
                ["external checkpoints", report.integrity.external_checkpoints],
                ["first problem", report.integrity.first_problem or "none"],
            ],
        ),
    ]


def render_markdown(report: ComplianceReport) -> str:
    lines = [
        f"# Proctor audit report ({report.template.upper()})",
        "",
        f"Period {report.period_from.isoformat()} to {report.period_to.isoformat()}; "
        f"generated {report.generated_at.isoformat()}.",
        "",
    ]
    for title, control, header, rows in _sections(report):
        lines += [
            f"## {title}",
            "",
            f"*Evidences: {control}*",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        lines += [
            "| " + " | ".join(_cell(c).replace("|", "\\|") for c in row) + " |" for row in rows
        ] or []
        if not rows:
            lines.append("| " + " | ".join(["none"] + [""] * (len(header) - 1)) + " |")
        lines.append("")
    return "\n".join(lines)


def render_html(report: ComplianceReport) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Proctor audit report ({report.template.upper()})</title></head><body>",
        f"<h1>Proctor audit report ({report.template.upper()})</h1>",
        f"<p>Period {html.escape(report.period_from.isoformat())} to "
        f"{html.escape(report.period_to.isoformat())}.</p>",
    ]
    for title, control, header, rows in _sections(report):
        parts.append(
            f"<h2>{html.escape(title)}</h2><p><em>Evidences: "
            f"{html.escape(control)}</em></p><table border='1'><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in header)
            + "</tr>"
        )
        parts += [
            "<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>"
            for row in rows
        ]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_json(report: ComplianceReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)
