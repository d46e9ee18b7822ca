"""Train bench/torch_stylegan.py's stylegan-mnist network on the shipped digits (resized to 32x32),
or with `--data emoji` stylegan-emoji's (the same network in colour) on the shipped emoji, with lazy
exact R1, to compare training behaviour with genforge; writes G-average grids of 64 fixed
latents every 100 steps as TAG-STEP.png.

    python3 bench/torch_stylegan_train.py STEPS GAMMA LR BATCH TAG [MAPPING_LAYERS [MBSTD_GROUP]]
    python3 bench/torch_stylegan_train.py 400 10 0.001 32 map8 8 4

For an FID-against-time curve, `--minutes M --dump-every D` trains for M minutes of training time
(the time spent writing samples not counted) and every D minutes writes `--dump-n` G-average
samples as PNGs to TAG-fid/tMMMM/ (MMMM: seconds of training) with one line per dump in
TAG-fid/times.jsonl, and the first `--dump-n` training digits to TAG-fid/reals/; bench/fid_curve.py scores them with `genforge eval --real --fake`:

    python3 bench/torch_stylegan_train.py 1000000 10 0.001 32 torch 2 32 --synthesis demodulation \\
        --minutes 30 --dump-every 3 --threads 1
    python3 bench/torch_stylegan_train.py 1000000 10 0.001 32 torch-emoji 2 32 --data emoji \\
        --synthesis demodulation --minutes 30 --dump-every 3 --dump-n 950 --threads 1 --mirror
"""
import argparse, copy, gzip, os, sys, tarfile, time
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_stylegan import Generator, Discriminator
from fid_dumps import Dumps, to_u8
from PIL import Image

ap = argparse.ArgumentParser()
for name, kind in [("steps", int), ("gamma", float), ("lr", float), ("batch", int), ("tag", str)]:
    ap.add_argument(name, type=kind)
ap.add_argument("mapping_layers", type=int, nargs="?", default=8)
ap.add_argument("mbstd_group", type=int, nargs="?", default=4)
ap.add_argument("--data", choices=["mnist", "emoji"], default="mnist")
ap.add_argument("--synthesis", choices=["adain", "demodulation"], default="adain")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--minutes", type=float, default=0.0, help="stop after this much training time (0: STEPS only)")
ap.add_argument("--dump-every", type=float, default=0.0, help="minutes of training between sample dumps (0: none)")
ap.add_argument("--dump-n", type=int, default=1000)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--mirror", action="store_true",
                help="add the x-flip of every training image, as genforge's data.mirror and NVlabs' --mirror")
ap.add_argument("--r1", choices=["exact", "central-difference"], default="exact",
                help="R1's parameter gradient by double backward, or by genforge's surrogate: a "
                     "central difference of D along its input gradient (train/regularizers.rs)")
a = ap.parse_args()

torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data')
if a.data == "mnist":
    raw = gzip.open(os.path.join(DATA, 'mnist', 'mnist-10k-images-idx3-ubyte.gz')).read()
    x = torch.tensor(np.frombuffer(raw[16:], np.uint8).reshape(-1, 1, 28, 28).astype(np.float32) / 127.5 - 1)
    x = F.interpolate(x, size=32, mode='bilinear', align_corners=False)
else:  # CIFAR-10 binary records: a label byte, then 32x32 red, green and blue planes
    with tarfile.open(os.path.join(DATA, 'emoji', 'emoji-32x32-binary.tar.gz')) as t:
        raw = t.extractfile('emoji-32x32-binary/data_batch_1.bin').read()
    rec = np.frombuffer(raw, np.uint8).reshape(-1, 1 + 3 * 32 * 32)
    x = torch.tensor(rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 127.5 - 1)
if a.mirror:  # flips after the originals: the dumped reals stay the first unflipped images
    x = torch.cat([x, x.flip(3)])
B, TAG, C = a.batch, a.tag, x.shape[1]
g = Generator(128, a.mapping_layers, C, 32, 256, 128, a.synthesis == "demodulation")
d = Discriminator(C, 32, 256, 128, a.mbstd_group)
ge = copy.deepcopy(g).requires_grad_(False)
og = torch.optim.Adam(g.parameters(), a.lr, betas=(0.0, 0.99)); od = torch.optim.Adam(d.parameters(), a.lr, betas=(0.0, 0.99))


train_s, next_dump = 0.0, a.dump_every * 60
dumps = Dumps(TAG, x, a.dump_n) if a.dump_every else None
for step in range(a.steps):
    t = time.time()
    real = x[torch.randint(0, len(x), (B,))]
    with torch.no_grad(): fake, _ = g(torch.randn(B, 128))
    loss = F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean()
    od.zero_grad(); loss.backward(); od.step()
    if (step + 1) % 4 == 0:
        r = real.detach().requires_grad_(True)
        if a.r1 == "exact":
            gr, = torch.autograd.grad(d(r).sum(), r, create_graph=True)
            r1 = gr.square().sum((1, 2, 3)).mean() * a.gamma / 2 * 4
        else:
            gr, = torch.autograd.grad(d(r).sum(), r)
            eps = 1e-2 / gr.square().sum((1, 2, 3)).mean().sqrt()
            r1 = (d(real + eps * gr).sum() - d(real - eps * gr).sum()) / (2 * eps) * a.gamma * 4 / B
        od.zero_grad(); r1.backward(); od.step()
    fake, wm = g(torch.randn(B, 128))
    gl = F.softplus(-d(fake)).mean(); og.zero_grad(); gl.backward(); og.step()
    with torch.no_grad():
        g.w_avg.lerp_(wm, 0.005); b = min(0.995, (2 + step) / (11 + step))
        for pe, p in zip(ge.parameters(), g.parameters()): pe.lerp_(p, 1 - b)
    train_s += time.time() - t
    done = a.minutes and train_s >= a.minutes * 60
    if a.dump_every and (train_s >= next_dump or done):
        dumps.write(step + 1, train_s, lambda k: ge(torch.randn(k, 128), mixing=0.0)[0]); next_dump += a.dump_every * 60
    if (step + 1) % 100 == 0:
        print(step + 1, float(loss.detach()), float(gl.detach()), train_s, flush=True)
        if not a.dump_every:
            torch.manual_seed(123)
            with torch.no_grad(): img, _ = ge(torch.randn(64, 128), mixing=0.0)
            torch.manual_seed(step)
            img = to_u8(img, rounding=False)
            grid = np.zeros((8 * 34 + 2, 8 * 34 + 2) + img.shape[3:], np.uint8)
            for i in range(64):
                r, c = divmod(i, 8); grid[2 + r * 34:2 + r * 34 + 32, 2 + c * 34:2 + c * 34 + 32] = img[i]
            Image.fromarray(grid).save(f'{TAG}-{step+1}.png')
    if done:
        break
