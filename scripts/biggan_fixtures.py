#!/usr/bin/env python3
"""Fixtures for genforge's BigGAN import tests, made with BigGAN-PyTorch's own classes
(ajbrock/BigGAN-PyTorch, `BigGAN.py` / `layers.py`; its code is imported from a checkout, not
copied here).

    pip install torch numpy
    git clone https://github.com/ajbrock/BigGAN-PyTorch
    python3 scripts/biggan_fixtures.py BigGAN-PyTorch crates/genforge/tests/fixtures/biggan

Writes, into the output directory:
- `g.pth` (zip format) and `g_legacy.pth` (the legacy format): a tiny generator (`G_ch=2`,
  resolution 128, hierarchical `dim_z=12`, `shared_dim=8`, attention at 32 (the narrowest
  width at which the attention's C/8 projections have a channel), 5 classes,
  `SN_eps=1e-6`, `BN_eps=1e-5`) with every parameter and buffer randomised (non-zero `gamma`,
  batch-norm statistics, SN vectors);
- `d.pth`: a tiny discriminator (`D_ch=4`, attention at 32), randomised the same way;
- `golden.pth`: inputs and outputs: `z`, `y`, `g_out = G(z, G.shared(y))` and
  `d_out = D(g_out, y)` in `eval()`, and G's first layer alone, `linear_out = G.linear(z_0)`; then one training-mode forward of G on `z_train`/`y_train`
  (`g_train_out`) and the buffers it leaves (`after.<key>`: every `u0`, `sv0`, `stored_mean`,
  `stored_var` of G);
- `overrides.txt`: the `--set` pairs that turn genforge's `biggan-imagenet128` preset into the
  tiny network, one per line;
- `imagenet128_keys.txt`: `key shape` for every entry of the state dicts of G and D built at
  the 138k ImageNet checkpoint's size (`BigGAN_ch96_bs256x8_138k`: `G_ch=D_ch=96`,
  `dim_z=120`, `shared_dim=128`, hier, attention at 64), as `G.key` / `D.key`.
"""
import os
import sys

import torch

repo, out_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
import BigGAN  # noqa: E402

os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(0)

common = dict(resolution=128, n_classes=5, SN_eps=1e-6)
G = BigGAN.Generator(G_ch=2, dim_z=12, shared_dim=8, hier=True, G_shared=True, G_attn="32",
                     BN_eps=1e-5, G_init="N02", no_optim=True, **common)
D = BigGAN.Discriminator(D_ch=4, D_attn="32", D_init="N02", **common)


def randomise(module):
    with torch.no_grad():
        for name, t in module.state_dict().items():
            leaf = name.split(".")[-1]
            if leaf == "stored_var":
                t.copy_(torch.rand_like(t) + 0.5)
            elif leaf == "stored_mean":
                t.copy_(0.3 * torch.randn_like(t))
            elif leaf == "sv0":
                t.copy_(torch.rand_like(t) + 0.5)
            elif leaf == "gamma":
                t.fill_(0.7)
            elif leaf == "u0":
                t.copy_(torch.randn_like(t))
            elif leaf in ("gain",):  # the output batch norm's gain
                t.copy_(1 + 0.2 * torch.randn_like(t))
            elif leaf == "bias":
                t.copy_(0.1 * torch.randn_like(t))
            elif leaf == "weight" and name.startswith("shared"):
                t.copy_(torch.randn_like(t))
            elif leaf == "weight":
                t.copy_(0.05 * torch.randn_like(t))
            else:
                raise SystemExit(f"unexpected key {name}")


randomise(G)
randomise(D)
G.eval()
D.eval()

torch.save(G.state_dict(), os.path.join(out_dir, "g.pth"))
torch.save(G.state_dict(), os.path.join(out_dir, "g_legacy.pth"),
           _use_new_zipfile_serialization=False)
torch.save(D.state_dict(), os.path.join(out_dir, "d.pth"))

golden = {}
with torch.no_grad():
    z = torch.randn(2, 12)
    y = torch.tensor([1, 3])
    g_out = G(z, G.shared(y))
    golden.update(z=z, y=y, g_out=g_out, d_out=D(g_out, y),
                  linear_out=G.linear(z[:, :G.z_chunk_size]))
    G.train()
    z_train = torch.randn(2, 12)
    y_train = torch.tensor([0, 4])
    golden.update(z_train=z_train, y_train=y_train,
                  g_train_out=G(z_train, G.shared(y_train)))
    for k, v in G.state_dict().items():
        if k.split(".")[-1] in ("u0", "sv0", "stored_mean", "stored_var"):
            golden["after." + k] = v.clone()
torch.save(golden, os.path.join(out_dir, "golden.pth"))

with open(os.path.join(out_dir, "overrides.txt"), "w") as f:
    f.write("model.g_width=2\nmodel.d_width=4\nmodel.z_dim=12\nmodel.shared_dim=8\n"
            "model.num_classes=5\nmodel.g_attention=[32]\nmodel.d_attention=[32]\n")

# The 138k checkpoint's configuration at full size (no init, no optimizer state needed).
full = dict(resolution=128, n_classes=1000, SN_eps=1e-6)
Gf = BigGAN.Generator(G_ch=96, dim_z=120, shared_dim=128, hier=True, G_shared=True,
                      G_attn="64", BN_eps=1e-5, skip_init=True, no_optim=True, **full)
Df = BigGAN.Discriminator(D_ch=96, D_attn="64", skip_init=True, **full)
with open(os.path.join(out_dir, "imagenet128_keys.txt"), "w") as f:
    for prefix, m in (("G", Gf), ("D", Df)):
        for k, v in m.state_dict().items():
            f.write(f"{prefix}.{k} {'x'.join(map(str, v.shape))}\n")
for name in sorted(os.listdir(out_dir)):
    print(name, os.path.getsize(os.path.join(out_dir, name)))
