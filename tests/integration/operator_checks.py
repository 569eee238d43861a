"""Checks the operator integration tests share: stored objects against XCom records, no secrets."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage import sniff_image
from tests.fixtures.sandbox import SANDBOX_API_KEY

# DESIGN.md's XCom contract, plus map_index so mapped results join back to their inputs.
REQUIRED_KEYS = {"uri", "model", "index", "map_index", "content_type", "bytes", "sha256", "width", "height"}
OPTIONAL_KEYS = {"seed", "revised_prompt", "remote_task_id"}
# What must never reach XCom: the API key, signed vendor URLs, inline image data.
FORBIDDEN_IN_XCOM = (SANDBOX_API_KEY, "Signature=", "Expires=", "base64", "b64_json", "data:image")


def api_posts(sandbox: SandboxServer, path: str | None = None) -> list[dict[str, Any]]:
    """The billable requests the sandbox received (every prediction is a POST)."""
    return [r for r in sandbox.client.requests(host="api", path=path) if r["method"] == "POST"]


def read_stored(uri: str, s3_client: Any = None) -> tuple[bytes, str | None, dict[str, str]]:
    """An object's bytes, its stored Content-Type (S3 only) and metadata, read independently of the store."""
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        bucket, key = parts.netloc, parts.path.lstrip("/")
        head = s3_client.head_object(Bucket=bucket, Key=key)
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert head["ContentLength"] == len(body)
        return body, head["ContentType"], head["Metadata"]
    assert parts.scheme == "file", uri
    with open(unquote(parts.path), "rb") as handle:
        return handle.read(), None, {}


def check_record(record: dict[str, Any], *, model: str, map_index: int, s3_client: Any = None) -> bytes:
    """One XCom record matches the contract and the object it names; returns the object's bytes."""
    assert REQUIRED_KEYS <= set(record) <= REQUIRED_KEYS | OPTIONAL_KEYS, sorted(record)
    assert record["model"] == model
    assert record["map_index"] == map_index
    data, content_type, metadata = read_stored(record["uri"], s3_client)
    assert hashlib.sha256(data).hexdigest() == record["sha256"]
    assert len(data) == record["bytes"]
    sniffed = sniff_image(data)
    assert record["content_type"] == sniffed.content_type
    assert record["uri"].endswith(f".{sniffed.extension}")
    if s3_client is not None:
        assert content_type == record["content_type"]
        assert metadata["sha256"] == record["sha256"]
        assert metadata["model"] == model
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (record["width"], record["height"])
    return data


def manifest_beside(record: dict[str, Any], s3_client: Any = None) -> dict[str, Any]:
    data, _, _ = read_stored(record["uri"].rsplit("/", 1)[0] + "/manifest.json", s3_client)
    text = data.decode()
    assert SANDBOX_API_KEY not in text
    return json.loads(text)


def check_no_secrets(text: str) -> None:
    for needle in FORBIDDEN_IN_XCOM:
        assert needle not in text, f"{needle!r} found in XCom"
