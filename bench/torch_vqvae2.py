"""PyTorch reference of genforge's vqvae2-mnist and pixelcnn-mnist presets, for BENCHMARKS.md.

The same networks as crates/genforge/src/models/{vqvae2,pixelcnn}.rs (layer for layer, the same
parameter counts): times one stage-1 training step (forward, backward, Adam, both EMA codebook
updates), one step of each prior, and ancestral sampling of a batch of images, both by running the
network on the band of rows a position sees and by genforge's row cache (vertical stacks once per
row, horizontal stacks per position). Random data of the right shapes; the compute does not depend on the values.

    python3 bench/torch_vqvae2.py --threads 2
"""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, ch, res_ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, res_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(res_ch, ch, 1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Encoder(nn.Module):
    def __init__(self, cin, ch, stride, n_res, res_ch):
        super().__init__()
        n = int(math.log2(stride))
        down, c = [], cin
        for i in range(n):
            out = ch // 2 if i == 0 else ch
            down.append(nn.Conv2d(c, out, 3, stride=2, padding=1))
            c = out
        self.down = nn.ModuleList(down)
        self.conv = nn.Conv2d(c, ch, 3, padding=1)
        self.res = nn.ModuleList([ResBlock(ch, res_ch) for _ in range(n_res)])

    def forward(self, x):
        for d in self.down:
            x = F.relu(d(x))
        x = self.conv(x)
        for r in self.res:
            x = r(x)
        return F.relu(x)


class Decoder(nn.Module):
    def __init__(self, cin, cout, ch, stride, n_res, res_ch):
        super().__init__()
        n = int(math.log2(stride))
        self.conv = nn.Conv2d(cin, ch, 3, padding=1)
        self.res = nn.ModuleList([ResBlock(ch, res_ch) for _ in range(n_res)])
        up, c = [], ch
        for i in range(n):
            out = cout if i + 1 == n else (ch // 2 if i + 2 == n else ch)
            up.append(nn.ConvTranspose2d(c, out, 4, stride=2, padding=1))
            c = out
        self.up = nn.ModuleList(up)

    def forward(self, x):
        x = self.conv(x)
        for r in self.res:
            x = r(x)
        x = F.relu(x)
        for i, u in enumerate(self.up):
            x = u(x)
            if i + 1 < len(self.up):
                x = F.relu(x)
        return x


class EmaQuantizer(nn.Module):
    def __init__(self, k, d, decay=0.99, eps=1e-5, beta=0.25):
        super().__init__()
        embed = torch.randn(k, d)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(k))
        self.register_buffer("embed_avg", embed.clone())
        self.k, self.decay, self.eps, self.beta = k, decay, eps, beta

    def forward(self, z):
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        dist = (self.embed ** 2).sum(1)[None] - 2 * flat.detach() @ self.embed.t()
        idx = dist.argmin(1)
        q = self.embed[idx].view(b, h, w, d).permute(0, 3, 1, 2)
        loss = self.beta * (q.detach() - z).pow(2).mean()
        if self.training:
            with torch.no_grad():
                onehot = F.one_hot(idx, self.k).type(flat.dtype)
                self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                self.embed_avg.mul_(self.decay).add_(onehot.t() @ flat.detach(), alpha=1 - self.decay)
                n = self.cluster_size.sum()
                size = (self.cluster_size + self.eps) / (n + self.k * self.eps) * n
                self.embed.copy_(self.embed_avg / size[:, None])
        return z + (q - z).detach(), idx.view(b, h, w), loss


class VqVae2(nn.Module):
    def __init__(self, cin=1, ch=64, n_res=2, res_ch=32, k=512, d=64, bottom_stride=4, top_stride=2):
        super().__init__()
        self.enc_b = Encoder(cin, ch, bottom_stride, n_res, res_ch)
        self.enc_t = Encoder(ch, ch, top_stride, n_res, res_ch)
        self.quantize_conv_t = nn.Conv2d(ch, d, 1)
        self.quantize_t = EmaQuantizer(k, d)
        self.dec_t = Decoder(d, d, ch, top_stride, n_res, res_ch)
        self.quantize_conv_b = nn.Conv2d(d + ch, d, 1)
        self.quantize_b = EmaQuantizer(k, d)
        self.upsample_t = nn.ModuleList(
            [nn.ConvTranspose2d(d, d, 4, stride=2, padding=1) for _ in range(int(math.log2(top_stride)))])
        self.dec = Decoder(2 * d, cin, ch, bottom_stride, n_res, res_ch)

    def forward(self, x):
        f_b = self.enc_b(x)
        f_t = self.enc_t(f_b)
        q_t, i_t, l_t = self.quantize_t(self.quantize_conv_t(f_t))
        z_b = self.quantize_conv_b(torch.cat([self.dec_t(q_t), f_b], 1))
        q_b, i_b, l_b = self.quantize_b(z_b)
        return self.decode(q_t, q_b), l_t + l_b

    def decode(self, q_t, q_b):
        up = q_t
        for u in self.upsample_t:
            up = u(up)
        return self.dec(torch.cat([up, q_b], 1))


def gate(x):
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedMaskedConv2d(nn.Module):
    def __init__(self, p, k, mask_a, cond_ch):
        super().__init__()
        self.half, self.mask_a = k // 2, mask_a
        self.vertical = nn.Conv2d(p, 2 * p, (k // 2 + 1, k))
        self.horizontal = nn.Conv2d(p, 2 * p, (1, k // 2 + 1))
        self.v2h = nn.Conv2d(2 * p, 2 * p, 1)
        self.h_out = nn.Conv2d(p, p, 1)
        self.skip = nn.Conv2d(p, p, 1)
        self.cond = nn.Conv2d(cond_ch, 4 * p, 1) if cond_ch else None
        if mask_a:
            vm = torch.ones_like(self.vertical.weight)
            vm[:, :, -1] = 0
            hm = torch.ones_like(self.horizontal.weight)
            hm[:, :, :, -1] = 0
            self.register_buffer("vm", vm)
            self.register_buffer("hm", hm)

    def forward(self, v, h, cond):
        wv, wh = self.vertical.weight, self.horizontal.weight
        if self.mask_a:
            wv, wh = wv * self.vm, wh * self.hm
        k = self.half
        v_pre = F.conv2d(F.pad(v, (k, k, k, 0)), wv, self.vertical.bias)
        h_pre = F.conv2d(F.pad(h, (k, 0, 0, 0)), wh, self.horizontal.bias) + self.v2h(v_pre)
        if self.cond is not None and cond is not None:
            cv, ch = self.cond(cond).chunk(2, 1)
            v_pre, h_pre = v_pre + cv, h_pre + ch
        v_out, g = gate(v_pre), gate(h_pre)
        h_out = self.h_out(g)
        if not self.mask_a:
            h_out = h_out + h
        return v_out, h_out, self.skip(g)


class GatedPixelCnn(nn.Module):
    def __init__(self, k=512, p=64, layers=7, top=None):
        super().__init__()
        self.embed = nn.Embedding(k, p)
        self.top_embed = nn.Embedding(top[0], p) if top else None
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(p, p, 4, stride=2, padding=1) for _ in range(int(math.log2(top[1])))]) if top else None
        cond_ch = p if top else 0
        self.layers = nn.ModuleList(
            [GatedMaskedConv2d(p, 7 if i == 0 else 3, i == 0, cond_ch) for i in range(layers)])
        self.head = nn.ModuleList([nn.Conv2d(p, p, 1), nn.Conv2d(p, k, 1)])
        self.reach = 3 + (layers - 1)

    def condition(self, top):
        if self.top_embed is None:
            return None
        x = self.top_embed(top).permute(0, 3, 1, 2)
        for u in self.up:
            x = F.relu(u(x))
        return x

    def forward(self, codes, cond):
        x = self.embed(codes).permute(0, 3, 1, 2)
        v, h, s = x, x, 0
        for layer in self.layers:
            v, h, sk = layer(v, h, cond)
            s = s + sk
        return self.head[1](F.relu(self.head[0](F.relu(s))))


def timed(f, steps, warmup):
    for _ in range(warmup):
        f()
    t0 = time.perf_counter()
    for _ in range(steps):
        f()
    return (time.perf_counter() - t0) / steps


@torch.no_grad()
def sample_codes(prior, n, h, w, cond, temperature=1.0):
    codes = torch.zeros(n, h, w, dtype=torch.long)
    for r in range(h):
        first = max(0, r - prior.reach)
        band_cond = cond[:, :, first:r + 1] if cond is not None else None
        for c in range(w):
            logits = prior(codes[:, first:r + 1], band_cond)[:, :, -1, c]
            probs = F.softmax(logits / temperature, 1)
            codes[:, r, c] = torch.multinomial(probs, 1)[:, 0]
    return codes


@torch.no_grad()
def sample_codes_rows(prior, n, h, w, cond, temperature=1.0):
    """genforge's sampler: vertical stacks once per row on the band, horizontal stacks per position."""
    codes = torch.zeros(n, h, w, dtype=torch.long)
    for r in range(h):
        first = max(0, r - prior.reach)
        band_cond = cond[:, :, first:r + 1] if cond is not None else None
        v = prior.embed(codes[:, first:r + 1]).permute(0, 3, 1, 2)
        v_rows = []
        for layer in prior.layers:
            wv = layer.vertical.weight * layer.vm if layer.mask_a else layer.vertical.weight
            k = layer.half
            v_pre = F.conv2d(F.pad(v, (k, k, k, 0)), wv, layer.vertical.bias)
            v_rows.append(v_pre[:, :, -1:])
            if layer.cond is not None and band_cond is not None:
                v_pre = v_pre + layer.cond(band_cond).chunk(2, 1)[0]
            v = gate(v_pre)
        row_cond = cond[:, :, r:r + 1] if cond is not None else None
        for c in range(w):
            x = prior.embed(codes[:, r:r + 1]).permute(0, 3, 1, 2)
            s = 0
            for layer, v_pre in zip(prior.layers, v_rows):
                wh = layer.horizontal.weight * layer.hm if layer.mask_a else layer.horizontal.weight
                h_pre = F.conv2d(F.pad(x, (layer.half, 0, 0, 0)), wh, layer.horizontal.bias) + layer.v2h(v_pre)
                if layer.cond is not None and row_cond is not None:
                    h_pre = h_pre + layer.cond(row_cond).chunk(2, 1)[1]
                g = gate(h_pre)
                out = layer.h_out(g)
                x = out if layer.mask_a else out + x
                s = s + layer.skip(g)
            logits = prior.head[1](F.relu(prior.head[0](F.relu(s))))[:, :, 0, c]
            codes[:, r, c] = torch.multinomial(F.softmax(logits / temperature, 1), 1)[:, 0]
    return codes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--n", type=int, default=64, help="images sampled")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    b = a.batch
    vq = VqVae2()
    opt = torch.optim.Adam(vq.parameters(), lr=3e-4, betas=(0.9, 0.999))
    x = torch.rand(b, 1, 32, 32) * 2 - 1

    def vq_step():
        recon, commit = vq(x)
        loss = F.mse_loss(recon, x) + commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    nparams = lambda m: sum(p.numel() for p in m.parameters())
    s = timed(vq_step, a.steps, a.warmup)
    print(f"torch vqvae2-mnist batch {b}: {s:.3f} s/step  {b / s:.1f} img/s  params {nparams(vq) / 1e6:.2f}M")

    top, bottom = GatedPixelCnn(), GatedPixelCnn(top=(512, 2))
    ot = torch.optim.Adam(top.parameters(), lr=1e-3, betas=(0.9, 0.999))
    ob = torch.optim.Adam(bottom.parameters(), lr=1e-3, betas=(0.9, 0.999))
    ct = torch.randint(0, 512, (b, 4, 4))
    cb = torch.randint(0, 512, (b, 8, 8))

    def prior_step(net, opt, codes, top_codes):
        cond = net.condition(top_codes) if top_codes is not None else None
        loss = F.cross_entropy(net(codes, cond), codes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    st = timed(lambda: prior_step(top, ot, ct, None), a.steps, a.warmup)
    sb = timed(lambda: prior_step(bottom, ob, cb, ct), a.steps, a.warmup)
    print(f"torch pixelcnn-mnist batch {b}: top prior {st:.3f} s/step, bottom prior {sb:.3f} s/step, "
          f"total {st + sb:.3f} s ({b / (st + sb):.1f} maps/s)  params top {nparams(top) / 1e6:.2f}M "
          f"bottom {nparams(bottom) / 1e6:.2f}M")

    vq.eval()
    for name, sampler in [("band (full network per position)", sample_codes), ("row cache (as genforge)", sample_codes_rows)]:
        with torch.no_grad():
            t0 = time.perf_counter()
            tc = sampler(top, a.n, 4, 4, None)
            t1 = time.perf_counter()
            bc = sampler(bottom, a.n, 8, 8, bottom.condition(tc))
            t2 = time.perf_counter()
            q_t = vq.quantize_t.embed[tc].permute(0, 3, 1, 2)
            q_b = vq.quantize_b.embed[bc].permute(0, 3, 1, 2)
            vq.decode(q_t, q_b)
            t3 = time.perf_counter()
        print(f"torch sampling {a.n} images, {name}: {t3 - t0:.2f} s ({a.n / (t3 - t0):.2f} img/s): "
              f"top {t1 - t0:.2f} s, bottom {t2 - t1:.2f} s, decode {t3 - t2:.2f} s")
    print(f"torch peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (all three)")


if __name__ == "__main__":
    main()
