"""Screenshot the gallery of the last demo run into docs/images/gallery.png (the README shows it).

Run ``bash scripts/demo.sh`` first. Serves that run with the gallery plugin (``demo_serve``)
and photographs it in headless Chromium (the Debian package, through playwright).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from demo_serve import gallery_server  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=str(REPO / "demo-output"), help="the demo's output folder")
    parser.add_argument("--to", default=str(REPO / "docs" / "images" / "gallery.png"))
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    out = Path(args.output).resolve()
    last = json.loads((out / "last-run.json").read_text())
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("apt-get install chromium first")
    from playwright.sync_api import sync_playwright

    with gallery_server(out / "airflow-home", out / "api-server.log") as base_url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        path = f"/aihubmix/gallery/{quote(last['dag_id'], safe='')}/{quote(last['run_id'], safe='')}"
        page.goto(base_url + path)
        page.wait_for_selector("body[data-loaded=true]", timeout=60_000)
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        # The whole page in the viewport, every image decoded: nothing left blank in the picture.
        height = page.evaluate("document.documentElement.scrollHeight")
        page.set_viewport_size({"width": args.width, "height": height})
        page.evaluate("Promise.all([...document.images].map(i => i.decode()))")
        page.wait_for_timeout(500)
        Path(args.to).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.to, full_page=True)
        browser.close()
    print(f"Gallery screenshot: {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
