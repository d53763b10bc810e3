"""The peer: PostGraphile 4.14, installed from npm into bench/.peer/ (ignored by git) on demand.

PostGraphile compiles each GraphQL query into one SQL statement with `json_agg`; it is the
reference issue 10 measures against. It is not a dependency of Dossier, never runs in CI, and is
skipped with a message when node or npm is missing or the install fails. Version 4 because
PostGraphile 5 needs Node 22 and this machine has Node 20.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PEER_DIR = Path(__file__).resolve().parent / ".peer"
VERSION = "4.14"
CLI = PEER_DIR / "node_modules" / "postgraphile" / "cli.js"


class PeerUnavailableError(RuntimeError):
    """PostGraphile cannot run here; the message says why, the bench goes on without it."""


def ensure_postgraphile() -> Path:
    """The PostGraphile CLI script, installing it with npm first if needed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PeerUnavailableError("node and npm are needed for the PostGraphile peer")
    if CLI.exists():
        return CLI
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    try:
        # fixed arguments: a pinned package from the npm registry into our own folder
        completed = subprocess.run(  # noqa: S603
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(PEER_DIR),
             f"postgraphile@{VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise PeerUnavailableError("npm install postgraphile timed out") from error
    if completed.returncode != 0 or not CLI.exists():
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise PeerUnavailableError("npm install postgraphile failed: " + " | ".join(tail))
    return CLI


def postgraphile_command(cli: Path, database_url: str, port: int, pool_size: int) -> list[str]:
    node = shutil.which("node")
    assert node is not None  # checked by ensure_postgraphile
    return [
        node,
        str(cli),
        "--connection",
        database_url,
        "--schema",
        "public",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-default-mutations",
        "--simple-collections",
        "both",
        "--disable-query-log",
        "--max-pool-size",
        str(pool_size),
    ]
