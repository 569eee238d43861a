"""A contact sheet: one PNG grid of a run's images, each labelled with its model and prompt.

Marketing reviewers look at one picture instead of opening fifty objects.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

THUMB = 256
LABEL_LINES = 4
LINE_HEIGHT = 13


def render_contact_sheet(
    images: Sequence[tuple[bytes, str]],
    *,
    columns: int = 4,
    title: str | None = None,
) -> bytes:
    """Lay out ``(image bytes, label)`` pairs on a grid and return PNG bytes."""
    from PIL import Image, ImageDraw, ImageFont

    if not images:
        raise ValueError("A contact sheet needs at least one image")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    label_h = LABEL_LINES * LINE_HEIGHT + 6
    title_h = 28 if title else 0
    cell_w, cell_h = THUMB + 16, THUMB + label_h + 16
    sheet = Image.new("RGB", (columns * cell_w, title_h + rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    if title:
        draw.text((8, 8), title, fill="black", font=font)
    for i, (data, label) in enumerate(images):
        x, y = (i % columns) * cell_w + 8, title_h + (i // columns) * cell_h + 8
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((THUMB, THUMB))
            sheet.paste(img.convert("RGB"), (x + (THUMB - img.width) // 2, y + (THUMB - img.height) // 2))
        lines = textwrap.wrap(label, width=40)[:LABEL_LINES]
        for j, line in enumerate(lines):
            draw.text((x, y + THUMB + 4 + j * LINE_HEIGHT), line, fill="black", font=font)
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def contact_sheet_for_records(
    records: Sequence[dict[str, Any]],
    read: Callable[[str], bytes],
    *,
    prompts: dict[tuple[str, int], str] | None = None,
    title: str | None = None,
    columns: int = 4,
) -> bytes:
    """Build the sheet from XCom records; ``read`` fetches a record's ``uri``.

    ``prompts`` maps ``(task model, map_index)`` to the prompt that produced the image.
    """
    items = []
    for record in records:
        prompt = (prompts or {}).get((record["model"], record.get("map_index", -1)), "")
        label = f"{record['model']} #{record.get('map_index', -1)}.{record['index']}: {prompt}"
        items.append((read(record["uri"]), label))
    return render_contact_sheet(items, title=title, columns=columns)
