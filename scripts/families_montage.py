"""The README's first picture: grids of the gallery (docs/README.md gives each one's command) side
by side at one height. Needs Pillow: `python3 scripts/families_montage.py`."""
from pathlib import Path

from PIL import Image

DOCS = Path(__file__).resolve().parent.parent / "docs"
GRIDS = [
    "dcgan-mnist-step300.png",
    "sagan-mnist-step700.png",
    "vitgan-mnist-stylegan2d-best.png",
    "stylegan-mnist-samples.png",
    "biggan-mnist-classes.png",
    "pggan-mnist-32x32-step9000.png",
    "vqvae2-mnist-samples-class-conditional.png",
    "biggan-emoji-classes.png",
]
HEIGHT, GAP = 200, 8

images = [Image.open(DOCS / g).convert("RGB") for g in GRIDS]
images = [im.resize((HEIGHT * im.width // im.height, HEIGHT), Image.LANCZOS) for im in images]
out = Image.new("RGB", (sum(im.width for im in images) + GAP * (len(images) - 1), HEIGHT), "white")
x = 0
for im in images:
    out.paste(im, (x, 0))
    x += im.width + GAP
out.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(DOCS / "families.png", optimize=True)
