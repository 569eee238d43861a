"""Reference images: every form ``image`` takes, flattened and read into what the API accepts."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.storage import ImageTooLargeError, NotAnImageError
from airflow_provider_aihubmix.storage.references import (
    needs_reading,
    parse_rendered,
    reference_strings,
    resolve_param_references,
    resolve_reference,
    resolve_references,
)


def image_file(path: Path, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format=fmt)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


RECORD = {"uri": "s3://assets/p/image-000.png", "model": "google/imagen-4.0-generate-001", "index": 0}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (None, []),
        ("", []),
        ([], []),
        ("  https://example.com/a.png ", ["https://example.com/a.png"]),
        (RECORD, [RECORD["uri"]]),
        ([RECORD, "/tmp/b.png"], [RECORD["uri"], "/tmp/b.png"]),
        # xcom_pull of a mapped upstream: a list of record lists.
        ([[RECORD], [{**RECORD, "uri": "s3://assets/q.png"}]], [RECORD["uri"], "s3://assets/q.png"]),
        # What a template renders: the repr or the JSON of records and lists.
        (repr([RECORD]), [RECORD["uri"]]),
        ('[{"uri": "file:///tmp/c.png"}]', ["file:///tmp/c.png"]),
        ("['/tmp/a.png', '/tmp/b.png']", ["/tmp/a.png", "/tmp/b.png"]),
        ([repr(RECORD)], [RECORD["uri"]]),
        ("[not a list", ["[not a list"]),
    ],
)
def test_reference_strings_flattens_every_form(image: object, expected: list[str]) -> None:
    assert reference_strings(image) == expected


@pytest.mark.parametrize("image", [42, [b"bytes"], [{"model": "no uri"}], [{"uri": ""}], [None]])
def test_reference_strings_rejects_what_it_cannot_locate(image: object) -> None:
    with pytest.raises(AIHubMixValidationError, match="Parameter 'image'"):
        reference_strings(image)


def test_parse_rendered_leaves_plain_text_alone() -> None:
    assert parse_rendered("/tmp/[odd].png") == "/tmp/[odd].png"
    assert parse_rendered("{'uri': 's3://b/k.png'}") == {"uri": "s3://b/k.png"}


@pytest.mark.parametrize(
    ("ref", "read"),
    [
        ("https://x/a.png", False),
        ("data:image/png;base64,iVBORw0KGgo=", False),
        ("s3://b/k", True),
        ("/a.png", True),
    ],
)
def test_only_locations_the_api_cannot_reach_are_read(ref: str, read: bool) -> None:
    assert needs_reading(ref) is read
    if not read:
        assert resolve_reference(ref, aws_conn_id=None) == ref


@pytest.mark.parametrize("fmt, content_type", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_local_paths_and_file_uris_are_sent_inline_with_the_sniffed_type(
    tmp_path: Path, fmt: str, content_type: str
) -> None:
    # The extension lies: the content type comes from the bytes.
    path = tmp_path / "ref.png"
    data = image_file(path, fmt)
    for ref in (str(path), path.as_uri()):
        uri = resolve_reference(ref, aws_conn_id=None)
        prefix = f"data:{content_type};base64,"
        assert uri.startswith(prefix) and base64.b64decode(uri[len(prefix) :]) == data


def test_a_list_resolves_each_reference_in_order(tmp_path: Path) -> None:
    data = image_file(tmp_path / "a.png")
    resolved = resolve_references([str(tmp_path / "a.png"), "https://x/b.png"], aws_conn_id=None)
    assert resolved[0] == f"data:image/png;base64,{base64.b64encode(data).decode()}"
    assert resolved[1] == "https://x/b.png"


def test_oversized_and_non_image_references_are_refused(tmp_path: Path) -> None:
    image_file(tmp_path / "a.png")
    with pytest.raises(ImageTooLargeError):
        resolve_reference(str(tmp_path / "a.png"), aws_conn_id=None, max_bytes=10)
    secret = tmp_path / "credentials.txt"
    secret.write_text("aws_secret_access_key = hunter2")
    with pytest.raises(NotAnImageError) as err:
        resolve_reference(str(secret), aws_conn_id=None)
    assert "hunter2" not in str(err.value)


def test_a_data_uri_whose_bytes_are_not_an_image_is_refused(tmp_path: Path) -> None:
    # Files are sniffed before they are sent; a data: URI's bytes are too (it went out unchecked).
    text = "data:image/png;base64," + base64.b64encode(b"<html>expired</html>").decode()
    with pytest.raises(NotAnImageError, match=r"data: URI \(\d+ characters\) is not an image") as err:
        resolve_reference(text, aws_conn_id=None)
    assert "PGh0bWw" not in str(err.value)  # never the payload
    with pytest.raises(AIHubMixValidationError, match=r"Parameter 'image'.*qwen-image-edit"):
        resolve_param_references(
            {"image": ["https://x/a.png", text]}, ("image",), model="qwen-image-edit", aws_conn_id=None
        )
    # A real image passes unchanged, line breaks in its base64 included.
    data = image_file(tmp_path / "a.png")
    encoded = base64.b64encode(data).decode()
    wrapped = "data:image/png;base64," + "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert resolve_reference(wrapped, aws_conn_id=None) == wrapped
