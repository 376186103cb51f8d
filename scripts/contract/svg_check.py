#!/usr/bin/env python3
"""The run chart's picture, drawn by a browser and looked at.

Fetches `GET /api/v1/measures/{id}/run-chart.svg` of the demo's measure (the one that shifts
after its first PDSA cycle) from a live server started with `serve --demo`, under both rule sets,
checks that it is an SVG a screen reader can name (`role="img"`, `<title>` and `<desc>` first,
800×400), has headless Chromium render it to a PNG, and reads the PNG with Pillow: it must be
800×400 and hold the picture, not a blank or broken page (enough drawn pixels, and the colours
of the measure's line, its signals, its median and its target). The PNGs stay in OUT for a
person to look at:

    python scripts/contract/svg_check.py --base-url http://127.0.0.1:8080 --out DIR
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
from PIL import Image

from checks import CheckFailure, expect, fail, ok

API = "/api/v1"
SVG_NS = "{http://www.w3.org/2000/svg}"
# The chart's colours (src/learning/chart.rs), each with how many pixels of it a chart of the
# demo's 24 points draws at the least.
COLOURS = {
    "the measure's line and points": ((31, 95, 168), 400),
    "the signals' triangles": ((230, 97, 0), 300),
    "the median": ((55, 55, 55), 150),
    "the target": ((27, 127, 59), 300),
}


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 24) -> bool:
    return all(abs(p - c) <= tolerance for p, c in zip(pixel[:3], colour))


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    fail("a headless browser to render the SVG", "chromium on PATH", None)


def render(svg: Path, png: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
             "--window-size=800,400", svg.as_uri()],
            check=False, capture_output=True, timeout=120,
        )
    if not png.exists() or png.stat().st_size == 0:
        fail(f"Chromium renders {svg.name} to a PNG", str(png), "no file")


def check_svg(what: str, text: str) -> None:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        fail(f"{what}: well-formed XML", "an SVG document", str(error))
    expect(f"{what}: the root element", f"{SVG_NS}svg", root.tag)
    expect(f"{what}: role", "img", root.get("role"))
    expect(f"{what}: width", "800", root.get("width"))
    expect(f"{what}: height", "400", root.get("height"))
    first, second = list(root)[:2]
    expect(f"{what}: <title> first", f"{SVG_NS}title", first.tag)
    expect(f"{what}: <desc> second", f"{SVG_NS}desc", second.tag)
    labelled = (root.get("aria-labelledby") or "").split()
    expect(f"{what}: aria-labelledby names the title and the description",
           [first.get("id"), second.get("id")], labelled)
    description = second.text or ""
    if "shift" not in description or "above the median" not in description:
        fail(f"{what}: <desc> tells the shift in words", "a shift ... above the median", description)


def check_png(what: str, png: Path) -> None:
    with Image.open(png) as image:
        expect(f"{what}: the PNG's size", (800, 400), image.size)
        raw = image.convert("RGB").tobytes()
    pixels = [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]
    drawn = sum(1 for p in pixels if p != (255, 255, 255))
    if drawn < len(pixels) * 0.03:
        fail(f"{what}: the PNG holds a picture", "at least 3 % of pixels drawn", drawn)
    colours = len(set(pixels))
    if colours < 20:
        fail(f"{what}: the PNG holds a chart, not a flat page", ">= 20 colours", colours)
    for name, (colour, least) in COLOURS.items():
        count = sum(1 for p in pixels if near(p, colour))
        if count < least:
            fail(f"{what}: {name} drawn in {colour}", f">= {least} pixels", count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    http = httpx.Client(base_url=args.base_url, timeout=30)
    try:
        measures = http.get(f"{API}/initiatives/1/measures").json()["items"]
        if not measures:
            fail("the demo's initiative has a measure", ">= 1", 0)
        measure = measures[0]["id"]
        for rules in ("ihi", "anhoej"):
            what = f"GET /measures/{measure}/run-chart.svg?rules={rules}"
            response = http.get(f"{API}/measures/{measure}/run-chart.svg", params={"rules": rules})
            expect(f"{what}: status", 200, response.status_code)
            expect(f"{what}: Content-Type", "image/svg+xml", response.headers.get("content-type"))
            if rules == "ihi":
                check_svg(what, response.text)
            svg = args.out / f"run-chart-{rules}.svg"
            svg.write_text(response.text, encoding="utf-8")
            png = svg.with_suffix(".png")
            png.unlink(missing_ok=True)
            render(svg, png)
            check_png(what, png)
            ok(f"{what}: rendered by Chromium to {png} ({png.stat().st_size} bytes) and looked at")
    except CheckFailure as failure:
        print(f"FAIL svg_check: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
