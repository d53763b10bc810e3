"""The HTTP side of bulk transfer: export downloads, and uploads for the GraphQL endpoint.

GET /exports/{token} is the one download of a finished export, for the principal who made it.
The token is a bearer secret in the URL, so it alone is not enough: the request must also carry
the same principal's `Authorization: Bearer` token. An unknown, used, expired or someone
else's token all answer 404 alike, so a guesser learns nothing. The file lives in the shared
store (any host serves any download) and is deleted once sent.

`upload_payload` reads a GraphQL multipart request (github.com/jaydenseric/graphql-multipart-
request-spec) for `POST /graphql`: it needs the `X-Dossier-Upload: 1` header, which a browser
form cannot send without a CORS preflight (so no cross-site upload), and stops reading at the
bulk upload limit instead of spooling whatever arrives.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive
from strawberry.file_uploads.utils import replace_placeholders_with_files

from api.auth.backend import authenticate
from api.auth.errors import AuthenticationError, unauthorized_response
from api.state import AppState
from bulk.downloads import ClaimedFile, claim_download
from bulk.runtime import BulkRuntime
from bulk.store import delete_files, file_exists, stream_file

TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
CHUNK = 256 * 1024
NO_STORE = {"Cache-Control": "no-store"}
UPLOAD_HEADER = "x-dossier-upload"
MAX_UPLOAD_FILES = 1


def bulk_runtime(state: AppState) -> BulkRuntime:
    """The process's bulk runtime, built on first use from the app state."""
    runtime = state.extras.get("bulk")
    if runtime is None:
        settings = state.settings
        runtime = BulkRuntime(
            settings=settings.bulk,
            directory=settings.bulk.directory_under(settings.data_dir),
            sessions=state.sessions,
            cipher=settings.field_cipher,
        )
        state.extras["bulk"] = runtime
    assert isinstance(runtime, BulkRuntime)
    return runtime


def _not_found() -> Response:
    body = {"errors": [{"message": "No such download", "extensions": {"code": "NOT_FOUND"}}]}
    return JSONResponse(body, status_code=404, headers=NO_STORE)


async def download_export(request: Request) -> Response:
    state: AppState = request.app.state.dossier
    try:
        principal = await authenticate(request)
    except AuthenticationError as error:
        return unauthorized_response(error)
    token = request.path_params["token"]
    if not TOKEN.match(token):
        return _not_found()
    async with state.sessions() as session, session.begin():
        claimed = await claim_download(session, token, principal.subject)
        objects = bulk_runtime(state).objects
        found = claimed is not None and await file_exists(
            session, claimed.storage, claimed.key, objects
        )
    if claimed is None or not found:
        return _not_found()
    headers = {
        **NO_STORE,
        "Content-Disposition": f'attachment; filename="{claimed.file_name}"',
        "X-Content-SHA256": claimed.sha256,
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(
        stream_file(state.sessions, claimed.storage, claimed.key, objects),
        media_type=claimed.content_type,
        headers=headers,
        background=BackgroundTask(_forget, state, claimed),
    )


async def _forget(state: AppState, claimed: ClaimedFile) -> None:
    """Delete a file once sent: it was downloaded its one time."""
    async with state.sessions() as session, session.begin():
        await delete_files(session, [(claimed.storage, claimed.key)], bulk_runtime(state).objects)


routes = [Route("/exports/{token}", download_export, methods=["GET"])]


class UploadRefusedError(Exception):
    """A multipart request that is not read; `code` and `status` go into the error response."""

    def __init__(self, message: str, code: str = "BAD_REQUEST", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


class _TooLargeError(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLargeError
        return message

    return counted


def _too_large(limit: int) -> UploadRefusedError:
    return UploadRefusedError(
        f"The upload is larger than the limit of {limit // (1024 * 1024)} MB",
        "PAYLOAD_TOO_LARGE",
        413,
    )


async def upload_payload(request: Request, limit: int) -> dict[str, Any]:
    """The operation of a multipart request, its `variables` holding the uploaded files.

    Call `close_uploads(request)` when the operation is done: it removes the spooled files.
    """
    if request.headers.get(UPLOAD_HEADER) != "1":
        raise UploadRefusedError(f"Uploads need the header {UPLOAD_HEADER}: 1")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    limited = Request(request.scope, _limited(request.receive, limit))
    try:
        form = await limited.form(max_files=MAX_UPLOAD_FILES, max_fields=8)
    except _TooLargeError:
        raise _too_large(limit) from None
    except (MultiPartException, HTTPException) as error:
        raise UploadRefusedError(f"Malformed multipart body: {error}") from None
    request.state.upload_form = form
    try:
        operations = orjson.loads(str(form.get("operations") or ""))
        files_map = orjson.loads(str(form.get("map") or "{}"))
    except orjson.JSONDecodeError:
        raise UploadRefusedError("`operations` and `map` must be JSON") from None
    if not isinstance(operations, dict) or not isinstance(files_map, dict):
        raise UploadRefusedError("`operations` must be one operation object and `map` an object")
    files: dict[str, UploadFile] = {}
    for key, paths in files_map.items():
        part = form.get(key)
        if not isinstance(part, UploadFile) or not isinstance(paths, list):
            raise UploadRefusedError(f"`map` names {key!r}, which is not an uploaded file")
        if not all(isinstance(p, str) and p.startswith("variables.") for p in paths):
            raise UploadRefusedError("`map` paths must point into `variables`")
        files[key] = part
    try:
        return replace_placeholders_with_files(operations, files_map, files)
    except (KeyError, IndexError, TypeError, ValueError):
        raise UploadRefusedError("`map` points at a variable the operation does not have") from None


async def close_uploads(request: Request) -> None:
    form = getattr(request.state, "upload_form", None)
    if form is not None:
        await form.close()
