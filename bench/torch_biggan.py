"""PyTorch reference of genforge's BigGAN presets, layer for layer, timed as `genforge bench`
times them: each step is a D step (hinge loss on real and fake), and every `d_steps`-th step
also a G step (hinge loss plus orthogonal regularization) and the G-average update.

The network follows BigGAN-PyTorch's layout as genforge builds it: spectral norm on every conv
and linear, class-conditional batch norm from [shared embedding, z chunk] (hierarchical z),
residual up/down blocks, nearest upsampling, average-pool downsampling, SAGAN self-attention
(no spectral norm inside, as genforge's), projection discriminator.

    python3 bench/torch_biggan.py --preset mnist --batch 64 --steps 6 --warmup 2 --threads 2
"""
import argparse
import copy
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SN = nn.utils.spectral_norm

PRESETS = {
    # z, channels, resolution, classes, ch, shared, attention, d_steps, ortho
    "mnist": dict(z=64, c=1, res=32, classes=10, ch=16, shared=32, attn=(), d_steps=2, ortho=1e-4),
    "emoji": dict(z=64, c=3, res=32, classes=10, ch=16, shared=32, attn=(), d_steps=2, ortho=1e-4),
    "cifar10": dict(z=128, c=3, res=32, classes=10, ch=64, shared=128, attn=(), d_steps=4, ortho=0.0),
    "imagenet128": dict(z=120, c=3, res=128, classes=1000, ch=96, shared=128, attn=(64,), d_steps=2, ortho=1e-4),
}


def arch(p):
    r, ch = p["res"], p["ch"]
    ups = r.bit_length() - 3
    if r <= 32:
        g_mult = [4] * (ups + 1)
        g = [(ch * g_mult[i], ch * g_mult[i + 1], 8 << i) for i in range(ups)]
        downs = r.bit_length() - 4
        d, cin, res = [], p["c"], r
        for i in range(downs + 2):
            down = i < downs
            d.append((cin, 4 * ch, down, res))
            cin = 4 * ch
            res = res // 2 if down else res
    else:
        g_mult = [16] + [16 >> i for i in range(ups)]
        g = [(ch * g_mult[i], ch * g_mult[i + 1], 8 << i) for i in range(ups)]
        downs = r.bit_length() - 3
        d, cin, res = [], p["c"], r
        for i in range(downs):
            m = min(1 << i, 16)
            d.append((cin, ch * m, True, res))
            cin, res = ch * m, res // 2
        d.append((cin, ch * 16, False, res))
    return g, d


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.q = nn.Conv2d(c, max(c // 8, 1), 1)
        self.k = nn.Conv2d(c, max(c // 8, 1), 1)
        self.v = nn.Conv2d(c, c, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.q(x).flatten(2)
        k = self.k(x).flatten(2).transpose(1, 2)
        beta = torch.softmax(k @ q, dim=2)
        o = (beta @ self.v(x).flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        return x + self.gamma * o


class CBN(nn.Module):
    def __init__(self, c, cond):
        super().__init__()
        self.bn = nn.BatchNorm2d(c, affine=False)
        self.gain = SN(nn.Linear(cond, c, bias=False))
        self.bias = SN(nn.Linear(cond, c, bias=False))

    def forward(self, x, e):
        return self.bn(x) * (1 + self.gain(e))[:, :, None, None] + self.bias(e)[:, :, None, None]


class GBlock(nn.Module):
    def __init__(self, cin, cout, cond):
        super().__init__()
        self.bn1, self.bn2 = CBN(cin, cond), CBN(cout, cond)
        self.conv1 = SN(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = SN(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = SN(nn.Conv2d(cin, cout, 1))

    def forward(self, x, e):
        h = F.interpolate(F.relu(self.bn1(x, e)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), e)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class Generator(nn.Module):
    def __init__(self, p):
        super().__init__()
        g, _ = arch(p)
        self.slots = len(g) + 1
        self.chunk = p["z"] // self.slots
        self.shared = nn.Embedding(p["classes"], p["shared"])
        self.ch0 = g[0][0]
        self.linear = SN(nn.Linear(self.chunk, 16 * self.ch0))
        cond = p["shared"] + self.chunk
        self.blocks = nn.ModuleList([GBlock(i, o, cond) for i, o, _ in g])
        self.attn = nn.ModuleList([Attention(o) if r in p["attn"] else nn.Identity() for _, o, r in g])
        self.out_bn = nn.BatchNorm2d(g[-1][1])
        self.out_conv = SN(nn.Conv2d(g[-1][1], p["c"], 3, padding=1))

    def forward(self, z, y):
        zs = torch.split(z, self.chunk, 1)
        e = self.shared(y)
        h = self.linear(zs[0]).view(z.shape[0], self.ch0, 4, 4)
        for block, attn, zi in zip(self.blocks, self.attn, zs[1:]):
            h = attn(block(h, torch.cat([e, zi], 1)))
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class DBlock(nn.Module):
    def __init__(self, cin, cout, down, pre):
        super().__init__()
        self.conv1 = SN(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = SN(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = SN(nn.Conv2d(cin, cout, 1)) if (cin != cout or down) else None
        self.down, self.pre = down, pre

    def forward(self, x):
        h = F.relu(x) if self.pre else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.pre:
            s = self.skip(s) if self.skip is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        else:
            s = F.avg_pool2d(s, 2) if self.down else s
            s = self.skip(s) if self.skip is not None else s
        return h + s


class Discriminator(nn.Module):
    def __init__(self, p):
        super().__init__()
        _, d = arch(p)
        self.blocks = nn.ModuleList([DBlock(i, o, dn, k > 0) for k, (i, o, dn, _) in enumerate(d)])
        self.attn = nn.ModuleList([Attention(o) if r in p["attn"] else nn.Identity() for _, o, _, r in d])
        c = d[-1][1]
        self.linear = SN(nn.Linear(c, 1))
        self.embed = SN(nn.Embedding(p["classes"], c))

    def forward(self, x, y):
        h = x
        for block, attn in zip(self.blocks, self.attn):
            h = attn(block(h))
        h = F.relu(h).sum((2, 3))
        return (self.linear(h) + (self.embed(y) * h).sum(1, keepdim=True)).flatten()


def ortho(g, beta):
    total = 0.0
    for name, p in g.named_parameters():
        if p.dim() < 2 or "shared" in name or "attn" in name:
            continue
        w = p.flatten(1)
        gram = w @ w.t()
        total = total + ((gram * (1 - torch.eye(w.shape[0]))) ** 2).sum()
    return beta * total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="mnist", choices=PRESETS)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    p = PRESETS[args.preset]
    g, d = Generator(p), Discriminator(p)
    g_ema = copy.deepcopy(g).requires_grad_(False)
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.0, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.0, 0.999))
    b = args.batch
    real = torch.rand(b, p["c"], p["res"], p["res"]) * 2 - 1

    def step(i):
        y = torch.randint(0, p["classes"], (b,))
        with torch.no_grad():
            fake = g(torch.randn(b, p["z"]), y)
        loss = F.relu(1 - d(real, y)).mean() + F.relu(1 + d(fake, y)).mean()
        od.zero_grad()
        loss.backward()
        od.step()
        if i % p["d_steps"] == 0:
            gl = -d(g(torch.randn(b, p["z"]), y), y).mean()
            if p["ortho"] > 0:
                gl = gl + ortho(g, p["ortho"])
            og.zero_grad()
            gl.backward()
            og.step()
            with torch.no_grad():
                for pe, pg in zip(g_ema.parameters(), g.parameters()):
                    pe.lerp_(pg, 1 - 0.999)

    for i in range(1, args.warmup + 1):
        step(i)
    t0 = time.perf_counter()
    for i in range(1, args.steps + 1):
        step(i)
    dt = (time.perf_counter() - t0) / args.steps
    count = lambda m: sum(q.numel() for q in m.parameters())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"biggan-{args.preset}: {dt:.3f} s/step, {b / dt:.1f} img/s, peak RSS {rss:.0f} MiB, "
        f"G {count(g) / 1e6:.3f}M D {count(d) / 1e6:.3f}M params, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


main()
