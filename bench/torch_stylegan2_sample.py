#!/usr/bin/env python3
"""Sampling speed of NVlabs' own StyleGAN2-ADA generator at the FFHQ 1024 network's size (the
`_init_kwargs` of their `ffhq.pkl`: z and w 512, 8 mapping layers, `channel_base=32768`,
`channel_max=512`, `conv_clamp=256`), on the CPU in fp32 with their reference ops
(`force_fp32=True`, `noise_mode='random'`), the reference for `genforge bench-sample` on the
imported run. The code is imported from a checkout of NVlabs/stylegan2-ada-pytorch (not copied
here).

    python3 bench/torch_stylegan2_sample.py STYLEGAN2_ADA_PYTORCH_DIR [--save G.pkl] [--batch 1]
        [--reps 3] [--threads 2] [--resolution 1024]

`--save` pickles the (randomly initialised: formula weights) generator as NVlabs' training
loop does, `dict(G_ema=G)`, which `genforge import G.pkl --out RUN` turns into the run genforge
times, so both time the same weights. The pickle holds NVlabs' module source; keep it out of
the repository.
"""
import argparse
import pickle
import resource
import sys
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("stylegan2_ada_pytorch")
p.add_argument("--save")
p.add_argument("--batch", type=int, default=1)
p.add_argument("--reps", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--resolution", type=int, default=1024)
a = p.parse_args()
torch.set_num_threads(a.threads)
sys.path.insert(0, a.stylegan2_ada_pytorch)
from training import networks  # noqa: E402

torch.manual_seed(0)
G = networks.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=a.resolution,
                       img_channels=3, mapping_kwargs=dict(num_layers=8),
                       synthesis_kwargs=dict(channel_base=32768, channel_max=512,
                                             num_fp16_res=4, conv_clamp=256)).eval()
if a.save:
    with open(a.save, "wb") as f:
        pickle.dump(dict(G_ema=G), f)


def batch(seed):
    torch.manual_seed(seed)
    z = torch.randn(a.batch, 512)
    return G(z, None, truncation_psi=1, noise_mode="random", force_fp32=True)


with torch.no_grad():
    batch(0)
    t0 = time.perf_counter()
    for r in range(a.reps):
        batch(1 + r)
    dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"NVlabs stylegan2-ada-pytorch {a.resolution}x{a.resolution}: "
      f"{a.batch * a.reps / dt:.3f} img/s ({a.reps} batches of {a.batch}, {a.threads} threads, "
      f"peak RSS {rss:.0f} MiB)")
