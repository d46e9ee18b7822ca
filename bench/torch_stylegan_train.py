"""Train bench/torch_stylegan.py's stylegan-mnist network on the shipped digits (resized to 32x32)
with lazy exact R1, to compare training behaviour with genforge; writes G-average grids of 64 fixed
latents every 100 steps as TAG-STEP.png.

    python3 bench/torch_stylegan_train.py STEPS GAMMA LR BATCH TAG [MAPPING_LAYERS [MBSTD_GROUP]]
    python3 bench/torch_stylegan_train.py 400 10 0.001 32 map8 8 4
"""
import os, sys, gzip, numpy as np, torch, torch.nn.functional as F, copy, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_stylegan import Generator, Discriminator
from PIL import Image
torch.set_num_threads(1); torch.manual_seed(0)
raw = gzip.open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'mnist', 'mnist-10k-images-idx3-ubyte.gz')).read()
x = torch.tensor(np.frombuffer(raw[16:], np.uint8).reshape(-1, 1, 28, 28).astype(np.float32) / 127.5 - 1)
x = F.interpolate(x, size=32, mode='bilinear', align_corners=False)
steps = int(sys.argv[1]); gamma = float(sys.argv[2]); lr = float(sys.argv[3]); B = int(sys.argv[4]); TAG = sys.argv[5]
NMAP = int(sys.argv[6]) if len(sys.argv) > 6 else 8
GROUP = int(sys.argv[7]) if len(sys.argv) > 7 else 4
g, d = Generator(128, NMAP, 1, 32, 256, 128), Discriminator(1, 32, 256, 128, GROUP)
ge = copy.deepcopy(g).requires_grad_(False)
og = torch.optim.Adam(g.parameters(), lr, betas=(0.0, 0.99)); od = torch.optim.Adam(d.parameters(), lr, betas=(0.0, 0.99))
t0 = time.time()
for step in range(steps):
    real = x[torch.randint(0, len(x), (B,))]
    with torch.no_grad(): fake, _ = g(torch.randn(B, 128))
    loss = F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean()
    od.zero_grad(); loss.backward(); od.step()
    if (step + 1) % 4 == 0:
        r = real.detach().requires_grad_(True)
        gr, = torch.autograd.grad(d(r).sum(), r, create_graph=True)
        r1 = gr.square().sum((1, 2, 3)).mean() * gamma / 2 * 4
        od.zero_grad(); r1.backward(); od.step()
    fake, wm = g(torch.randn(B, 128))
    gl = F.softplus(-d(fake)).mean(); og.zero_grad(); gl.backward(); og.step()
    with torch.no_grad():
        g.w_avg.lerp_(wm, 0.005); b = min(0.995, (2 + step) / (11 + step))
        for pe, p in zip(ge.parameters(), g.parameters()): pe.lerp_(p, 1 - b)
    if (step + 1) % 100 == 0:
        print(step + 1, float(loss.detach()), float(gl.detach()), time.time() - t0, flush=True)
        with torch.no_grad():
            torch.manual_seed(123); img, _ = ge(torch.randn(64, 128), mixing=0.0); torch.manual_seed(step)
        img = ((img.clamp(-1, 1) + 1) * 127.5).byte().numpy()[:, 0]
        grid = np.zeros((8 * 34 + 2, 8 * 34 + 2), np.uint8)
        for i in range(64):
            r, c = divmod(i, 8); grid[2 + r * 34:2 + r * 34 + 32, 2 + c * 34:2 + c * 34 + 32] = img[i]
        Image.fromarray(grid).save(f'{TAG}-{step+1}.png')
