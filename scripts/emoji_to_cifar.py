#!/usr/bin/env python3
"""Convert the Noto emoji of the npm package `emoji-datasource-google` into genforge's shipped
colour data set: every base emoji's 64x64 RGBA PNG (skin-tone variations are left out: they
repeat their base image in another skin colour and would make "People & Body" 60% of the
set) composited on white, resized to 32x32 (Lanczos), labelled
with its emoji.json category, shuffled in a fixed order, written in the CIFAR-10 binary layout
(one label byte, then 1024 red, 1024 green, 1024 blue bytes per image) inside a .tar.gz, which
genforge's `cifar10` reader loads as it is.

    npm pack emoji-datasource-google && tar xzf emoji-datasource-google-*.tgz
    python3 scripts/emoji_to_cifar.py package data/emoji
"""
import io
import json
import random
import sys
import tarfile
from pathlib import Path

from PIL import Image

SIDE = 32


def categories(package: Path):
    """image file name -> category, for every base emoji."""
    return {e["image"]: e["category"] for e in json.loads((package / "emoji.json").read_text())}


def main(package: str, dest: str):
    package, dest = Path(package), Path(dest)
    cats = categories(package)
    names = sorted(set(cats.values()))
    files = sorted((package / "img" / "google" / "64").glob("*.png"))
    records = []
    for f in files:
        if f.name not in cats:
            continue
        rgba = Image.open(f).convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB").resize((SIDE, SIDE), Image.LANCZOS)
        planes = b"".join(rgb.getchannel(c).tobytes() for c in range(3))
        records.append(bytes([names.index(cats[f.name])]) + planes)
    random.Random(0).shuffle(records)
    dest.mkdir(parents=True, exist_ok=True)
    blob = b"".join(records)
    with tarfile.open(dest / "emoji-32x32-binary.tar.gz", "w:gz", compresslevel=9) as tar:
        info = tarfile.TarInfo("emoji-32x32-binary/data_batch_1.bin")
        info.size = len(blob)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(blob))
    (dest / "categories.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names)))
    counts = {n: sum(r[0] == i for r in records) for i, n in enumerate(names)}
    print(f"{len(records)} images of {len(files)} files; per category: {counts}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
