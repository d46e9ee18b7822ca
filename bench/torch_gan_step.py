"""PyTorch reference for genforge's DCGAN and SAGAN train-step benchmarks ("DCGAN and SAGAN step by step").

Times one full GAN iteration (a D step on real + fake, then a G step) for DCGAN and SAGAN at the
article's sizes: z_dim=20, 64x64 single-channel images, width 64, batch 64. Run it on the same
machine as genforge's own benchmark and compare img/s.

    pip install torch          # large download; CPU is enough
    python3 bench/torch_gan_step.py --model dcgan --steps 5 --threads 2
    python3 bench/torch_gan_step.py --model sagan --steps 5 --threads 2
"""
import argparse, time, resource
import torch
import torch.nn as nn

SN = nn.utils.spectral_norm


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.q = nn.Conv2d(c, c // 8, 1)
        self.k = nn.Conv2d(c, c // 8, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.q(x).view(b, -1, h * w).permute(0, 2, 1)
        k = self.k(x).view(b, -1, h * w)
        attn = torch.softmax(torch.bmm(q, k), dim=-2)
        o = torch.bmm(self.v(x).view(b, c, h * w), attn).view(b, c, h, w)
        return x + self.gamma * o


def generator(z, width, attention):
    wrap = SN if attention else (lambda m: m)
    ch = [z, width * 8, width * 4, width * 2, width, 1]
    layers = []
    for i in range(5):
        s, p = (1, 0) if i == 0 else (2, 1)
        conv = nn.ConvTranspose2d(ch[i], ch[i + 1], 4, s, p)
        if i < 4:
            layers += [wrap(conv), nn.BatchNorm2d(ch[i + 1]), nn.ReLU(True)]
            if attention and i in (2, 3):
                layers.append(SelfAttention(ch[i + 1]))
        else:
            layers += [conv, nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(width, attention):
    wrap = SN if attention else (lambda m: m)
    ch = [1, width, width * 2, width * 4, width * 8, 1]
    layers = []
    for i in range(5):
        s, p = (1, 0) if i == 4 else (2, 1)
        conv = nn.Conv2d(ch[i], ch[i + 1], 4, s, p)
        if i < 4:
            layers += [wrap(conv), nn.LeakyReLU(0.1, True)]
            if attention and i in (2, 3):
                layers.append(SelfAttention(ch[i + 1]))
        else:
            layers.append(conv)
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["dcgan", "sagan"], default="dcgan")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sagan = a.model == "sagan"
    z_dim, bs = 20, a.batch
    g, d = generator(z_dim, 64, sagan), discriminator(64, sagan)
    g_lr, d_lr = (1e-4, 4e-4) if sagan else (2e-4, 2e-4)
    og = torch.optim.Adam(g.parameters(), g_lr, betas=(0.0, 0.9))
    od = torch.optim.Adam(d.parameters(), d_lr, betas=(0.0, 0.9))
    bce = nn.BCEWithLogitsLoss()
    real = torch.rand(bs, 1, 64, 64) * 2 - 1
    ones, zeros = torch.ones(bs), torch.zeros(bs)
    warmup = 2
    for step in range(a.steps + warmup):
        if step == warmup:
            t0 = time.perf_counter()
        fake = g(torch.randn(bs, z_dim, 1, 1)).detach()
        dr, df = d(real).view(-1), d(fake).view(-1)
        d_loss = (torch.relu(1 - dr).mean() + torch.relu(1 + df).mean()) if sagan else bce(dr, ones) + bce(df, zeros)
        od.zero_grad(); d_loss.backward(); od.step()
        df = d(g(torch.randn(bs, z_dim, 1, 1))).view(-1)
        g_loss = -df.mean() if sagan else bce(df, ones)
        og.zero_grad(); g_loss.backward(); og.step()
        g_loss.item()
    dt = (time.perf_counter() - t0) / a.steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__} {a.model} batch {bs} threads {torch.get_num_threads()}: "
          f"{dt:.3f} s/step  {bs / dt:.1f} img/s  peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
