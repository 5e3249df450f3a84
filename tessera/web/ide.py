"""GraphiQL at /graphql (a browser's GET) and its files at /graphiql/, same origin.

The page is ours (tessera/web/graphiql.html: opens on the order-page query);
the files are the pinned npm builds fetched by `tessera.web.assets`. When they
are missing, the page says how to fetch them instead of loading a blank screen.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from . import assets

_PAGE = Path(__file__).with_name("graphiql.html")

MISSING = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Tessera · GraphiQL</title></head><body style="font-family: sans-serif; margin: 2rem">
<h1>GraphiQL's files are not installed</h1>
<p>This gateway serves GraphiQL from its own origin, and its files are not here yet.
Run <code>make install</code> (or <code>python -m tessera.web.assets</code>) where the npm
registry is reachable, then reload. The GraphQL endpoint itself works: POST to
<code>/graphql</code>.</p></body></html>"""


def page() -> HTMLResponse:
    if not assets.installed():
        return HTMLResponse(MISSING, status_code=503)
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"),
                        headers={"cache-control": "no-cache"})


def files() -> Mount:
    # Never created here: the installed package may be read-only (a non-root
    # container); when the files are missing the page above says how to fetch them.
    return Mount("/graphiql", StaticFiles(directory=assets.STATIC, check_dir=False),
                 name="graphiql")
