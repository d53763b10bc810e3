"""The per-request loaders a `RequestContext` hands to the schema's field resolvers.

`resolvers.context` sits below them (they read through it), so it holds only their names;
`install` gives it the factories and is called by the schema's root before any request.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from resolvers.consents import consents_of
from resolvers.context import RequestContext, install_loaders
from resolvers.mutations.quality import QualityLoader
from resolvers.reader import RecordReader
from resolvers.workflow.history import HistoryLoader


def install() -> None:
    """Register the loaders; idempotent (every built schema calls it)."""

    def consents(context: RequestContext) -> partial[Any]:
        return partial(consents_of, context)

    install_loaders(
        reader=RecordReader, quality=QualityLoader, workflow=HistoryLoader, consents=consents
    )
