"""PyTorch reference for `genforge bench vitgan-cifar10`: the same ViTGAN, layer for layer.

genforge's configuration (configs/vitgan-cifar10.toml): 32x32x3, patch 4 (64 tokens), latent 32,
8-layer mapping MLP (lr multiplier 0.01), hidden 384, depth 4, heads 4, MLP ratio 4, two SLNs per
block plus one on the output, LFF + first sine layer + 1 hidden sine layer + modulated output layer;
D with overlapping 8x8 patches (stride 4, padding 2), class token, sin positional embedding, L2
attention with tied q/k, ISN on every weight (one power iteration per forward), DiffAugment
(color, translation, cutout) and bCR 10/10 on one concatenated batch of 4b, Adam 0.002 betas
(0, 0.99), G weight average 0.995. One iteration = D step + G step + EMA update.

    pip install torch
    python bench/torch_vitgan.py --batch 128 --steps 3 --threads 2
"""
import argparse, copy, math, resource, time
import torch, torch.nn as nn, torch.nn.functional as F


class ISN(nn.Module):
    """sigma(W_init) * W / sigma(W), one power-iteration step per training forward."""
    def __init__(self, w):
        super().__init__()
        m = w.detach().flatten(1)
        u = torch.randn(m.shape[0]); u = u / u.norm()
        for _ in range(100):
            v = F.normalize(m.t() @ u, dim=0); u = F.normalize(m @ v, dim=0)
        self.register_buffer("u", u)
        self.register_buffer("sigma0", (u @ m @ v).reshape(1))

    def forward(self, w):
        m = w.flatten(1)
        with torch.no_grad():
            v = F.normalize(m.t() @ self.u, dim=0)
            if self.training:
                self.u.copy_(F.normalize(m @ v, dim=0))
        return w * (self.sigma0 / (self.u @ m @ v))


class EqLinear(nn.Module):
    def __init__(self, i, o, lr_mul=1.0, bias_init=0.0, isn=False):
        super().__init__()
        self.w = nn.Parameter(torch.randn(o, i) / lr_mul)
        self.b = nn.Parameter(torch.full((o,), bias_init / lr_mul))
        self.gain, self.lr_mul = lr_mul / math.sqrt(i), lr_mul
        self.isn = ISN(self.w * self.gain) if isn else None

    def forward(self, x):
        w = self.w * self.gain
        if self.isn is not None:
            w = self.isn(w)
        return F.linear(x, w, self.b * self.lr_mul)


class SLN(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gamma, self.beta = EqLinear(d, d, bias_init=1.0), EqLinear(d, d)

    def forward(self, h, w):
        return self.gamma(w)[:, None] * F.layer_norm(h, h.shape[-1:]) + self.beta(w)[:, None]


class MHA(nn.Module):
    def __init__(self, d, heads, l2=False):
        super().__init__()
        self.h, self.l2 = heads, l2
        self.qkv = EqLinear(d, d * (2 if l2 else 3), isn=l2)
        self.out = EqLinear(d, d, isn=l2)
        if l2:  # q starts small enough that attention is not one-hot on each token itself
            with torch.no_grad():
                self.qkv.w[:d] *= (2 * math.sqrt(d // heads)) ** -0.5
            self.qkv.isn = ISN(self.qkv.w * self.qkv.gain)

    def forward(self, x):
        b, n, d = x.shape
        dh = d // self.h
        parts = self.qkv(x).view(b, n, -1, self.h, dh).permute(2, 0, 3, 1, 4)
        if self.l2:
            q, v = parts[0], parts[1]
            qq = q.square().sum(-1, keepdim=True)
            logits = (2 * q @ q.transpose(-1, -2) - qq - qq.transpose(-1, -2)) / math.sqrt(dh)
        else:
            q, k, v = parts
            logits = q @ k.transpose(-1, -2) / math.sqrt(dh)
        return self.out((logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, d, ratio, isn=False):
        super().__init__()
        self.fc1, self.fc2 = EqLinear(d, ratio * d, isn=isn), EqLinear(ratio * d, d, isn=isn)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class ModLinear(nn.Module):
    """Equalized: stored U(-1, 1), times the SIREN bound and 1/sqrt(in) at run time."""
    def __init__(self, i, o, bound):
        super().__init__()
        self.w = nn.Parameter(torch.empty(o, i).uniform_(-1, 1))
        self.gain = bound / math.sqrt(i)

    def forward(self, x, style):  # x [m or 1, s, i], style [m, i]
        return (x * style[:, None]) @ (self.w * self.gain).t()


class Generator(nn.Module):
    def __init__(self, img=32, patch=4, latent=32, d=384, depth=4, heads=4, ratio=4, ch=3, siren_layers=1):
        super().__init__()
        self.p, self.img, self.ch = patch, img, ch
        n = (img // patch) ** 2
        self.mapping = nn.ModuleList(EqLinear(latent if i == 0 else d, d, 0.01) for i in range(8))
        self.pos = nn.Parameter(torch.randn(n, d))
        self.blocks = nn.ModuleList(nn.ModuleDict(dict(s1=SLN(d), att=MHA(d, heads), s2=SLN(d), mlp=MLP(d, ratio)))
                                    for _ in range(depth))
        self.sln = SLN(d)
        self.lff_w = nn.Parameter(torch.empty(2, d).uniform_(-1, 1))
        self.lff_b = nn.Parameter(torch.empty(d).uniform_(-1, 1))
        later = math.sqrt(6 / d) / 30
        self.siren = nn.ModuleList([ModLinear(d, d, 1 / d)] + [ModLinear(d, d, later) for _ in range(siren_layers)])
        self.out = ModLinear(d, ch, later)
        c = torch.linspace(-1, 1, patch)
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        self.register_buffer("coords", torch.stack([xx, yy], -1).view(-1, 2))

    def forward(self, z):
        w = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for fc in self.mapping:
            w = F.leaky_relu(fc(w), 0.2) * math.sqrt(2)
        b = z.shape[0]
        h = torch.sin(self.pos)[None].repeat(b, 1, 1)
        for blk in self.blocks:
            h = h + blk["att"](blk["s1"](h, w))
            h = h + blk["mlp"](blk["s2"](h, w))
        e = self.sln(h, w).reshape(-1, h.shape[-1])                  # [b*n, d] patch styles
        x = torch.sin(self.coords @ (self.lff_w * math.sqrt(4.5)) + self.lff_b / math.sqrt(2))[None]  # [1, p*p, d]
        for layer in self.siren:
            x = torch.sin(30 * layer(x, e))
        x = self.out(x, e)                                           # [b*n, p*p, ch]
        g = self.img // self.p
        return x.view(b, g, g, self.p, self.p, self.ch).permute(0, 5, 1, 3, 2, 4).reshape(b, self.ch, self.img, self.img)


class Discriminator(nn.Module):
    def __init__(self, img=32, patch=4, d=384, depth=4, heads=4, ratio=4, ch=3):
        super().__init__()
        self.p = patch
        self.w = nn.Parameter(torch.randn(d, ch, 2 * patch, 2 * patch)); self.b = nn.Parameter(torch.zeros(d))
        self.gain = 1 / math.sqrt(ch * 4 * patch * patch)
        self.isn = ISN(self.w * self.gain)
        side = (img + 2 * (patch // 2) - 2 * patch) // patch + 1
        self.cls = nn.Parameter(torch.randn(1, 1, d)); self.pos = nn.Parameter(torch.randn(side * side + 1, d))
        self.blocks = nn.ModuleList(nn.ModuleDict(dict(n1=nn.LayerNorm(d), att=MHA(d, heads, l2=True), n2=nn.LayerNorm(d),
                                                      mlp=MLP(d, ratio, isn=True))) for _ in range(depth))
        self.ln = nn.LayerNorm(d)
        self.head = EqLinear(d, 1, isn=True)

    def forward(self, x):
        w = self.isn(self.w * self.gain)
        h = F.conv2d(x, w, self.b, stride=self.p, padding=self.p // 2).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], 1) + torch.sin(self.pos)
        for b in self.blocks:
            h = h + b["att"](b["n1"](h))
            h = h + b["mlp"](b["n2"](h))
        return self.head(self.ln(h[:, 0])).view(-1)


def diff_augment(x):
    b, c, hh, ww = x.shape
    x = x + (torch.rand(b, 1, 1, 1) - 0.5)
    m = x.mean(1, keepdim=True); x = (x - m) * (torch.rand(b, 1, 1, 1) * 2) + m
    m = x.mean([1, 2, 3], keepdim=True); x = (x - m) * (torch.rand(b, 1, 1, 1) + 0.5) + m
    s = int(hh * 0.1 + 0.5)
    ty, tx = torch.randint(-s, s + 1, (b, 1, 1)), torch.randint(-s, s + 1, (b, 1, 1))
    ii, jj = torch.arange(hh)[None, :, None] + ty, torch.arange(ww)[None, None, :] + tx
    inside = ((ii >= 0) & (ii < hh) & (jj >= 0) & (jj < ww)).float()[:, None]
    idx = (ii.clamp(0, hh - 1) * ww + jj.clamp(0, ww - 1)).view(b, 1, -1).expand(b, c, -1)
    x = x.reshape(b, c, -1).gather(2, idx).view(b, c, hh, ww) * inside
    cs = int(hh * 0.3 + 0.5)
    oy = torch.randint(0, hh + 1 - cs % 2, (b, 1, 1)) - cs // 2
    ox = torch.randint(0, ww + 1 - cs % 2, (b, 1, 1)) - cs // 2
    yy, xx = torch.arange(hh)[None, :, None], torch.arange(ww)[None, None, :]
    cut = ((yy >= oy) & (yy < oy + cs) & (xx >= ox) & (xx < ox + cs)).float()
    return x * (1 - cut)[:, None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128); ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1); ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    g, d = Generator(), Discriminator()
    g_ema = copy.deepcopy(g).requires_grad_(False)
    og = torch.optim.Adam(g.parameters(), 0.002, betas=(0.0, 0.99)); od = torch.optim.Adam(d.parameters(), 0.002, betas=(0.0, 0.99))
    bs = a.batch
    real = torch.rand(bs, 3, 32, 32) * 2 - 1
    bce = F.binary_cross_entropy_with_logits
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        fake = g(torch.randn(bs, 32)).detach()
        logits = d(torch.cat([diff_augment(real), diff_augment(fake), real, fake]))
        ra, fa, r, f = logits.split(bs)
        loss = 0.5 * bce(ra, torch.ones(bs)) + 0.5 * bce(fa, torch.zeros(bs)) \
            + 10 * F.mse_loss(ra, r) + 10 * F.mse_loss(fa, f)
        od.zero_grad(); loss.backward(); od.step()
        gl = bce(d(diff_augment(g(torch.randn(bs, 32)))), torch.ones(bs))
        og.zero_grad(); gl.backward(); og.step()
        beta = min(0.995, (2 + step) / (11 + step))
        with torch.no_grad():
            for pe, p in zip(g_ema.parameters(), g.parameters()):
                pe.lerp_(p, 1 - beta)
        gl.item()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    dt = sum(times) / len(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__} vitgan batch {bs} threads {torch.get_num_threads()}: "
          f"{dt:.3f} s/step  {bs / dt:.1f} img/s  peak RSS {rss:.0f} MiB  "
          f"params G {sum(p.numel() for p in g.parameters())/1e6:.2f}M D {sum(p.numel() for p in d.parameters())/1e6:.2f}M")


if __name__ == "__main__":
    main()
