"""PyTorch reference for `genforge bench stylegan-*`: the same StyleGAN, layer for layer.

Generator: z normalised, equalized FC layers (8 for ffhq, 2 for the CPU presets) (lr multiplier 0.01, LeakyReLU 0.2 times sqrt 2)
to w; a constant 4x4 input (ones); two style layers per resolution, each [nearest 2x upsample,
conv3x3, [1,2,1] blur] or conv3x3, then noise (per-channel scale), bias, LeakyReLU 0.2, instance
norm, AdaIN `x * (1 + y_s) + y_b` from an equalized affine map of w (or, with `--synthesis
demodulation`, the mnist/emoji presets' default: StyleGAN2's modulated and demodulated conv, then
noise, bias, LeakyReLU times sqrt 2); 1x1 toRGB. Style mixing with
probability 0.9. Discriminator: fromRGB 1x1, per resolution conv3x3, blur, conv3x3, 2x2 average
pool (LeakyReLU after each conv), minibatch stddev (the preset's group), conv3x3, FC, FC. Non-saturating
loss, R1 on reals every `--r1-interval` steps weighted by the interval (PyTorch's exact double
backward), Adam (0, 0.99) at the preset's rate, G weight average, w_avg tracking. One iteration = D step
(+ R1 step when due) + G step, averaged over the iterations timed.

    pip install torch
    python bench/torch_stylegan.py --preset mnist --batch 32 --steps 8 --threads 2
"""
import argparse, copy, math, resource, time
import torch, torch.nn as nn, torch.nn.functional as F

PRESETS = {  # z/w, mapping layers, channels, resolution, channel_base, channel_max, gamma, lr, mbstd group
    "mnist": (128, 2, 1, 32, 256, 128, 10.0, 0.001, 32),
    "emoji": (128, 2, 3, 32, 256, 128, 10.0, 0.001, 32),
    "ffhq": (512, 8, 3, 1024, 8192, 512, 10.0, 0.001, 4),
}
SQRT2 = math.sqrt(2)


class EqLinear(nn.Module):
    def __init__(self, i, o, lr_mul=1.0):
        super().__init__()
        self.w = nn.Parameter(torch.randn(o, i) / lr_mul)
        self.b = nn.Parameter(torch.zeros(o))
        self.g, self.lr = lr_mul / math.sqrt(i), lr_mul

    def forward(self, x):
        return F.linear(x, self.w * self.g, self.b * self.lr)


class EqConv(nn.Module):
    def __init__(self, i, o, k, gain=SQRT2, bias=True):
        super().__init__()
        self.w = nn.Parameter(torch.randn(o, i, k, k))
        self.b = nn.Parameter(torch.zeros(o)) if bias else None
        self.g = gain / math.sqrt(i * k * k)

    def forward(self, x):
        return F.conv2d(x, self.w * self.g, self.b, padding=self.w.shape[-1] // 2)


_K = torch.tensor([1.0, 2.0, 1.0]) / 4


def blur(x):
    c = x.shape[1]
    k = (_K[:, None] * _K[None, :]).expand(c, 1, 3, 3)
    return F.conv2d(x, k, padding=1, groups=c)


def lrelu(x):
    return F.leaky_relu(x, 0.2)


class StyleLayer(nn.Module):
    def __init__(self, cin, c, w_dim, conv, up, demod=False):
        super().__init__()
        self.conv = EqConv(cin, c, 3, bias=False) if conv else None
        self.up, self.demod = up, demod
        self.noise = nn.Parameter(torch.zeros(c))
        self.bias = nn.Parameter(torch.zeros(c))
        if demod:  # StyleGAN2: per-input-channel styles (bias 1), no AdaIN
            self.affine = EqLinear(w_dim, cin) if conv else None
            if conv: nn.init.ones_(self.affine.b)
        else:
            self.affine = EqLinear(w_dim, 2 * c)

    def forward(self, x, w):
        s = self.affine(w) if self.demod and self.conv is not None else None
        if s is not None:
            x = x * s[:, :, None, None]
        if self.conv is not None:
            x = blur(self.conv(F.interpolate(x, scale_factor=2))) if self.up else self.conv(x)
        if s is not None:
            wt = (self.conv.w * self.conv.g).square().sum((2, 3))  # [out, in]
            x = x * torch.rsqrt(s.square() @ wt.t() + 1e-8)[:, :, None, None]
        b, c, h, _ = x.shape
        x = x + torch.randn(b, 1, h, h) * self.noise.view(1, c, 1, 1)
        x = lrelu(x + self.bias.view(1, c, 1, 1))
        if self.demod:
            return x * SQRT2
        x = x - x.mean((2, 3), keepdim=True)
        x = x * torch.rsqrt(x.square().mean((2, 3), keepdim=True) + 1e-8)
        s = self.affine(w).view(b, 2, c, 1, 1)
        return x * (1 + s[:, 0]) + s[:, 1]


def nf(r, base, cmax):
    return max(1, min(base // (r // 2), cmax))


class Generator(nn.Module):
    def __init__(self, zd, nmap, ch, res, base, cmax, demod=False):
        super().__init__()
        self.mapping = nn.ModuleList(EqLinear(zd, zd, 0.01) for _ in range(nmap))
        n = 2 * (int(math.log2(res)) - 1)
        self.const = nn.Parameter(torch.ones(1, nf(4, base, cmax), 4, 4))
        layers, cin = [], nf(4, base, cmax)
        for i in range(n):
            c = nf(4 << (i // 2), base, cmax)
            layers.append(StyleLayer(cin, c, zd, i > 0, i > 1 and i % 2 == 0, demod))
            cin = c
        self.layers = nn.ModuleList(layers)
        self.to_rgb = EqConv(cin, ch, 1, gain=1.0)
        self.register_buffer("w_avg", torch.zeros(zd))

    def map(self, z):
        x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        for l in self.mapping:
            x = lrelu(l(x)) * SQRT2
        return x

    def forward(self, z, mixing=0.9):
        w1 = self.map(z)
        n = len(self.layers)
        ws = [w1] * n
        if torch.rand(()) < mixing:
            w2 = self.map(torch.randn_like(z))
            cut = int(torch.randint(1, n, ()))
            ws = [w1 if i < cut else w2 for i in range(n)]
        x = self.const.expand(z.shape[0], -1, -1, -1)
        for l, w in zip(self.layers, ws):
            x = l(x, w)
        return self.to_rgb(x), w1.detach().mean(0)


class Discriminator(nn.Module):
    def __init__(self, ch, res, base, cmax, group=4):
        super().__init__()
        self.group = group
        self.from_rgb = EqConv(ch, nf(res, base, cmax), 1)
        blocks, r = [], res
        while r > 4:
            blocks.append(nn.ModuleList([EqConv(nf(r, base, cmax), nf(r, base, cmax), 3),
                                         EqConv(nf(r, base, cmax), nf(r // 2, base, cmax), 3)]))
            r //= 2
        self.blocks = nn.ModuleList(blocks)
        c4 = nf(4, base, cmax)
        self.conv = EqConv(c4 + 1, c4, 3)
        self.fc0, self.fc1 = EqLinear(c4 * 16, c4), EqLinear(c4, 1)

    def forward(self, x):
        x = lrelu(self.from_rgb(x))
        for c0, c1 in self.blocks:
            x = lrelu(F.avg_pool2d(c1(blur(lrelu(c0(x)))), 2))
        b, c, h, w = x.shape
        g = max(k for k in range(1, min(self.group, b) + 1) if b % k == 0)
        y = x.view(g, -1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean((1, 2, 3))
        y = y.view(1, -1, 1, 1, 1).expand(g, -1, 1, h, w).reshape(b, 1, h, w)
        x = lrelu(self.conv(torch.cat([x, y], 1)))
        return self.fc1(lrelu(self.fc0(x.flatten(1))) * SQRT2).flatten()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="mnist", choices=PRESETS)
    ap.add_argument("--batch", type=int, default=32); ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=1); ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--r1-interval", type=int, default=4, help="ffhq: 1, as stylegan-ffhq")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--synthesis", choices=["adain", "demodulation"], default=None,
                    help="default: the preset's (demodulation for mnist/emoji, adain for ffhq)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    zd, nmap, ch, res, base, cmax, gamma, lr, group = PRESETS[a.preset]
    dev = torch.device(a.device)
    torch.set_default_device(dev)
    synthesis = a.synthesis or ("adain" if a.preset == "ffhq" else "demodulation")
    g = Generator(zd, nmap, ch, res, base, cmax, synthesis == "demodulation")
    d = Discriminator(ch, res, base, cmax, group)
    g_ema = copy.deepcopy(g).requires_grad_(False)
    og = torch.optim.Adam(g.parameters(), lr, betas=(0.0, 0.99))
    od = torch.optim.Adam(d.parameters(), lr, betas=(0.0, 0.99))
    bs = a.batch
    real = torch.rand(bs, ch, res, res) * 2 - 1
    times = []
    for step in range(a.warmup + a.steps):
        if dev.type == "cuda": torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            fake, _ = g(torch.randn(bs, zd))
        loss = F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean()
        od.zero_grad(); loss.backward(); od.step()
        if a.r1_interval and (step + 1) % a.r1_interval == 0:
            x = real.detach().requires_grad_(True)
            grad, = torch.autograd.grad(d(x).sum(), x, create_graph=True)
            r1 = grad.square().sum((1, 2, 3)).mean() * (gamma / 2) * a.r1_interval
            od.zero_grad(); r1.backward(); od.step()
        fake, w_mean = g(torch.randn(bs, zd))
        gl = F.softplus(-d(fake)).mean()
        og.zero_grad(); gl.backward(); og.step()
        with torch.no_grad():
            g.w_avg.lerp_(w_mean, 1 - 0.995)
            beta = min(0.995, (2 + step) / (11 + step))
            for pe, p in zip(g_ema.parameters(), g.parameters()):
                pe.lerp_(p, 1 - beta)
            g_ema.w_avg.copy_(g.w_avg)
        gl.item()
        if dev.type == "cuda": torch.cuda.synchronize()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    dt = sum(times) / len(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__} stylegan-{a.preset} ({synthesis}) batch {bs} threads {torch.get_num_threads()}: "
          f"{dt:.3f} s/step  {bs / dt:.1f} img/s  peak RSS {rss:.0f} MiB  "
          f"params G {sum(p.numel() for p in g.parameters())/1e6:.2f}M D {sum(p.numel() for p in d.parameters())/1e6:.2f}M")


if __name__ == "__main__":
    main()
