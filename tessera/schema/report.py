"""`extensions.tessera`: what a client should know about how its answer was made.

    "extensions": {"tessera": {
        "stale": [{"path": ["order", "user"], "service": "users", "age_s": 12.5}],
        "backends": {"orders": "ok", "users": "timeout"}}}

`stale` is always there when something was served from the stale store;
`backends` (the completeness report) when `server.completeness_report` is on.
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from ..context import Context


class TesseraReport(SchemaExtension):
    def __init__(self, completeness: bool) -> None:
        self.completeness = completeness

    def get_results(self) -> dict[str, Any]:
        return report_results(self.execution_context.context, self.completeness)


def report_results(context: Any, completeness: bool) -> dict[str, Any]:
    if not isinstance(context, Context):
        return {}
    report = context.scope.report
    out: dict[str, Any] = {}
    if report.stale:
        out["stale"] = report.stale
    if completeness:
        out["backends"] = dict(report.backends)
    return {"tessera": out} if out else {}
