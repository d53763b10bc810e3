"""GraphiQL (dev mode) is served from the package's own files: no external URL, every asset
answered by the server itself, a CSP that allows only this origin, and a login form."""

from __future__ import annotations

import re

import httpx

from api.graphiql import ASSETS, STATIC_DIR
from api.settings import Settings
from tests.ops.test_observability import served

REFERENCE = re.compile(r"""(?:src|href)="([^"]+)\"""")


async def test_graphiql_page_loads_only_its_own_files(settings: Settings, engine: object) -> None:
    async with served(settings, env="dev") as (_, http):
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "://" not in html and "//cdn" not in html  # no absolute or protocol-relative URL
        references = REFERENCE.findall(html)
        assert {ref.rsplit("/", 1)[1] for ref in references} == set(ASSETS)
        for ref in references:
            assert ref.startswith("/graphiql/static/"), ref
            asset = await http.get(ref)
            assert asset.status_code == 200, ref
            assert asset.content == (STATIC_DIR / ref.rsplit("/", 1)[1]).read_bytes()
            kind = "text/css" if ref.endswith(".css") else "javascript"
            assert kind in asset.headers["content-type"], ref
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "http" not in csp
        # the login form posts to the token endpoint from the page's script, not natively
        assert 'id="dossier-login-form"' in html and 'type="password"' in html
        script = (await http.get("/graphiql/static/dossier-graphiql.js")).text
        assert '"/auth/token"' in script and "Authorization" in script


def test_vendored_bundles_keep_their_licences_and_fetch_nothing_from_outside() -> None:
    for name in ("react.production.min.js", "react-dom.production.min.js"):
        assert "@license React" in (STATIC_DIR / name).read_text()[:400]
    for licence in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"):
        assert "MIT License" in (STATIC_DIR / licence).read_text()
    css = (STATIC_DIR / "graphiql.min.css").read_text()
    assert "@import" not in css
    assert all(url.startswith("data:") for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css))


async def test_no_graphiql_files_outside_dev(settings: Settings, engine: object) -> None:
    async with served(settings, env="test") as (_, http):
        response = await http.get("/graphiql/static/graphiql.min.js")
    assert response.status_code == 404
    assert isinstance(response, httpx.Response)
