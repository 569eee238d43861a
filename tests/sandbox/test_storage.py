"""The storage host: signed URLs, no Authorization, and the download faults."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.sandbox.helpers import KEY, open_image, predict


@pytest.fixture
def image_url(api: httpx.Client) -> str:
    return predict(api, "qianfan/qwen-image", prompt="storage", seed=1, size="512*1024").json()["output"][0][
        "url"
    ]


def test_serves_bytes_with_type_and_length(
    sandbox: SandboxServer, anon: httpx.Client, image_url: str
) -> None:
    assert image_url.startswith(sandbox.storage_url + "/images/")
    response = anon.get(image_url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["x-request-id"]
    assert open_image(response.content).size == (512, 1024)


def test_authorization_header_is_refused_and_logged(
    sandbox: SandboxServer, anon: httpx.Client, image_url: str
) -> None:
    response = anon.get(image_url, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidHTTPAuthHeader"
    (record,) = sandbox.client.requests(host="storage")
    assert record["status"] == 400 and record["headers"]["authorization"] == f"Bearer {KEY}"


def test_clean_download_carries_no_key(sandbox: SandboxServer, anon: httpx.Client, image_url: str) -> None:
    anon.get(image_url)
    records = sandbox.client.requests(host="storage")
    assert records and all(KEY not in str(record["headers"]) for record in records)


def test_url_without_signature_or_tampered_is_403(anon: httpx.Client, image_url: str) -> None:
    assert anon.get(image_url.split("?")[0]).json()["code"] == "AccessDenied"
    tampered = image_url.replace("-0.png", "-1.png")
    response = anon.get(tampered)
    assert response.status_code == 403 and response.json()["code"] == "SignatureDoesNotMatch"


def test_url_ttl_expiry(sandbox: SandboxServer, api: httpx.Client, anon: httpx.Client) -> None:
    sandbox.client.configure(url_ttl_s=0)
    url = predict(api, "qianfan/qwen-image", prompt="x").json()["output"][0]["url"]
    response = anon.get(url)
    assert response.status_code == 403
    assert "expired" in response.json()["message"]


def test_unknown_image_is_404(sandbox: SandboxServer, anon: httpx.Client) -> None:
    assert anon.get(f"{sandbox.storage_url}/images/nothing.png").status_code == 404


@pytest.mark.parametrize("status", [403, 404])
def test_expired_fault(sandbox: SandboxServer, anon: httpx.Client, image_url: str, status: int) -> None:
    sandbox.client.inject(kind="expired", status=status, count=1)
    assert anon.get(image_url).status_code == status
    assert anon.get(image_url).status_code == 200  # count=1: only the next download


def test_truncated_fault(sandbox: SandboxServer, anon: httpx.Client, image_url: str) -> None:
    sandbox.client.inject(kind="truncated", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        anon.get(image_url)
    (record,) = sandbox.client.requests(host="storage")
    assert record["fault"] == "truncated"


def test_wrong_content_type_fault(sandbox: SandboxServer, anon: httpx.Client, image_url: str) -> None:
    real = anon.get(image_url).content
    sandbox.client.inject(kind="wrong_content_type", count=1)
    html = anon.get(image_url)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.content != real
    sandbox.client.inject(kind="wrong_content_type", content_type="application/octet-stream", count=1)
    labelled = anon.get(image_url)
    assert labelled.headers["content-type"] == "application/octet-stream"
    assert labelled.content == real


def test_huge_fault_streams_a_valid_png_of_exact_size(
    sandbox: SandboxServer, anon: httpx.Client, image_url: str
) -> None:
    size = 3 * 1024 * 1024 + 5  # not a multiple of the padding chunk
    sandbox.client.inject(kind="huge", size_bytes=size, count=1)
    digest = hashlib.sha256()
    received = 0
    with anon.stream("GET", image_url) as response:
        assert response.headers["content-type"] == "image/png"
        assert int(response.headers["content-length"]) == size
        chunks = []
        for chunk in response.iter_bytes():
            received += len(chunk)
            digest.update(chunk)
            chunks.append(chunk)
    assert received == size
    assert open_image(b"".join(chunks)).size == (512, 1024)


def test_huge_default_size_from_config(sandbox: SandboxServer, anon: httpx.Client, image_url: str) -> None:
    sandbox.client.configure(huge_bytes=2 * 1024 * 1024)
    sandbox.client.inject(kind="huge", count=1)
    with anon.stream("GET", image_url) as response:
        assert sum(len(c) for c in response.iter_bytes()) == 2 * 1024 * 1024


def test_storage_faults_do_not_touch_the_api(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.client.inject(kind="truncated")
    assert predict(api, "qianfan/qwen-image", prompt="x").status_code == 200
    assert api.get("/v1/models").status_code == 200
