#!/usr/bin/env python3
"""Draw the RadAssist icon and write it as PNG, Windows .ico and macOS .icns (Pillow writes all three).

Run once after changing the drawing; the outputs are committed so Windows/macOS builds need no step:
    python installer/icons/make_icons.py
The picture: a frontal chest film (dark lungs in a bright thorax) with one highlighted region in the
right lower zone, the way the viewer shows a finding's saliency.
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIDE = 1024
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def draw(side: int = SIDE) -> Image.Image:
    scale = side / 1024
    icon = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    film = ImageDraw.Draw(icon)
    film.rounded_rectangle((40 * scale, 40 * scale, 984 * scale, 984 * scale), radius=180 * scale,
                           fill=(18, 32, 52, 255))
    body = Image.new("L", (side, side), 0)  # soft tissue and bone are bright on a radiograph...
    ImageDraw.Draw(body).rounded_rectangle((150 * scale, 150 * scale, 874 * scale, 900 * scale),
                                           radius=260 * scale, fill=200)
    body = body.filter(ImageFilter.GaussianBlur(30 * scale))
    icon.paste((214, 222, 232, 255), (0, 0), body)
    lungs = Image.new("L", (side, side), 0)  # ...the air-filled lungs are dark
    shapes = ImageDraw.Draw(lungs)
    shapes.ellipse((220 * scale, 230 * scale, 490 * scale, 820 * scale), fill=235)  # patient's right lung
    shapes.ellipse((534 * scale, 250 * scale, 804 * scale, 820 * scale), fill=235)  # patient's left lung
    lungs = lungs.filter(ImageFilter.GaussianBlur(22 * scale))
    icon.paste((28, 40, 58, 255), (0, 0), lungs)
    glow = Image.new("L", (side, side), 0)
    ImageDraw.Draw(glow).ellipse((250 * scale, 560 * scale, 430 * scale, 760 * scale), fill=230)
    glow = glow.filter(ImageFilter.GaussianBlur(30 * scale))
    icon.paste((255, 140, 40, 255), (0, 0), glow)  # the finding's saliency, right lower zone
    return icon


def main() -> None:
    icon = draw()
    icon.save(HERE / "radassist.png")
    icon.save(HERE / "radassist.ico", sizes=ICO_SIZES)
    icon.save(HERE / "radassist.icns")
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("radassist.*"))))


if __name__ == "__main__":
    main()
