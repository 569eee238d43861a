"""
``gs://`` store through the Google provider's ``GCSHook`` (connection ``google_cloud_default``).

google-cloud-storage and the Google provider are imported only when a GCS store is opened (the
``[google]`` extra). Every call passes ``retry=None``: the library's own retry (up to 120 s) would
stack on the store's, which keeps the S3 budget (see :mod:`.cloud`). The store-computed checksum
checked after each upload is the object's ``md5Hash``; the conditional create is
``ifGenerationMatch=0`` (https://cloud.google.com/storage/docs/request-preconditions).
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import IO, Any, cast
from urllib.parse import quote

from airflow_provider_aihubmix.storage.cloud import CloudObjectStore, ObjectFacts
from airflow_provider_aihubmix.storage.spool import ImageSpool
from airflow_provider_aihubmix.storage.uris import split_object_uri

#: Seconds per HTTP call to GCS (connect + read), as the library's default.
GCS_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class GCSObjectStore(CloudObjectStore):
    """
    Objects in a GCS bucket under a prefix, through the Google Cloud connection ``conn_id``.

    :param output_uri: ``gs://bucket/prefix``.
    :param conn_id: Google Cloud connection (default ``google_cloud_default``).
    :param client: a ready ``google.cloud.storage.Client`` instead of one from the connection.

    Other parameters as :class:`~airflow_provider_aihubmix.storage.cloud.CloudObjectStore`.
    """

    schemes = ("gs",)
    service = "GCS"

    def __init__(
        self, output_uri: str, *, conn_id: str | None = "google_cloud_default", **options: Any
    ) -> None:
        super().__init__(output_uri, conn_id=conn_id, **options)

    @property
    def client(self) -> Any:
        """``google.cloud.storage.Client`` from ``GCSHook`` (credentials, project, endpoint)."""
        if self._client is None:
            from airflow.providers.google.cloud.hooks.gcs import GCSHook

            self._client = GCSHook(gcp_conn_id=self.conn_id or "google_cloud_default").get_conn()
        return self._client

    def _blob(self, name: str, bucket: str | None = None) -> Any:
        return self.client.bucket(bucket or self.bucket).blob(name)

    def _upload(
        self, name: str, source: ImageSpool, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        blob = self._blob(name)
        blob.metadata = dict(metadata)
        kwargs: dict[str, Any] = {"content_type": content_type, "retry": None, "timeout": GCS_TIMEOUT_S}
        if source.path is not None:
            blob.upload_from_filename(source.path, **kwargs)
        else:
            blob.upload_from_file(source.reader(), rewind=True, **kwargs)

    def _upload_bytes(self, name: str, body: bytes, *, content_type: str, if_absent: bool) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        try:
            self._blob(name).upload_from_string(
                body,
                content_type=content_type,
                if_generation_match=0 if if_absent else None,
                retry=None,
                timeout=GCS_TIMEOUT_S,
            )
        except PreconditionFailed:
            return False
        return True

    def _facts(self, name: str) -> ObjectFacts | None:
        blob = self.client.bucket(self.bucket).get_blob(name, retry=None, timeout=GCS_TIMEOUT_S)
        if blob is None:
            return None
        md5 = base64.b64decode(blob.md5_hash) if blob.md5_hash else None
        return ObjectFacts(size=int(blob.size), md5=md5)

    def _download(self, bucket: str, name: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        try:
            return cast(
                "bytes", self._blob(name, bucket).download_as_bytes(retry=None, timeout=GCS_TIMEOUT_S)
            )
        except NotFound:
            return None

    def _open(self, bucket: str, name: str) -> IO[bytes]:
        blob = self.client.bucket(bucket).get_blob(name, retry=None, timeout=GCS_TIMEOUT_S)
        if blob is None:
            from google.api_core.exceptions import NotFound

            raise NotFound(f"gs://{bucket}/{name} does not exist")
        return cast("IO[bytes]", blob.open("rb", retry=None))

    def _list(self, prefix: str) -> list[str]:
        blobs = self.client.list_blobs(self.bucket, prefix=prefix, retry=None, timeout=GCS_TIMEOUT_S)
        return [blob.name for blob in blobs]

    def _delete(self, name: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self._blob(name).delete(retry=None, timeout=GCS_TIMEOUT_S)

    def is_transient(self, exc: BaseException) -> bool:
        """Connection failures, timeouts, 408/429/5xx (``GoogleAPICallError.code``), as GCS's retry guide."""
        import requests
        from google.api_core.exceptions import GoogleAPICallError
        from google.auth.exceptions import TransportError

        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(
                current, (requests.ConnectionError, requests.Timeout, TransportError, ConnectionError)
            ):
                return True
            if isinstance(current, GoogleAPICallError):
                return int(current.code or 0) in _TRANSIENT_STATUS
            current = current.__cause__ or current.__context__
        return False

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        """A V4 signed GET URL valid ``expires_s`` seconds (GCS refuses it after: 400
        ``ExpiredToken``), or None when the connection's credentials cannot sign.

        Service-account keys sign locally; other credentials that name a service account
        (GCE/GKE metadata credentials) sign through IAM ``signBlob`` with their access token, which
        needs ``iam.serviceAccounts.signBlob`` on that account. Source: Cloud Storage docs, "V4
        signing process with Cloud Storage tools" (``Blob.generate_signed_url``).
        """
        from google.auth.credentials import Signing

        blob = self._blob(self.full_key(key))
        credentials: Any = getattr(self.client, "_credentials", None)
        kwargs: dict[str, Any] = {"version": "v4", "method": "GET"}
        kwargs["expiration"] = timedelta(seconds=expires_s)
        endpoint = getattr(getattr(self.client, "_connection", None), "API_BASE_URL", None)
        if endpoint and "storage.googleapis.com" not in endpoint:
            kwargs["api_access_endpoint"] = endpoint  # an emulator or a private endpoint
        if not isinstance(credentials, Signing):
            if not hasattr(credentials, "service_account_email"):
                return None  # anonymous or user credentials: nothing names a signer
            if not credentials.valid or credentials.service_account_email == "default":
                from google.auth.exceptions import GoogleAuthError
                from google.auth.transport.requests import Request

                try:
                    credentials.refresh(Request())  # metadata credentials learn their account here
                except GoogleAuthError as err:
                    log.info("GCS: no signed URL for %s (streamed instead): %s", key, err)
                    return None
            kwargs.update(
                service_account_email=credentials.service_account_email, access_token=credentials.token
            )
        try:
            return cast("str", blob.generate_signed_url(**kwargs))
        except (AttributeError, ValueError, TypeError) as err:  # credentials that cannot sign after all
            log.info("GCS: no signed URL for %s (streamed instead): %s", key, err)
            return None

    def link_for(self, uri: str) -> str:
        """The Cloud Console page of the object (the console asks the person to sign in)."""
        _, root, name = split_object_uri(uri)
        bucket = root.split("://", 1)[1]
        return f"https://console.cloud.google.com/storage/browser/_details/{bucket}/{quote(name, safe='/')}"


__all__ = ["GCSObjectStore"]
