#!/usr/bin/env python3
"""Train NVlabs' own StyleGAN2-ADA networks and loss (stylegan2-ada-pytorch's `training/networks.py`
and `training/loss.py`, imported from a checkout, not copied here) on the shipped digits resized
to 32x32, at the widths of genforge's `stylegan2-mnist` preset, with NVlabs' phase schedule (Gmain,
Greg every 4, Dmain, Dreg every 16, lazy learning rates and betas scaled by `interval / (interval +
1)`) and G average; writes a grid of the average's images for 64 fixed latents every 250 steps as
TAG-STEP.png. The reference for genforge's training behaviour on the same data.

    python3 bench/torch_stylegan2_train.py STYLEGAN2_ADA_PYTORCH_DIR STEPS TAG
        [--lr 0.0025] [--gamma 1] [--pl 2] [--mbstd 4] [--mixing 0.9] [--batch 32] [--threads 2]
"""
import argparse
import copy
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("repo")
p.add_argument("steps", type=int)
p.add_argument("tag")
p.add_argument("--lr", type=float, default=0.0025)
p.add_argument("--gamma", type=float, default=1.0)
p.add_argument("--pl", type=float, default=2.0)
p.add_argument("--mbstd", type=int, default=4)
p.add_argument("--mixing", type=float, default=0.9)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
sys.path.insert(0, a.repo)
from training import loss as nv_loss, networks  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
raw = gzip.open(os.path.join(here, "..", "data", "mnist", "mnist-10k-images-idx3-ubyte.gz")).read()
x = torch.tensor(np.frombuffer(raw[16:], np.uint8).reshape(-1, 1, 28, 28).astype(np.float32) / 127.5 - 1)
x = F.interpolate(x, size=32, mode="bilinear", align_corners=False)

common = dict(channel_base=512, channel_max=128, num_fp16_res=0, conv_clamp=256)
G = networks.Generator(z_dim=128, c_dim=0, w_dim=128, img_resolution=32, img_channels=1,
                       mapping_kwargs=dict(num_layers=2), synthesis_kwargs=common).train()
D = networks.Discriminator(c_dim=0, img_resolution=32, img_channels=1, architecture="resnet",
                           epilogue_kwargs=dict(mbstd_group_size=a.mbstd), **common).train()
G_ema = copy.deepcopy(G).eval().requires_grad_(False)
loss = nv_loss.StyleGAN2Loss("cpu", G.mapping, G.synthesis, D, r1_gamma=a.gamma, pl_weight=a.pl,
                             style_mixing_prob=a.mixing)
phases = []
for name, module, interval in [("G", G, 4), ("D", D, 16)]:
    ratio = interval / (interval + 1)
    opt = torch.optim.Adam(module.parameters(), lr=a.lr * ratio, betas=(0.0, 0.99 ** ratio), eps=1e-8)
    phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
ema_beta = 0.5 ** (a.batch / 10000)
c = torch.zeros([a.batch, 0])
fixed = torch.randn(64, 128, generator=torch.Generator().manual_seed(123))
t0 = time.time()
for step in range(a.steps):
    real = x[torch.randint(0, len(x), (a.batch,))]
    for name, module, opt, interval in phases:
        if step % interval != 0:
            continue
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        loss.accumulate_gradients(name, real, c, torch.randn(a.batch, 128), c, sync=True,
                                  gain=interval)
        module.requires_grad_(False)
        opt.step()
    with torch.no_grad():
        for pe, p_ in zip(G_ema.parameters(), G.parameters()):
            pe.copy_(p_.lerp(pe, ema_beta))
        for be, b in zip(G_ema.buffers(), G.buffers()):
            be.copy_(b)
    if (step + 1) % 250 == 0:
        print(step + 1, f"{time.time() - t0:.0f}s", flush=True)
        with torch.no_grad():
            img = G_ema(fixed, torch.zeros([64, 0]), noise_mode="const")
        img = ((img.clamp(-1, 1) + 1) * 127.5).byte().numpy()[:, 0]
        grid = np.zeros((8 * 34 + 2, 8 * 34 + 2), np.uint8)
        for i in range(64):
            r, col = divmod(i, 8)
            grid[2 + r * 34:2 + r * 34 + 32, 2 + col * 34:2 + col * 34 + 32] = img[i]
        Image.fromarray(grid).save(f"{a.tag}-{step + 1}.png")
