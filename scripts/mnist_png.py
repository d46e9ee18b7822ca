"""Write digits of the shipped MNIST IDX file as PNGs (inputs for `genforge interpolate`).

    python3 scripts/mnist_png.py 9001 9004 --out docs/inputs
"""
import argparse
import gzip
import os
import struct
import zlib


def png_gray(path, w, h, pixels):
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(pixels[y * w:(y + 1) * w]) for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("index", type=int, nargs="+")
    ap.add_argument("--images", default="data/mnist/mnist-10k-images-idx3-ubyte.gz")
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    data = gzip.open(a.images).read()
    _, n, h, w = struct.unpack(">IIII", data[:16])
    os.makedirs(a.out, exist_ok=True)
    for i in a.index:
        if not 0 <= i < n:
            raise SystemExit(f"index {i} is outside the {n} images")
        px = data[16 + i * h * w:16 + (i + 1) * h * w]
        path = os.path.join(a.out, f"mnist-{i}.png")
        png_gray(path, w, h, px)
        print(path)


if __name__ == "__main__":
    main()
