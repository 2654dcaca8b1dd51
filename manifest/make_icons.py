"""Draw the Teams app icons: a ticked clipboard, in colour (192×192) and as an outline (32×32).

Run from anywhere: `.venv/bin/python manifest/make_icons.py [FOLDER]` (default: this folder).
The drawing is fixed, so running it again gives the same pictures.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
ACCENT = (0x00, 0x5F, 0x6B)  # the manifest's accentColor, so the icon sits on its own colour
CLIP = (0xB8, 0xD8, 0xDC)
WHITE = (255, 255, 255)
COLOR_SIZE = 192
OUTLINE_SIZE = 32
# Drawn four times larger and shrunk, so the colour icon's edges are smooth.
SCALE = 4


def color_icon() -> Image.Image:
    """Draw the full-colour icon: a white clipboard with a tick on the accent colour."""
    size = COLOR_SIZE * SCALE
    image = Image.new("RGB", (size, size), ACCENT)
    draw = ImageDraw.Draw(image)

    def box(left: int, top: int, right: int, bottom: int) -> tuple[int, int, int, int]:
        return (left * SCALE, top * SCALE, right * SCALE, bottom * SCALE)

    # Teams shows the symbol inside the middle 96×96 or so; keep it there.
    draw.rounded_rectangle(box(56, 46, 136, 152), radius=10 * SCALE, fill=WHITE)
    draw.rounded_rectangle(box(76, 36, 116, 58), radius=6 * SCALE, fill=CLIP)
    draw.rounded_rectangle(box(84, 30, 108, 42), radius=5 * SCALE, fill=CLIP)
    tick = [(72, 102), (90, 120), (122, 84)]
    draw.line([(x * SCALE, y * SCALE) for x, y in tick], fill=ACCENT, width=12 * SCALE)
    for x, y in tick:  # round the tick's ends and joint
        r = 6 * SCALE
        draw.ellipse((x * SCALE - r, y * SCALE - r, x * SCALE + r, y * SCALE + r), fill=ACCENT)
    return image.resize((COLOR_SIZE, COLOR_SIZE), Image.Resampling.LANCZOS)


def outline_icon() -> Image.Image:
    """Draw the outline icon: white lines on a transparent background, no shades between."""
    image = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    white = (*WHITE, 255)
    # The board, two pixels thick, with the clip on top.
    draw.rectangle((6, 5, 25, 29), outline=white, width=2)
    draw.rectangle((11, 2, 20, 7), fill=white)
    # The tick, stepped by hand: Teams wants each pixel fully white or fully transparent,
    # which an anti-aliased line would break.
    for x, y in [(10, 17), (11, 18), (12, 19), (13, 20), (14, 21), (15, 20), (16, 19),
                 (17, 18), (18, 17), (19, 16), (20, 15), (21, 14)]:  # fmt: skip
        draw.rectangle((x, y - 1, x, y + 1), fill=white)
    return image


def main(argv: list[str]) -> int:
    """Write color.png and outline.png into the folder given (default: this one)."""
    folder = Path(argv[1]) if len(argv) > 1 else HERE
    folder.mkdir(parents=True, exist_ok=True)
    color_icon().save(folder / "color.png", optimize=True)
    outline_icon().save(folder / "outline.png", optimize=True)
    print(f"wrote {folder / 'color.png'} and {folder / 'outline.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
