"""A screenshot of a `distill report` page from headless Chromium, hovering the kept token
the teacher was least sure of, so the picture shows the top-k box (docs/img/report.png).

    python scripts/report_screenshot.py RUN/report.html docs/img/report.png

Needs the chromium binary (Debian: apt-get install chromium) and playwright (dev extra).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the report's HTML file")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1100, help="viewport width in pixels")
    parser.add_argument("--until", default="rows", help="the last section shown (its id)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        page.goto(args.page.resolve().as_uri())
        tokens = page.locator(".pane:not([hidden]) .tok")
        entropies = [float(e) for e in tokens.evaluate_all("ts => ts.map(t => t.dataset.e)")]
        if entropies:
            tokens.nth(entropies.index(max(entropies))).hover()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        bottom = page.locator(f"section#{args.until}").evaluate(
            "s => s.getBoundingClientRect().bottom + window.scrollY"
        )
        clip = {"x": 0, "y": 0, "width": args.width, "height": bottom + 16}
        page.screenshot(path=str(args.out), full_page=True, clip=clip)
        browser.close()
    print(f"{args.out}: {args.out.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
