#!/usr/bin/env python3
"""Train NVlabs' own StyleGAN2-ADA networks and loss (stylegan2-ada-pytorch's `training/networks.py`
and `training/loss.py`, imported from a checkout, not copied here) on the shipped digits resized
to 32x32, at the widths of genforge's `stylegan2-mnist` preset, with NVlabs' phase schedule (Gmain,
Greg every 4, Dmain, Dreg every 16, lazy learning rates and betas scaled by `interval / (interval +
1)`) and G average; writes a grid of the average's images for 64 fixed latents every 250 steps as
TAG-STEP.png. The reference for genforge's training behaviour on the same data.

    python3 bench/torch_stylegan2_train.py STYLEGAN2_ADA_PYTORCH_DIR STEPS TAG
        [--lr 0.0025] [--gamma 1] [--pl 2] [--mbstd 4] [--mixing 0.9] [--batch 32] [--threads 2]

`--diffaugment` trains as the `stylegan2-mnist` preset does: D sees DiffAugment's colour,
translation (a tenth of the side, zero fill) and cutout (three tenths) on reals and fakes, in its
step and in G's, with balanced consistency regularization (`--bcr 10`, real and fake) on its
logits; R1 and the path length penalty stay NVlabs' (on plain images).

For an FID-against-time curve, `--minutes M --dump-every D` stops after M minutes of training time
and every D minutes writes `--dump-n` G-average samples (random noise, psi 1) to TAG-fid/tSSSSS/,
one line per dump in TAG-fid/times.jsonl, and the first `--dump-n` training digits to
TAG-fid/reals/, as bench/torch_stylegan_train.py does; bench/fid_curve.py scores them:

    python3 bench/torch_stylegan2_train.py ../stylegan2-ada-pytorch 1000000 sg2 --mbstd 32 \
        --diffaugment --minutes 25 --dump-every 2.5 --dump-n 1000 --threads 1
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
p.add_argument("--diffaugment", action="store_true")
p.add_argument("--bcr", type=float, default=10.0)
p.add_argument("--minutes", type=float, default=0.0, help="stop after this much training time (0: STEPS only)")
p.add_argument("--dump-every", type=float, default=0.0, help="minutes of training between sample dumps (0: none)")
p.add_argument("--dump-n", type=int, default=1000)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
sys.path.insert(0, a.repo)
from training import loss as nv_loss, networks  # noqa: E402

from fid_dumps import Dumps, to_u8  # noqa: E402

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


def diff_augment(img):
    """DiffAugment (Zhao et al. 2020) at genforge's ratios, one draw per image."""
    b, _, h, w = img.shape
    img = img + (torch.rand(b, 1, 1, 1) - 0.5)
    mean = img.mean(1, keepdim=True)
    img = (img - mean) * (torch.rand(b, 1, 1, 1) * 2) + mean
    mean = img.mean((1, 2, 3), keepdim=True)
    img = (img - mean) * (torch.rand(b, 1, 1, 1) + 0.5) + mean
    s = int(h * 0.1 + 0.5)
    pad = F.pad(img, (s, s, s, s))
    ty, tx = torch.randint(-s, s + 1, (b,)), torch.randint(-s, s + 1, (b,))
    img = torch.stack([pad[i, :, s + ty[i]:s + ty[i] + h, s + tx[i]:s + tx[i] + w] for i in range(b)])
    k = int(h * 0.3 + 0.5)
    mask = torch.ones(b, 1, h, w)
    oy = torch.randint(0, h + 1 - k % 2, (b,)) - k // 2
    ox = torch.randint(0, w + 1 - k % 2, (b,)) - k // 2
    for i in range(b):
        mask[i, :, max(oy[i], 0):max(oy[i] + k, 0), max(ox[i], 0):max(ox[i] + k, 0)] = 0
    return img * mask


def main_phase(name, real, z, gain):
    """Gmain / Dmain with D's inputs augmented (and bCR in D's step), NVlabs' run_G for the fakes."""
    if name == "Gmain":
        img, _ = loss.run_G(z, c, sync=True)
        F.softplus(-D(diff_augment(img), c)).mean().mul(gain).backward()
        return
    with torch.no_grad():
        fake, _ = loss.run_G(z, c, sync=False)
    ra, fa = D(diff_augment(real), c), D(diff_augment(fake), c)
    l = F.softplus(fa).mean() + F.softplus(-ra).mean()
    l = l + a.bcr * ((ra - D(real, c)).square().mean() + (fa - D(fake, c)).square().mean())
    l.mul(gain).backward()


phases = []
for name, module, interval in [("G", G, 4), ("D", D, 16)]:
    ratio = interval / (interval + 1)
    opt = torch.optim.Adam(module.parameters(), lr=a.lr * ratio, betas=(0.0, 0.99 ** ratio), eps=1e-8)
    phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
ema_beta = 0.5 ** (a.batch / 10000)
c = torch.zeros([a.batch, 0])
fixed = torch.randn(64, 128, generator=torch.Generator().manual_seed(123))
train_s, next_dump = 0.0, a.dump_every * 60
dumps = Dumps(a.tag, x, a.dump_n) if a.dump_every else None
t0 = time.time()
for step in range(a.steps):
    t = time.time()
    real = x[torch.randint(0, len(x), (a.batch,))]
    for name, module, opt, interval in phases:
        if step % interval != 0:
            continue
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        z = torch.randn(a.batch, 128)
        if a.diffaugment and name in ("Gmain", "Dmain"):
            main_phase(name, real, z, interval)
        else:
            loss.accumulate_gradients(name, real, c, z, c, sync=True, gain=interval)
        module.requires_grad_(False)
        opt.step()
    with torch.no_grad():
        for pe, p_ in zip(G_ema.parameters(), G.parameters()):
            pe.copy_(p_.lerp(pe, ema_beta))
        for be, b in zip(G_ema.buffers(), G.buffers()):
            be.copy_(b)
    train_s += time.time() - t
    done = a.minutes and train_s >= a.minutes * 60
    if a.dump_every and (train_s >= next_dump or done):
        dumps.write(step + 1, train_s, lambda k: G_ema(torch.randn(k, 128), torch.zeros([k, 0]), noise_mode="random"))
        next_dump += a.dump_every * 60
    if done:
        break
    if not a.dump_every and (step + 1) % 250 == 0:
        print(step + 1, f"{time.time() - t0:.0f}s", flush=True)
        with torch.no_grad():
            img = G_ema(fixed, torch.zeros([64, 0]), noise_mode="const")
        img = ((img.clamp(-1, 1) + 1) * 127.5).byte().numpy()[:, 0]
        grid = np.zeros((8 * 34 + 2, 8 * 34 + 2), np.uint8)
        for i in range(64):
            r, col = divmod(i, 8)
            grid[2 + r * 34:2 + r * 34 + 32, 2 + col * 34:2 + col * 34 + 32] = img[i]
        Image.fromarray(grid).save(f"{a.tag}-{step + 1}.png")
