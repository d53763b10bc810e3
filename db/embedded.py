"""A real PostgreSQL started from the `pgserver` wheel, for machines without a server.

pgserver listens on a Unix socket only; the URL it returns carries the socket directory as
`?host=…`, which asyncpg understands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded(data_dir: Path, *, database: str = "dossier", keep_running: bool = True) -> str:
    """Start (or reuse) the embedded server in `data_dir` and return a URL for `database`."""
    import pgserver  # imported late: it registers atexit handlers and checks a lock on import

    data_dir.mkdir(parents=True, exist_ok=True)
    server: Any = pgserver.get_server(data_dir, cleanup_mode=None if keep_running else "stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    uri: str = server.get_uri(database)
    return uri
