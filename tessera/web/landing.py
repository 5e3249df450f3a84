"""The landing page at `/`: what this gateway is, where things are, how backends are.

Plain HTML with inline CSS, no external assets, readable on a phone. Rendered
per request from live state (the backends' circuits and last calls).
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 52rem;
       padding: 1rem; line-height: 1.45; color: #1d1d1f; }
h1 { margin-bottom: .2rem; } .lede { margin-top: 0; color: #555; }
table { border-collapse: collapse; width: 100%; } .scroll { overflow-x: auto; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; }
code { background: #f3f3f3; padding: 0 .25rem; border-radius: 3px; }
.up { color: #137333; } .failing, .circuit-open { color: #b3261e; font-weight: 600; }
.idle { color: #777; } li { margin: .25rem 0; }
"""


def _state(state: str) -> str:
    return f'<span class="{escape(state.replace(" ", "-"))}">{escape(state)}</span>'


def _row(name: str, info: dict[str, Any]) -> str:
    recent = info["recent"]
    latency = "–" if recent["p50_ms"] is None else f"{recent['p50_ms']:.1f} ms"
    calls = f"{recent['calls']} ({recent['failed']} failed)"
    return (f"<tr><td>{escape(name)}</td><td>{_state(str(info['state']))}</td>"
            f"<td>{escape(str(info['circuit']))}</td><td>{latency}</td><td>{calls}</td>"
            f"<td>{escape(str(info['mode']))}</td></tr>")


def render(*, backends: dict[str, dict[str, Any]], routes: list[str], graphiql: bool,
           metrics: bool, profile: str) -> str:
    links = []
    if graphiql:
        links.append('<li><a href="/graphql">GraphiQL</a>: write and run queries '
                     "against the schema, with its docs</li>")
    links.append("<li><code>POST /graphql</code>: the GraphQL endpoint "
                 "(application/json or application/graphql-response+json)</li>")
    if metrics:
        links.append('<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>')
    links.append('<li><a href="/healthz">/healthz</a>: the process answers</li>')
    links.append('<li><a href="/readyz">/readyz</a>: ready to serve, with each '
                 "backend's state (JSON)</li>")
    route_items = "".join(f"<li><code>GET {escape(r)}</code></li>" for r in routes) \
        or "<li>none configured</li>"
    rows = "".join(_row(name, info) for name, info in backends.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera</title><link rel="icon" href="data:,"><style>{_STYLE}</style></head>
<body>
<h1>Tessera</h1>
<p class="lede">A GraphQL composition gateway: one query in, the calls to the services
that own the data batched and run concurrently, one answer out. When a service is slow
or down, you still get everything that could be had, with an error for each missing
piece. Profile: <strong>{escape(profile)}</strong>.</p>
<h2>Endpoints</h2><ul>{"".join(links)}</ul>
<h2>REST aggregation routes</h2>
<p>Each answers one JSON document composed from several services
(<code>*</code> is a path segment of yours).</p><ul>{route_items}</ul>
<h2>Backends</h2>
<div class="scroll"><table>
<thead><tr><th>service</th><th>state</th><th>circuit</th><th>recent p50</th>
<th>last calls</th><th>reached</th></tr></thead>
<tbody>{rows}</tbody></table></div>
<p>State is <em>up</em> when the last call was answered, <em>failing</em> when it
failed, <em>circuit open</em> while Tessera stops calling it, <em>idle</em> before any
call. Latency is the median of the last 100 calls.</p>
</body></html>"""


def endpoint(routes: list[str], *, graphiql: bool, metrics: bool, profile: str) -> Any:
    async def landing(request: Request) -> HTMLResponse:
        page = render(backends=request.state.backends.status(), routes=routes,
                      graphiql=graphiql, metrics=metrics, profile=profile)
        return HTMLResponse(page, headers={"cache-control": "no-store"})
    return landing
