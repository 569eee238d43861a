"""A campaign character kept consistent across edits with Gemini "Nano Banana", and a contact sheet.

``character`` draws the mascot once (Nano Banana Pro, 4:5). ``scarf`` and ``poster`` edit it by
instruction (Nano Banana): each sends the upstream images inline -- the first drawing as the
character reference, plus the previous step -- so the mascot stays the same across the series.
Nothing passes between the tasks but XCom records; ``contact_sheet`` lays the three images
side by side for the reviewer and stores the sheet beside them.
"""

from __future__ import annotations

from typing import Any

import pendulum
from _common import OUTPUT_URI
from airflow.sdk import DAG, task

from airflow_provider_aihubmix.operators.images import AIHubMixGeminiImageOperator

STEPS = {
    "character": "{{ params.character }}, full body, friendly pose, plain studio background",
    "scarf": "The same character from the reference image, now wearing a red knitted scarf; keep the "
    "face, colours and proportions unchanged",
    "poster": "The same character with the red scarf, waving on a snowy city street at dusk, as a "
    "winter campaign poster with room for a headline at the top",
}

with DAG(
    dag_id="aihubmix_gemini_character",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aihubmix", "example", "gemini"],
    params={"character": "a round orange fox mascot with big green eyes, flat vector style"},
) as dag:
    character = AIHubMixGeminiImageOperator(
        task_id="character",
        model="gemini-3-pro-image-preview",
        prompt=STEPS["character"],
        aspect_ratio="4:5",
        image_size="2K",
        seed=2026,
        output_uri=OUTPUT_URI,
    )
    scarf = AIHubMixGeminiImageOperator(
        task_id="scarf",
        prompt=STEPS["scarf"],
        image=character.output,
        aspect_ratio="4:5",
        output_uri=OUTPUT_URI,
    )
    poster = AIHubMixGeminiImageOperator(
        task_id="poster",
        prompt=STEPS["poster"],
        # The first drawing keeps the character; the scarf step carries the latest change.
        image=[character.output, scarf.output],
        aspect_ratio="4:5",
        output_uri=OUTPUT_URI,
    )

    @task
    def contact_sheet(*steps: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
        from airflow_provider_aihubmix.gallery.contact_sheet import render_contact_sheet
        from airflow_provider_aihubmix.storage import open_store, read_uri_bytes, task_prefix

        cells = [
            (read_uri_bytes(record["uri"], aws_conn_id="aws_default")[0], f"{name}: {record['model']}")
            for name, records in zip(STEPS, steps, strict=True)
            for record in records
        ]
        png = render_contact_sheet(cells, columns=len(cells), title="character -> scarf -> poster")
        ti = context["ti"]
        store = open_store(OUTPUT_URI, aws_conn_id="aws_default")
        prefix = task_prefix(ti.dag_id, context["run_id"], ti.task_id, -1)
        sheet = store.put_image_bytes(f"{prefix}/contact-sheet", png, metadata={"model": "contact-sheet"})
        print(f"Contact sheet: {sheet.uri}")
        return {"contact_sheet": sheet.uri, "images": [r["uri"] for records in steps for r in records]}

    character >> scarf >> poster
    contact_sheet(character.output, scarf.output, poster.output)
