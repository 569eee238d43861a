"""Small helpers shared by the sandbox tests."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx

KEY = "sk-sandbox-unit"


def predict(api: httpx.Client, model: str, **inp: Any) -> httpx.Response:
    return api.post(f"/v1/models/{model}/predictions", json={"input": inp})


def open_image(data: bytes) -> Any:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def b64_image(value: str) -> Any:
    return open_image(base64.b64decode(value))


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The gateway error object, after checking its documented shape."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]
