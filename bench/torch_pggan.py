"""PyTorch reference for `genforge bench pggan-*`: the same Progressive GAN at its final
resolution (growing finished, alpha 1), layer for layer, timed as genforge times it.

Generator: z normalised to unit second moment; equalized dense to 4x4 (gain sqrt(2)/4), LeakyReLU
0.2, pixel norm; conv3x3, LReLU, PN; per resolution nearest 2x upsample, two (conv3x3, LReLU, PN);
toRGB 1x1 (gain 1). Discriminator: fromRGB 1x1 + LReLU; per resolution conv3x3, LReLU, conv3x3,
2x2 average pool, LReLU; minibatch stddev (group 4); conv3x3, LReLU; dense, LReLU; dense (gain 1).
Every layer has an equalized learning rate. Loss: WGAN-GP (lambda 10, PyTorch's exact double
backward) with the drift term 0.001 D(x)^2; Adam (0, 0.99), lr 0.001; G weight average 0.999.
One iteration = D step (with the penalty) + G step + average update.

    pip install torch
    python bench/torch_pggan.py --preset mnist --batch 32 --steps 8 --threads 2
"""
import argparse, copy, math, resource, time
import torch, torch.nn as nn, torch.nn.functional as F

PRESETS = {  # z, channels, resolution, channel_base, channel_max, mbstd group
    "mnist": (128, 1, 32, 256, 128, 4),
    "emoji": (128, 3, 32, 256, 128, 4),
    "celebahq": (512, 3, 1024, 8192, 512, 4),
}
SQRT2 = math.sqrt(2)


def nf(r, base, cmax):
    return max(1, min(base // (r // 2), cmax))


class EqConv(nn.Module):
    def __init__(self, i, o, k, gain=SQRT2):
        super().__init__()
        self.w = nn.Parameter(torch.randn(o, i, k, k))
        self.b = nn.Parameter(torch.zeros(o))
        self.g, self.p = gain / math.sqrt(i * k * k), k // 2

    def forward(self, x):
        return F.conv2d(x, self.w * self.g, self.b, padding=self.p)


class EqLinear(nn.Module):
    def __init__(self, i, o, gain=SQRT2, bias=True):
        super().__init__()
        self.w = nn.Parameter(torch.randn(o, i))
        self.b = nn.Parameter(torch.zeros(o)) if bias else None
        self.g = gain / math.sqrt(i)

    def forward(self, x):
        return F.linear(x, self.w * self.g, self.b)


def lrelu(x):
    return F.leaky_relu(x, 0.2)


def pn(x):
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


class Generator(nn.Module):
    def __init__(self, z, ch, res, base, cmax):
        super().__init__()
        c4 = nf(4, base, cmax)
        self.c4 = c4
        self.dense = EqLinear(z, c4 * 16, gain=SQRT2 / 4, bias=False)
        self.dense_b = nn.Parameter(torch.zeros(1, c4, 1, 1))  # per channel, after the reshape
        self.conv = EqConv(c4, c4, 3)
        self.blocks = nn.ModuleList()
        r = 8
        while r <= res:
            cin, c = nf(r // 2, base, cmax), nf(r, base, cmax)
            self.blocks.append(nn.ModuleList([EqConv(cin, c, 3), EqConv(c, c, 3)]))
            r *= 2
        self.to_rgb = EqConv(nf(res, base, cmax), ch, 1, gain=1.0)

    def forward(self, z):
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        x = pn(lrelu(self.dense(z).view(-1, self.c4, 4, 4) + self.dense_b))
        x = pn(lrelu(self.conv(x)))
        for c0, c1 in self.blocks:
            x = pn(lrelu(c0(F.interpolate(x, scale_factor=2, mode="nearest"))))
            x = pn(lrelu(c1(x)))
        return self.to_rgb(x)


def mbstd(x, group):
    b, c, h, w = x.shape
    g = min(group, b)
    while b % g:
        g -= 1
    y = x.view(g, -1, c, h, w)
    y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean([1, 2, 3])  # [M]
    y = y.view(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], 1)


class Discriminator(nn.Module):
    def __init__(self, ch, res, base, cmax, group):
        super().__init__()
        self.from_rgb = EqConv(ch, nf(res, base, cmax), 1)
        self.blocks = nn.ModuleList()
        r = res
        while r > 4:
            c, cn = nf(r, base, cmax), nf(r // 2, base, cmax)
            self.blocks.append(nn.ModuleList([EqConv(c, c, 3), EqConv(c, cn, 3)]))
            r //= 2
        c4, c0 = nf(4, base, cmax), min(base, cmax)
        self.conv = EqConv(c4 + 1, c4, 3)
        self.dense0 = EqLinear(c4 * 16, c0)
        self.dense1 = EqLinear(c0, 1, gain=1.0)
        self.group = group

    def forward(self, x):
        x = lrelu(self.from_rgb(x))
        for c0, c1 in self.blocks:
            x = lrelu(F.avg_pool2d(c1(lrelu(c0(x))), 2))
        x = lrelu(self.conv(mbstd(x, self.group)))
        return self.dense1(lrelu(self.dense0(x.flatten(1)))).view(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="mnist", choices=PRESETS)
    ap.add_argument("--batch", type=int, default=32); ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2); ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    zd, ch, res, base, cmax, group = PRESETS[a.preset]
    dev = torch.device(a.device)
    torch.set_default_device(dev)
    g, d = Generator(zd, ch, res, base, cmax), Discriminator(ch, res, base, cmax, group)
    g_ema = copy.deepcopy(g).requires_grad_(False)
    og = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    od = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    bs = a.batch
    real = torch.rand(bs, ch, res, res) * 2 - 1
    times = []
    for step in range(a.warmup + a.steps):
        if dev.type == "cuda": torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            fake = g(torch.randn(bs, zd))
        d_real, d_fake = d(real), d(fake)
        loss = d_fake.mean() - d_real.mean() + 0.001 * d_real.square().mean()
        u = torch.rand(bs, 1, 1, 1)
        x_hat = (real + (fake - real) * u).requires_grad_(True)
        grad, = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
        gp = (grad.flatten(1).norm(dim=1) - 1).square().mean() * 10.0
        od.zero_grad(); (loss + gp).backward(); od.step()
        gl = -d(g(torch.randn(bs, zd))).mean()
        og.zero_grad(); gl.backward(); og.step()
        with torch.no_grad():
            beta = min(0.999, (1 + step) / (10 + step))
            for pe, p in zip(g_ema.parameters(), g.parameters()):
                pe.lerp_(p, 1 - beta)
        gl.item()
        if dev.type == "cuda": torch.cuda.synchronize()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    dt = sum(times) / len(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__} pggan-{a.preset} batch {bs} threads {torch.get_num_threads()}: "
          f"{dt:.3f} s/step  {bs / dt:.1f} img/s  peak RSS {rss:.0f} MiB  "
          f"params G {sum(p.numel() for p in g.parameters())/1e6:.2f}M D {sum(p.numel() for p in d.parameters())/1e6:.2f}M")


if __name__ == "__main__":
    main()
