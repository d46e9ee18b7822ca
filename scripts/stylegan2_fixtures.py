#!/usr/bin/env python3
"""Fixtures for genforge's StyleGAN2-ADA tests, made with NVlabs' own classes
(NVlabs/stylegan2-ada-pytorch, `training/networks.py`; its code is imported from a checkout,
not copied here, and its embedded source is stripped from the pickles written).

    pip install torch numpy
    git clone https://github.com/NVlabs/stylegan2-ada-pytorch
    python3 scripts/stylegan2_fixtures.py stylegan2-ada-pytorch crates/genforge/tests/fixtures/stylegan2

Writes, into the output directory, for two tiny networks:
- `plain`: unconditional, 16x16 RGB, `z_dim = w_dim = 8`, two mapping layers,
  `channel_base=128, channel_max=16`, no `conv_clamp`;
- `cond`: three classes, 16x16 grayscale, `conv_clamp=0.5` (small enough to clip), D's `cmap`
  projection;

- `<name>.pkl`: `dict(G, D, G_ema, augment_pipe=None, training_set_kwargs)` pickled as
  `training_loop.py` does, with every parameter and buffer randomised (`const`, noise
  strengths and constants, `w_avg`, biases, affine biases), except the fixed `[1,3,3,1]`
  resample filters; the persistent classes' `module_src` is replaced by a placeholder line;
- `<name>.golden.json`: inputs and outputs of `G_ema` and `D` in fp32 on the CPU: `z`, `c`,
  `ws` of `G.mapping(z, c)` at psi 1 and at psi 0.6 with cutoff 3, images of
  `G.synthesis(ws, noise_mode='const')` for both, `D(img, c)` on those images and on `x`
  (uniform in [-1, 1]);
- `keys-<net>.txt`: `key shape` for every parameter and buffer of the networks NVlabs publishes,
  built at full size with their constructor arguments (`ffhq1024`, the FFHQ 1024 StyleGAN2-ADA
  network; `cifar10`, the conditional CIFAR-10 one, whose D is the `orig` architecture), as `G.key` / `D.key`, and
  `kwargs-<net>.json`, those arguments.
"""
import json
import os
import pickle
import sys

import torch

repo, out_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
from training import networks  # noqa: E402
from torch_utils import persistence  # noqa: E402

os.makedirs(out_dir, exist_ok=True)

# The persistent classes carry their module's source (NVIDIA's code) into every pickle; the
# fixtures carry this line instead.
for obj in vars(networks).values():
    if isinstance(obj, type) and hasattr(obj, "_orig_module_src"):
        obj._orig_module_src = "# source not shipped\n"


def randomise(module, gen):
    with torch.no_grad():
        for name, t in module.state_dict().items():
            leaf = name.split(".")[-1]
            if leaf == "resample_filter":
                continue
            if leaf == "noise_strength":
                t.copy_(0.5 * torch.randn(t.shape, generator=gen))
            elif leaf in ("bias", "w_avg", "const", "noise_const"):
                t.copy_(0.5 * torch.randn(t.shape, generator=gen))
            else:  # weights: NVlabs' N(0, 1) scale (divided by the lr multiplier for fc)
                scale = t.abs().mean().item() / 0.8 if t.abs().mean().item() > 0 else 1.0
                t.copy_(scale * torch.randn(t.shape, generator=gen))


def flat(t):
    return t.detach().double().flatten().tolist()


def build(name, c_dim, channels, conv_clamp, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    g_kwargs = dict(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=channels,
                    mapping_kwargs=dict(num_layers=2),
                    synthesis_kwargs=dict(channel_base=128, channel_max=16, num_fp16_res=0,
                                          conv_clamp=conv_clamp))
    d_kwargs = dict(c_dim=c_dim, img_resolution=16, img_channels=channels,
                    architecture="resnet", channel_base=128, channel_max=16, num_fp16_res=0,
                    conv_clamp=conv_clamp, block_kwargs={}, mapping_kwargs={},
                    epilogue_kwargs=dict(mbstd_group_size=2))
    G = networks.Generator(**g_kwargs).eval().requires_grad_(False)
    D = networks.Discriminator(**d_kwargs).eval().requires_grad_(False)
    randomise(G, gen)
    randomise(D, gen)
    b = 4
    z = torch.randn([b, 8], generator=gen)
    c = torch.zeros([b, c_dim])
    if c_dim:
        c[torch.arange(b), torch.tensor([0, 2, 1, 2])] = 1
    x = torch.rand([b, channels, 16, 16], generator=gen) * 2 - 1
    ws = G.mapping(z, c)
    ws_trunc = G.mapping(z, c, truncation_psi=0.6, truncation_cutoff=3)
    img = G.synthesis(ws, noise_mode="const", force_fp32=True)
    img_trunc = G.synthesis(ws_trunc, noise_mode="const", force_fp32=True)
    d_img = D(img, c)
    d_x = D(x, c)
    # A saturated random network proves little: the outputs must depend on the inputs.
    assert (img[0] - img[1]).abs().max() > 0.05 and (ws[0] - ws[1]).abs().max() > 0.05
    print(name, "D(x)", flat(d_x), "D(G(z))", flat(d_img))
    assert (d_x[0] - d_x[1]).abs().max() > 1e-3 and (d_img[0] - d_img[1]).abs().max() > 1e-3
    assert (img - img_trunc).abs().max() > 1e-3
    if conv_clamp is not None:  # the clamp must bite
        clamped = [m for m in G.modules() if getattr(m, "conv_clamp", None) is not None]
        for m in clamped:
            m.conv_clamp = None
        free = G.synthesis(ws, noise_mode="const", force_fp32=True)
        for m in clamped:
            m.conv_clamp = conv_clamp
        assert (free - img).abs().max() > 0.05
    snapshot = dict(G=G, D=D, G_ema=G, augment_pipe=None,
                    training_set_kwargs=dict(resolution=16, use_labels=bool(c_dim)))
    with open(os.path.join(out_dir, f"{name}.pkl"), "wb") as f:
        pickle.dump(snapshot, f, protocol=3)
    golden = dict(g_kwargs=g_kwargs, d_kwargs=d_kwargs, z=flat(z), c=flat(c), x=flat(x),
                  ws=flat(ws), ws_trunc=flat(ws_trunc), img=flat(img), img_trunc=flat(img_trunc),
                  d_img=flat(d_img), d_x=flat(d_x), batch=b, num_ws=G.num_ws)
    with open(os.path.join(out_dir, f"{name}.golden.json"), "w") as f:
        json.dump(golden, f)


build("plain", c_dim=0, channels=3, conv_clamp=None, seed=1)
build("cond", c_dim=3, channels=1, conv_clamp=0.5, seed=2)

# The published networks' constructor arguments (as their pickles' `_init_kwargs` hold them).
full = {
    "ffhq1024": (
        dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
             mapping_kwargs=dict(num_layers=8),
             synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=4,
                                   conv_clamp=256)),
        dict(c_dim=0, img_resolution=1024, img_channels=3, architecture="resnet",
             channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
             block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4)),
    ),
    "cifar10": (
        dict(z_dim=512, c_dim=10, w_dim=512, img_resolution=32, img_channels=3,
             mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=4,
                                   conv_clamp=256)),
        dict(c_dim=10, img_resolution=32, img_channels=3, architecture="orig",
             channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
             block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=32)),
    ),
}
for name, (g_kwargs, d_kwargs) in full.items():
    G = networks.Generator(**g_kwargs)
    D = networks.Discriminator(**d_kwargs)
    with open(os.path.join(out_dir, f"keys-{name}.txt"), "w") as f:
        for prefix, net in (("G", G), ("D", D)):
            for k, v in net.state_dict().items():
                f.write(f"{prefix}.{k} {list(v.shape)}\n")
    with open(os.path.join(out_dir, f"kwargs-{name}.json"), "w") as f:
        json.dump(dict(G=g_kwargs, D=d_kwargs), f, indent=1)

for name in sorted(os.listdir(out_dir)):
    print(name, os.path.getsize(os.path.join(out_dir, name)))
