#!/usr/bin/env python3
"""Sampling speed of BigGAN-PyTorch's own generator at the 138k ImageNet checkpoint's size
(`G_ch=96`, `dim_z=120`, `shared_dim=128`, hier, attention at 64, 1,000 classes, eval mode),
the reference for `genforge bench-sample` on a `biggan-imagenet128` run. The code is imported
from a checkout of ajbrock/BigGAN-PyTorch (not copied here).

    python3 bench/torch_biggan_sample.py BIGGAN_PYTORCH_DIR [--save G.pth] [--batch 8]
        [--reps 3] [--threads 2] [--truncation 0.5]

`--save` writes the (randomly initialised) generator's state dict, which
`genforge import G.pth --out RUN` turns into the run genforge times, so both time the same
weights. Latents are drawn by resampling from the truncated normal, as genforge does.
"""
import argparse
import resource
import sys
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("biggan_pytorch")
p.add_argument("--save")
p.add_argument("--batch", type=int, default=8)
p.add_argument("--reps", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--truncation", type=float, default=0.5)
a = p.parse_args()
torch.set_num_threads(a.threads)
sys.path.insert(0, a.biggan_pytorch)
import BigGAN  # noqa: E402

torch.manual_seed(0)
G = BigGAN.Generator(G_ch=96, dim_z=120, shared_dim=128, hier=True, G_shared=True,
                     G_attn="64", resolution=128, n_classes=1000, SN_eps=1e-6, BN_eps=1e-5,
                     G_init="ortho", no_optim=True).eval()
if a.save:
    torch.save(G.state_dict(), a.save)


def truncated(n, d, t):
    z = torch.randn(n, d)
    while True:
        bad = z.abs() > t
        if not bad.any():
            return z
        z[bad] = torch.randn(int(bad.sum()))


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    z = truncated(a.batch, G.dim_z, a.truncation)
    y = torch.randint(0, 1000, (a.batch,), generator=g)
    return G(z, G.shared(y))


with torch.no_grad():
    batch(0)
    t0 = time.perf_counter()
    for r in range(a.reps):
        batch(1 + r)
    dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"sampling: {a.batch * a.reps / dt:.2f} img/s ({a.reps} batches of {a.batch}, "
      f"peak RSS {rss:.0f} MiB, torch {torch.__version__}, {torch.get_num_threads()} threads)")
