"""A real PostgreSQL started from the `pgserver` wheel, for machines without a server.

pgserver listens on a Unix socket only; the URL it returns carries the socket directory as
`?host=…`, which asyncpg understands.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _forget_dead_users(data_dir: Path) -> None:
    """Drop processes that died without saying so from pgserver's list of users.

    pgserver stops the server when its last user exits and counts users in this file; a user
    killed with SIGKILL stays listed for ever, and the server would then never be stopped.
    """
    handles = data_dir / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError):
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if _is_alive(int(pid))]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_embedded(data_dir: Path, *, database: str = "dossier", keep_running: bool = True) -> str:
    """Start (or reuse) the embedded server in `data_dir` and return a URL for `database`."""
    import pgserver  # imported late: it registers atexit handlers and checks a lock on import

    if not DATABASE_NAME.match(database):
        raise ValueError(f"not a plain database name: {database!r}")
    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(data_dir)
    server: Any = pgserver.get_server(data_dir, cleanup_mode=None if keep_running else "stop")
    # the name is checked above: quoting it is enough, and psql takes no bind parameters
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    uri: str = server.get_uri(database)
    return uri
