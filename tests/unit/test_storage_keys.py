"""Object keys stay under their prefix whatever the ids, and ``output_uri`` cannot climb out either."""

from __future__ import annotations

import os
import posixpath
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.storage import (
    InvalidOutputURIError,
    check_key,
    default_local_output_uri,
    encode_key_part,
    image_key_stem,
    manifest_key,
    parse_output_uri,
    task_prefix,
)
from airflow_provider_aihubmix.storage.uris import file_uri_to_path, split_s3_uri

SEGMENT = re.compile(r"^[A-Za-z0-9._\-:+~=]+$")
NASTY = [
    "..",
    ".",
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "\x00",
    "x\x00y",
    "\n",
    "\r\n",
    "~",
    "~2E",
    "%2e%2e",
    " ",
]

ids = st.text(min_size=1, max_size=300)


def test_run_ids_stay_readable() -> None:
    prefix = task_prefix("marketing_assets", "manual__2024-01-01T00:00:00+00:00", "generate", -1)
    assert prefix == (
        "dag_id=marketing_assets/run_id=manual__2024-01-01T00:00:00+00:00/task_id=generate/map_index=-1"
    )


def test_map_index_separates_mapped_tasks() -> None:
    keys = {task_prefix("d", "r", "t", index) for index in (-1, 0, 1, 10)}
    assert len(keys) == 4
    assert task_prefix("d", "r", "t", None) == task_prefix("d", "r", "t", -1)
    with pytest.raises(ValueError, match="map_index"):
        task_prefix("d", "r", "t", -2)


@pytest.mark.parametrize("value", NASTY)
def test_dangerous_ids_become_one_safe_segment(value: str) -> None:
    part = encode_key_part(value)
    assert SEGMENT.match(part), part
    assert "/" not in part and "\\" not in part
    assert part not in (".", "..")
    assert not part.startswith(".")


def test_empty_id_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_key_part("")


def test_image_and_manifest_keys() -> None:
    prefix = task_prefix("d", "r", "t", 3)
    assert image_key_stem(prefix, 0) == f"{prefix}/image-000"
    assert image_key_stem(prefix, 12) == f"{prefix}/image-012"
    assert manifest_key(prefix) == f"{prefix}/manifest.json"


@settings(max_examples=400, deadline=None)
@given(dag_id=ids, run_id=ids, task_id=ids, map_index=st.integers(min_value=-1, max_value=10**6))
def test_no_generated_ids_escape_the_prefix(dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
    prefix = task_prefix(dag_id, run_id, task_id, map_index)
    key = image_key_stem(prefix, 0) + ".png"
    segments = key.split("/")
    assert len(segments) == 5
    for segment in segments:
        assert segment not in ("", ".", "..")
        assert SEGMENT.match(segment), segment
        assert len(segment.encode()) < 255  # fits a file name on every file system
    assert posixpath.normpath(key) == key
    assert check_key(key) == key
    base = "/srv/images"
    assert os.path.normpath(os.path.join(base, *segments)).startswith(base + "/")
    # The key survives a round trip through an s3:// URI unchanged (the amazon provider's parsing).
    assert split_s3_uri(f"s3://bucket/out/{key}") == ("bucket", f"out/{key}")


@settings(max_examples=300, deadline=None)
@given(first=ids, second=ids)
def test_different_ids_never_share_a_segment(first: str, second: str) -> None:
    assume(first != second)
    assert encode_key_part(first) != encode_key_part(second)


def test_long_ids_are_shortened_but_stay_distinct() -> None:
    a, b = "x" * 249 + "a", "x" * 249 + "b"
    assert len(encode_key_part(a)) <= 120
    assert encode_key_part(a) != encode_key_part(b)
    assert encode_key_part(a).startswith("x" * 50)


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a\x00b", "a\nb", "a?b", "a#b"]
)
def test_check_key_refuses_keys_that_could_escape(key: str) -> None:
    with pytest.raises(InvalidOutputURIError):
        check_key(key)


@pytest.mark.parametrize(
    ("uri", "scheme", "bucket", "path"),
    [
        ("s3://my-bucket/images/", "s3", "my-bucket", "images"),
        ("s3://my-bucket", "s3", "my-bucket", ""),
        ("s3://my.bucket-1/a/b", "s3", "my.bucket-1", "a/b"),
        ("file:///tmp/out/", "file", None, "/tmp/out"),
        ("file://localhost/tmp/out", "file", None, "/tmp/out"),
        ("file:///tmp/with%20space", "file", None, "/tmp/with space"),
    ],
)
def test_parse_output_uri_accepts(uri: str, scheme: str, bucket: str | None, path: str) -> None:
    location = parse_output_uri(uri)
    assert (location.scheme, location.bucket, location.path) == (scheme, bucket, path)
    assert parse_output_uri(location.uri) == location


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/../other",
        "s3://bucket/a/../../b",
        "s3://bucket/a/./b",
        "s3://bucket/a//b",
        "s3://bucket/a\\..\\b",
        "s3://bucket/a?x=1",
        "s3://Bad_Bucket/x",
        "s3:///no-bucket",
        "file:///tmp/../etc",
        "file:///tmp/%2e%2e/etc",
        "file:///tmp/%2E%2E",
        "file:///tmp/x%00y",
        "file://remote-host/tmp",
        "file:relative/dir",
        "file:///",
        "http://example.com/x",
        "/tmp/plain/path",
        "",
    ],
)
def test_parse_output_uri_refuses_and_names_output_uri(uri: str) -> None:
    with pytest.raises(InvalidOutputURIError, match="output_uri") as err:
        parse_output_uri(uri)
    assert isinstance(err.value, AIHubMixValidationError)


def test_default_local_output_uri_is_under_airflow_home(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    uri = default_local_output_uri()
    assert uri.startswith("file://")
    assert file_uri_to_path(uri) == os.path.join(str(tmp_path), "aihubmix-images")
    assert parse_output_uri(uri).path == os.path.join(str(tmp_path), "aihubmix-images")
