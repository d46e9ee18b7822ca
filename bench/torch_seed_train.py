"""PyTorch reference training of the DCGAN/SAGAN article's DCGAN / SAGAN on the data genforge ships.

Same data (data/mnist, digits 7 and 8, the first 200 of each in file order, bilinear resize to
64x64, [-1, 1]), same models (imported from ../shared/reference/torch_gan_step.py, the DCGAN/SAGAN article's
layer tables), same losses and optimizers as genforge's presets. Writes fixed-latent grids with G in
eval mode, as `genforge train` does, so the two can be compared step for step.

    pip install torch
    python3 bench/torch_seed_train.py --model sagan --steps 100 --out /tmp/torch-sagan
"""
import argparse, gzip, os, struct, sys, time, zlib
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT.parent / "shared" / "reference"))
from torch_gan_step import discriminator, generator  # noqa: E402


def load_mnist78(per_class=200):
    raw = gzip.open(ROOT / "data/mnist/mnist-10k-images-idx3-ubyte.gz").read()
    lab = gzip.open(ROOT / "data/mnist/mnist-10k-labels-idx1-ubyte.gz").read()[8:]
    n, h, w = struct.unpack(">III", raw[4:16])
    pix = torch.tensor(list(raw[16:]), dtype=torch.float32).view(n, 1, h, w)
    keep, count = [], {7: 0, 8: 0}
    for i, l in enumerate(lab):
        if l in count and count[l] < per_class:
            count[l] += 1
            keep.append(i)
    x = F.interpolate(pix[keep], size=(64, 64), mode="bilinear", align_corners=False)
    return x / 127.5 - 1.0


def write_png(path, img):
    """img: [H, W] uint8 tensor."""
    h, w = img.shape
    rows = b"".join(b"\x00" + bytes(img[y].tolist()) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def grid(x, ncol=8, pad=2):
    n, _, h, w = x.shape
    nrow = (n + ncol - 1) // ncol
    out = torch.zeros(nrow * (h + pad) + pad, ncol * (w + pad) + pad, dtype=torch.uint8)
    v = ((x[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = v[i]
    return out


def init_weights(m):
    name = m.__class__.__name__
    if "Conv" in name:
        w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
        torch.nn.init.normal_(w.data, 0.0, 0.02)
        torch.nn.init.constant_(m.bias.data, 0)
    elif "BatchNorm" in name:
        torch.nn.init.normal_(m.weight.data, 1.0, 0.02)
        torch.nn.init.constant_(m.bias.data, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["dcgan", "sagan"], default="sagan")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--loss", choices=["bce", "hinge"], help="default: bce for dcgan, hinge for sagan")
    ap.add_argument("--g-lr", type=float)
    ap.add_argument("--d-lr", type=float)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-every", type=int, default=25)
    ap.add_argument("--out", default="torch-run")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    sagan = a.model == "sagan"
    hinge = (a.loss or ("hinge" if sagan else "bce")) == "hinge"
    data = load_mnist78()
    g, d = generator(20, 64, sagan), discriminator(64, sagan)
    g.apply(init_weights)
    d.apply(init_weights)
    g_lr, d_lr = (1e-4, 4e-4) if sagan else (2e-4, 2e-4)
    g_lr, d_lr = a.g_lr or g_lr, a.d_lr or d_lr
    og = torch.optim.Adam(g.parameters(), g_lr, betas=(0.0, 0.9))
    od = torch.optim.Adam(d.parameters(), d_lr, betas=(0.0, 0.9))
    bce = torch.nn.BCEWithLogitsLoss()
    fixed = torch.randn(64, 20, 1, 1)
    os.makedirs(a.out, exist_ok=True)
    bs, step, t0 = 64, 0, time.time()
    while step < a.steps:
        perm = torch.randperm(len(data))
        for k in range(len(data) // bs):
            real = data[perm[k * bs:(k + 1) * bs]]
            fake = g(torch.randn(bs, 20, 1, 1)).detach()
            dr, df = d(real).view(-1), d(fake).view(-1)
            if hinge:
                d_loss = torch.relu(1 - dr).mean() + torch.relu(1 + df).mean()
            else:
                d_loss = bce(dr, torch.ones(bs)) + bce(df, torch.zeros(bs))
            od.zero_grad(); d_loss.backward(); od.step()
            df = d(g(torch.randn(bs, 20, 1, 1))).view(-1)
            g_loss = -df.mean() if hinge else bce(df, torch.ones(bs))
            og.zero_grad(); g_loss.backward(); og.step()
            step += 1
            if step % 5 == 0:
                print(f"step {step} d_loss {d_loss.item():.4f} g_loss {g_loss.item():.4f} "
                      f"{time.time() - t0:.0f}s", flush=True)
            if step % a.sample_every == 0 or step == a.steps:
                g.eval()
                with torch.no_grad():
                    write_png(f"{a.out}/step-{step:07d}.png", grid(g(fixed)))
                g.train()
            if step == a.steps:
                break


if __name__ == "__main__":
    main()
