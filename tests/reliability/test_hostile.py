"""Hostile answers and templates: image URLs aimed at metadata, link-local or private addresses
(SSRF), non-http schemes, and output locations or key parts that try to climb out of a prefix."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pendulum
import pytest
from airflow.sdk import DAG
from PIL import Image

from airflow_provider_aihubmix.exceptions import (
    AIHubMixDownloadError,
    AIHubMixResponseError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.operators.images import AIHubMixGenerateImageOperator
from tests.reliability.helpers import TaskRunner, api_requests, image_files

AREA = "Hostile"
PUBLIC_ADDRESS = "93.184.216.34"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


class HostileApi:
    """An API (httpx MockTransport) whose answer points the image at ``image_url``.

    Every request it sees is recorded, so a test proves the hostile URL was never fetched.
    ``redirect_to`` makes the image host answer 302 to another location.
    """

    def __init__(self, image_url: str, *, redirect_to: str | None = None) -> None:
        self.image_url = image_url
        self.redirect_to = redirect_to
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url}")
        if request.method == "POST":
            return httpx.Response(
                200, json={"output": [{"url": self.image_url}]}, headers={"X-Request-Id": "h-1"}
            )
        if self.redirect_to and str(request.url) == self.image_url:
            return httpx.Response(302, headers={"Location": self.redirect_to})
        return httpx.Response(200, content=_png(), headers={"Content-Type": "image/png"})

    def fetched(self) -> list[str]:
        return [line for line in self.seen if line.startswith("GET ")]


def _resolver(host: str) -> list[str]:
    # No DNS in tests: "rebind.example.com" resolves to the metadata address, the rest to a public one.
    return ["169.254.169.254"] if host == "rebind.example.com" else [PUBLIC_ADDRESS]


def _run(operator_factory, hostile: HostileApi, **extra: Any):
    build = operator_factory(
        model="qwen-image",
        prompt="a hostile answer",
        hook_kwargs={"transport": httpx.MockTransport(hostile), "resolver": _resolver, **extra},
    )
    return TaskRunner(build).run()


SSRF_URLS = [
    ("metadata-ip", "http://169.254.169.254/latest/meta-data/iam/image.png", None),
    ("metadata-host", "http://metadata.google.internal/computeMetadata/v1/image.png", None),
    ("link-local-v6", "http://[fe80::1]/image.png", None),
    ("private", "http://10.0.0.5/image.png", None),
    ("dns-to-metadata", "http://rebind.example.com/image.png", None),
    ("redirect-to-metadata", "https://cdn.example.com/image.png", "http://169.254.169.254/latest/meta-data/"),
]


@pytest.mark.parametrize(("name", "url", "redirect"), SSRF_URLS, ids=[u[0] for u in SSRF_URLS])
def test_image_url_at_forbidden_addresses_is_refused(
    name, url, redirect, api, operator_factory, out_dir, report
):
    hostile = HostileApi(url, redirect_to=redirect)
    run = _run(operator_factory, hostile)

    err = run.error
    assert isinstance(err, AIHubMixDownloadError) and "Refusing to download" in str(err)
    forbidden = redirect or url
    assert not any(forbidden.split("//", 1)[1].split("/", 1)[0] in line for line in hostile.fetched())
    assert image_files(out_dir) == []
    api.assert_clean(err)
    report.row(
        f"hostile-ssrf-{name}",
        area=AREA,
        scenario=f"the API answers with image URL {url}" + (f" (302 to {redirect})" if redirect else ""),
        expected="refused before any connection to that address (SSRF guard); nothing stored",
        result=f"{type(err).__name__}: {err.message.split(' (set')[0]}",
        requests=len(hostile.seen),
        billed=1,
        objects=0,
        duplicates=0,
    )


def test_private_addresses_allowed_by_configuration(api, operator_factory, out_dir, report):
    api.connect(allow_private_image_hosts=True)
    hostile = HostileApi("http://10.0.0.5/image.png")
    run = _run(operator_factory, hostile)
    assert run.ok, run.error
    assert hostile.fetched() == ["GET http://10.0.0.5/image.png"]
    assert len(image_files(out_dir)) == 1
    report.row(
        "hostile-ssrf-opt-out",
        area=AREA,
        scenario="image URL on a private address with the connection extra allow_private_image_hosts=true",
        expected="fetched and stored (the guard is configurable)",
        result="stored",
        requests=len(hostile.seen),
        billed=1,
        objects=1,
        duplicates=0,
    )


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://images.example.com/a.png", "gopher://x/a.png"])
def test_non_http_image_urls_are_never_fetched(url, api, operator_factory, out_dir, report):
    hostile = HostileApi(url)
    run = _run(operator_factory, hostile)
    err = run.error
    # Not an image reference the client follows: the answer holds no image it would fetch.
    assert isinstance(err, (AIHubMixResponseError, AIHubMixDownloadError))
    assert hostile.fetched() == [] and image_files(out_dir) == []
    assert "/etc/passwd" not in json.dumps(run.xcom)
    scheme = url.split(":", 1)[0]
    report.row(
        f"hostile-scheme-{scheme}",
        area=AREA,
        scenario=f"the API answers with image URL {url}",
        expected="never fetched; clear error",
        result=f"{type(err).__name__}",
        requests=len(hostile.seen),
        billed=1,
        objects=0,
        duplicates=0,
    )


ESCAPES = [
    "{base}/../escaped",
    "{base}/a/../../escaped",
    "{base}/%2e%2e/escaped",
    "s3://bucket/images/../../other",
]


@pytest.mark.parametrize("template", ESCAPES)
@pytest.mark.parametrize("templated", [False, True], ids=["literal", "templated"])
def test_output_uri_with_dot_dot_cannot_escape(template, templated, api, sandbox, out_dir, report):
    uri = template.format(base=out_dir.as_uri())

    def build() -> Any:
        with DAG(f"escape_{templated}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
            operator = AIHubMixGenerateImageOperator(
                task_id="generate",
                model="qwen-image",
                prompt="an escape",
                output_uri="{{ params.out }}" if templated else uri,
            )
        operator.render_template_fields({"params": {"out": uri}})
        return operator

    run = TaskRunner(build).run()
    assert isinstance(run.error, AIHubMixValidationError), repr(run.error)
    assert ".." in str(run.error) or "%2e" in str(run.error).lower()
    assert api_requests(sandbox.client) == []
    assert not (out_dir.parent / "escaped").exists() and list(out_dir.rglob("*")) == []
    report.row(
        f"hostile-output-uri-{ESCAPES.index(template)}-{'templated' if templated else 'literal'}",
        area=AREA,
        scenario=f"output_uri {'rendering to' if templated else '='} {template.format(base='file:///…')}",
        expected="AIHubMixValidationError before any request; nothing written outside the prefix",
        result=f"{type(run.error).__name__}",
        requests=0,
        billed=0,
        objects=0,
        duplicates=0,
    )


def test_key_parts_with_dot_dot_stay_inside_the_prefix(api, sandbox, operator_factory, out_dir: Path, report):
    root = out_dir / "root"
    root.mkdir()
    build = operator_factory(model="qwen-image", prompt="hostile ids", output_uri=root.as_uri())
    run = TaskRunner(build, task_id="..", dag_id="..", run_id="../../../../escaped", map_index=3).run()

    assert run.ok, run.error
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    assert files and all(root.resolve() in p.resolve().parents for p in files)
    assert not any(part in ("..", ".") for p in files for part in p.relative_to(root).parts)
    assert sorted(p.name for p in out_dir.iterdir()) == ["root"]
    report.row(
        "hostile-key-parts",
        area=AREA,
        scenario="dag_id '..', task_id '..', run_id '../../../../escaped' (key parts of the prefix)",
        expected="each part encoded to one safe segment; every object inside the output prefix",
        result=f"{len(files)} objects, all under the prefix: {files[0].relative_to(root).parts[:3]}",
        requests=len(api_requests(sandbox.client)),
        billed=1,
        objects=len(image_files(out_dir)),
        duplicates=0,
    )
