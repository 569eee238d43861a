"""Parse and check ``output_uri`` values and the object URIs that go to XCom."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from airflow_provider_aihubmix.exceptions import InvalidOutputURIError

DEFAULT_LOCAL_DIR_NAME = "aihubmix-images"

# S3 bucket naming rules (lower-case letters, digits, dots and hyphens; 3-63 characters).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters left unquoted in file:// URIs: our key alphabet plus the usual path characters.
_FILE_URI_SAFE = "/:+~=@,!$&'()*;"


@dataclass(frozen=True)
class OutputLocation:
    """A checked ``output_uri``: an S3 bucket and key prefix, or an absolute local directory."""

    scheme: Literal["s3", "file"]
    #: Bucket name for ``s3``; None for ``file``.
    bucket: str | None
    #: ``s3``: key prefix without leading/trailing '/' ('' for the bucket root).
    #: ``file``: absolute directory path without a trailing '/'.
    path: str

    @property
    def uri(self) -> str:
        """Canonical form of the URI (no trailing slash)."""
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.path}" if self.path else f"s3://{self.bucket}"
        return path_to_file_uri(self.path)


def default_local_output_uri() -> str:
    """``file://$AIRFLOW_HOME/aihubmix-images``: where images go when nothing else is configured."""
    home: str = os.environ.get("AIRFLOW_HOME") or ""
    if not home:
        try:
            from airflow.configuration import AIRFLOW_HOME

            home = str(AIRFLOW_HOME)
        except ImportError:  # pragma: no cover - Airflow always provides it
            home = os.path.expanduser("~/airflow")
    return path_to_file_uri(os.path.join(os.path.abspath(os.path.expanduser(home)), DEFAULT_LOCAL_DIR_NAME))


def output_uri_text(value: Any) -> Any:
    """``output_uri`` as the provider reads it, and the connection an object-storage path names.

    An Airflow ``ObjectStoragePath`` (anything with a ``protocol`` and ``as_uri()``) becomes its URI
    (``s3://bucket/prefix``, ``file:///dir``; its ``conn_id`` is returned separately); a string or
    ``None`` is returned as given (a template is rendered later). Returns ``(uri, conn_id)``.
    Raises :class:`InvalidOutputURIError` naming ``output_uri`` for anything else.
    """
    if value is None or isinstance(value, str):
        return value, None
    as_uri = getattr(value, "as_uri", None)
    if getattr(value, "protocol", None) and callable(as_uri):
        return str(as_uri()), getattr(value, "conn_id", None) or None
    raise InvalidOutputURIError(
        f"Parameter 'output_uri' must be a string ('s3://bucket/prefix' or 'file:///dir') or an "
        f"ObjectStoragePath; got {type(value).__name__}"
    )


def resolve_output_uri(
    output_uri: str | None, connection_output_uri: str | None, conn_id: str
) -> tuple[str, str]:
    """Where images go and why: the parameter, else the connection's extra, else AIRFLOW_HOME."""
    if output_uri:
        return output_uri, "the output_uri parameter"
    if connection_output_uri:
        return connection_output_uri, f"connection {conn_id!r} extra output_uri"
    return default_local_output_uri(), "the default under AIRFLOW_HOME"


def path_to_file_uri(path: str) -> str:
    """``file://`` URI of an absolute path, percent-encoding only what a URI cannot hold."""
    return "file://" + quote(path, safe=_FILE_URI_SAFE)


def parse_output_uri(output_uri: str) -> OutputLocation:
    """
    Check and split ``output_uri`` (``s3://bucket/prefix`` or ``file:///abs/dir``).

    :raises InvalidOutputURIError: naming ``output_uri`` when the scheme is unsupported, the bucket or
        path is malformed, or any segment is ``..`` / ``.`` (before or after percent-decoding).
    """
    if not isinstance(output_uri, str) or not output_uri.strip():
        raise InvalidOutputURIError(
            f"output_uri must be 's3://bucket/prefix' or 'file:///dir', got {output_uri!r}"
        )
    raw = output_uri.strip()
    if _CONTROL.search(raw):
        raise InvalidOutputURIError(f"output_uri {raw!r} contains a control character")
    parts = urlsplit(raw, allow_fragments=False)
    scheme = parts.scheme.lower()
    if parts.query:
        raise InvalidOutputURIError(f"output_uri {raw!r} must not have a query string")
    if scheme == "s3":
        return _parse_s3(raw, parts.netloc, parts.path)
    if scheme == "file":
        return _parse_file(raw, parts.netloc, parts.path)
    raise InvalidOutputURIError(
        f"output_uri {raw!r} has unsupported scheme {parts.scheme!r}: use 's3://bucket/prefix' or 'file:///dir'"
    )


def _parse_s3(raw: str, bucket: str, path: str) -> OutputLocation:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidOutputURIError(f"output_uri {raw!r} has an invalid S3 bucket name {bucket!r}")
    prefix = path.strip("/")
    if "\\" in prefix:
        raise InvalidOutputURIError(f"output_uri {raw!r} must not contain '\\'")
    if prefix:
        _check_segments(raw, prefix.split("/"))
    return OutputLocation("s3", bucket, prefix)


def _parse_file(raw: str, host: str, path: str) -> OutputLocation:
    if host not in ("", "localhost"):
        raise InvalidOutputURIError(
            f"output_uri {raw!r} names host {host!r}: use file:///absolute/dir (three slashes)"
        )
    decoded = unquote(path)
    if not decoded.startswith("/"):
        raise InvalidOutputURIError(f"output_uri {raw!r} must hold an absolute path: file:///absolute/dir")
    if "\x00" in decoded or _CONTROL.search(decoded):
        raise InvalidOutputURIError(f"output_uri {raw!r} contains a control character")
    stripped = decoded.rstrip("/")
    if not stripped:
        raise InvalidOutputURIError(f"output_uri {raw!r} must not be the file system root")
    # Check the raw segments too: a '%2e%2e' and a literal '..' are both refused.
    _check_segments(raw, path.strip("/").split("/"))
    _check_segments(raw, stripped.strip("/").split("/"))
    return OutputLocation("file", None, stripped)


def _check_segments(raw: str, segments: list[str]) -> None:
    for segment in segments:
        if segment in ("..", "."):
            raise InvalidOutputURIError(f"output_uri {raw!r} must not contain '{segment}' path segments")
        if segment == "":
            raise InvalidOutputURIError(f"output_uri {raw!r} must not contain empty path segments ('//')")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); the key is taken literally, as the amazon provider does."""
    parts = urlsplit(uri, allow_fragments=False)
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise InvalidOutputURIError(f"not an s3:// URI: {uri!r}")
    key = parts.path.lstrip("/")
    if parts.query:
        key = f"{key}?{parts.query}"
    return parts.netloc, key


def file_uri_to_path(uri: str) -> str:
    """``file:///abs/path`` → ``/abs/path`` (percent-decoded)."""
    parts = urlsplit(uri, allow_fragments=False)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        raise InvalidOutputURIError(f"not a local file:// URI: {uri!r}")
    path = unquote(parts.path)
    if not path.startswith("/") or "\x00" in path:
        raise InvalidOutputURIError(f"file:// URI must hold an absolute path: {uri!r}")
    return path


__all__ = [
    "DEFAULT_LOCAL_DIR_NAME",
    "OutputLocation",
    "default_local_output_uri",
    "file_uri_to_path",
    "parse_output_uri",
    "path_to_file_uri",
    "split_s3_uri",
]
