"""Export files in an S3-compatible object store, when one is configured.

Set `DOSSIER_EXPORT_S3_BUCKET` (and `DOSSIER_EXPORT_S3_URL` for a store other than AWS, e.g.
MinIO or Ceph; `DOSSIER_EXPORT_S3_REGION`, `DOSSIER_EXPORT_S3_PREFIX`); credentials come from
boto3's usual chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, a profile, an instance
role). Downloads are then uploaded there instead of into `stored_file_chunks`; uploads waiting
for an import worker and import reports stay in PostgreSQL.

boto3 is synchronous: every call runs in a worker thread. An object is uploaded before the
transaction that registers it commits, so a rolled-back export can leave an object no row
names; give the bucket a lifecycle rule that expires objects under the prefix after a day.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ObjectStoreSettings:
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    prefix: str = "dossier/exports/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ObjectStoreSettings | None:
        bucket = environ.get("DOSSIER_EXPORT_S3_BUCKET")
        if not bucket:
            return None
        return cls(
            bucket=bucket,
            endpoint_url=environ.get("DOSSIER_EXPORT_S3_URL") or None,
            region=environ.get("DOSSIER_EXPORT_S3_REGION") or None,
            prefix=environ.get("DOSSIER_EXPORT_S3_PREFIX", "dossier/exports/"),
        )


class ObjectStore:
    """put, exists, read in chunks, delete: all a download needs."""

    def __init__(self, settings: ObjectStoreSettings) -> None:
        import boto3  # type: ignore[import-untyped]  # optional: only with an S3 store

        self.settings = settings
        self._client: Any = boto3.client(
            "s3", endpoint_url=settings.endpoint_url, region_name=settings.region
        )

    def _name(self, key: str) -> str:
        return f"{self.settings.prefix}{key}"

    async def put(self, key: str, path: Path) -> None:
        await asyncio.to_thread(
            self._client.upload_file, str(path), self.settings.bucket, self._name(key)
        )

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        try:
            await asyncio.to_thread(
                self._client.head_object, Bucket=self.settings.bucket, Key=self._name(key)
            )
        except ClientError:
            return False
        return True

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        answer = await asyncio.to_thread(
            self._client.get_object, Bucket=self.settings.bucket, Key=self._name(key)
        )
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, keys: Sequence[str]) -> None:
        if keys:
            await asyncio.to_thread(
                self._client.delete_objects,
                Bucket=self.settings.bucket,
                Delete={"Objects": [{"Key": self._name(key)} for key in keys], "Quiet": True},
            )
