"""GraphiQL in dev mode, served from the package's own files: no CDN, so it works on a private
network. `static/graphiql/` holds GraphiQL 3.8.3 and React/ReactDOM 18.3.1 (their UMD builds
from the npm registry, MIT licensed, licences beside them) and the page's own script, which
logs in through `POST /auth/token` (or takes a pasted token) and sends it as
`Authorization: Bearer …` with every request.

To update the bundles: `npm pack graphiql@3 react@18 react-dom@18` in a temporary directory,
then copy `graphiql.min.js`, `graphiql.min.css`, `umd/react.production.min.js`,
`umd/react-dom.production.min.js` and the LICENSE files here.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static" / "graphiql"
STATIC_PATH = "/graphiql/static"
ASSETS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
    "dossier-graphiql.js",
    "dossier-graphiql.css",
)
# what the page needs and nothing more: its own scripts, GraphiQL's injected styles, the fonts
# GraphiQL embeds as data: URLs, and requests to this origin
GRAPHIQL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dossier · GraphiQL</title>
<link rel="stylesheet" href="{static}/graphiql.min.css">
<link rel="stylesheet" href="{static}/dossier-graphiql.css">
</head>
<body>
<section id="dossier-login">
  <h1>Dossier GraphiQL</h1>
  <form id="dossier-login-form">
    <label for="dossier-username">Username</label>
    <input id="dossier-username" name="username" autocomplete="username" required>
    <label for="dossier-password">Password</label>
    <input id="dossier-password" name="password" type="password"
           autocomplete="current-password" required>
    <button type="submit">Log in</button>
  </form>
  <p id="dossier-message" role="alert"></p>
  <hr>
  <form id="dossier-token-form">
    <label for="dossier-token">…or paste an access or partner token</label>
    <input id="dossier-token" name="token" autocomplete="off" spellcheck="false">
    <button type="submit">Use token</button>
  </form>
</section>
<div id="dossier-bar" hidden>
  <span id="dossier-who"></span><button id="dossier-logout" type="button">Log out</button>
</div>
<div id="graphiql"></div>
<script src="{static}/react.production.min.js"></script>
<script src="{static}/react-dom.production.min.js"></script>
<script src="{static}/graphiql.min.js"></script>
<script src="{static}/dossier-graphiql.js"></script>
</body>
</html>
"""


def graphiql_html() -> str:
    return _PAGE.format(static=STATIC_PATH)


def static_mount() -> Mount:
    return Mount(STATIC_PATH, app=StaticFiles(directory=STATIC_DIR), name="graphiql-static")
