"""The picture of mockkling's layers on the architecture page, drawn from the layers contract in
pyproject.toml (``[tool.importlinter]``), so the two cannot disagree: ``tests/test_docs.py``
checks that docs/layers.svg is what this draws. After changing the layers, redraw it::

    python tests/layers_picture.py

Not a test module: a plain SVG writer, no dependency (the site must render offline).
"""

from __future__ import annotations

import tomllib
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PICTURE = ROOT / "docs" / "layers.svg"

WIDTH, LABEL_WIDTH, MARGIN, GAP = 920, 150, 16, 10
PILL_HEIGHT, CHAR_WIDTH, PILL_PADDING = 28, 8.4, 18
FONT = "font-family='ui-monospace, SFMono-Regular, Menlo, Consolas, monospace' font-size='14'"
LABEL_FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, sans-serif' font-size='15'"
# One colour a layer, top (entry points) to bottom (primitives): light fills, readable in both themes.
FILLS = ["#e8eaf6", "#e3f2fd", "#e0f2f1", "#f1f8e9", "#fff8e1"]
STROKES = ["#3949ab", "#1e88e5", "#00897b", "#7cb342", "#ffa000"]


def layers() -> list[tuple[str, list[str]]]:
    """(name, modules) for each layer, top first, as the layers contract lists them. The names
    come from the contract's own name, "Layers: primitives, domain, ..." (bottom first)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    names = [name.strip() for name in contract["name"].split(":", 1)[1].split(",")][::-1]
    rows = [[module.strip() for module in line.split(":")] for line in contract["layers"]]
    if len(names) != len(rows):
        raise ValueError(f"the layers contract names {len(names)} layers but lists {len(rows)}")
    return list(zip(names, rows, strict=True))


def _pill_width(module: str) -> float:
    return len(module) * CHAR_WIDTH + 2 * PILL_PADDING


def _rows_of_pills(modules: list[str]) -> list[list[str]]:
    """The modules in reading order, wrapped to the band's width."""
    room = WIDTH - LABEL_WIDTH - 2 * MARGIN - 40
    rows: list[list[str]] = [[]]
    used = 0.0
    for module in modules:
        width = _pill_width(module) + GAP
        if rows[-1] and used + width > room:
            rows.append([])
            used = 0.0
        rows[-1].append(module)
        used += width
    return rows


def render() -> str:
    """The SVG document, deterministic (same layers, same bytes)."""
    parts: list[str] = []
    y = MARGIN
    for index, (name, modules) in enumerate(layers()):
        pill_rows = _rows_of_pills(modules)
        height = len(pill_rows) * (PILL_HEIGHT + GAP) + GAP
        fill, stroke = FILLS[index % len(FILLS)], STROKES[index % len(STROKES)]
        parts.append(
            f"<rect x='{MARGIN}' y='{y}' width='{WIDTH - 2 * MARGIN - 40}' height='{height}' rx='8' "
            f"fill='{fill}' stroke='{stroke}' stroke-width='1.5'/>"
        )
        parts.append(
            f"<text x='{MARGIN + 14}' y='{y + height / 2 + 5:.1f}' {LABEL_FONT} font-weight='600' "
            f"fill='#212121'>{escape(name)}</text>"
        )
        for row_number, row in enumerate(pill_rows):
            x = MARGIN + LABEL_WIDTH
            top = y + GAP + row_number * (PILL_HEIGHT + GAP)
            for module in row:
                width = _pill_width(module)
                parts.append(
                    f"<rect x='{x:.1f}' y='{top}' width='{width:.1f}' height='{PILL_HEIGHT}' rx='14' "
                    f"fill='#ffffff' stroke='{stroke}'/>"
                )
                parts.append(
                    f"<text x='{x + width / 2:.1f}' y='{top + PILL_HEIGHT / 2 + 5}' text-anchor='middle' "
                    f"{FONT} fill='#212121'>{escape(module)}</text>"
                )
                x += width + GAP
        y += height + GAP
    total = y - GAP + MARGIN
    # The arrow beside the bands: imports only go down.
    arrow_x = WIDTH - MARGIN - 16
    parts.append(
        f"<line x1='{arrow_x}' y1='{MARGIN + 6}' x2='{arrow_x}' y2='{total - MARGIN - 14}' "
        "stroke='#616161' stroke-width='2'/>"
    )
    parts.append(
        f"<polygon points='{arrow_x - 7},{total - MARGIN - 16} {arrow_x + 7},{total - MARGIN - 16} "
        f"{arrow_x},{total - MARGIN - 2}' fill='#616161'/>"
    )
    parts.append(
        f"<text x='{arrow_x - 6}' y='{total / 2:.1f}' {LABEL_FONT} fill='#616161' text-anchor='middle' "
        f"transform='rotate(-90 {arrow_x - 6} {total / 2:.1f})'>imports go down</text>"
    )
    body = "\n  ".join(parts)
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {total}' width='{WIDTH}' "
        f"height='{total}' role='img' aria-labelledby='title'>\n"
        "  <title id='title'>mockkling's layers: each module imports only from the layers below it</title>\n"
        f"  <rect width='{WIDTH}' height='{total}' fill='#ffffff'/>\n"
        f"  {body}\n</svg>\n"
    )


if __name__ == "__main__":
    PICTURE.write_text(render())
    print(f"wrote {PICTURE.relative_to(ROOT)}")
