#!/usr/bin/env python3
"""Golden R1 gradients for genforge's regularizer tests, from NVlabs' own discriminator and
PyTorch's double backward (NVlabs/stylegan2-ada-pytorch, `training/networks.py` and the R1 term
of `training/loss.py`; its code is imported from a checkout, not copied here).

    pip install torch numpy
    git clone https://github.com/NVlabs/stylegan2-ada-pytorch
    python3 scripts/r1_golden.py stylegan2-ada-pytorch crates/genforge/tests/fixtures/stylegan2

For each of the fixtures `plain` and `cond` (the conditional one clips every layer at
`conv_clamp` 0.5, so many of its activations sit on the clamp's flat side), reads NAME.pkl and
NAME.golden.json (written by scripts/stylegan2_fixtures.py), builds `networks.Discriminator` from
the golden file's constructor arguments with the pickle's weights, and on the golden file's `x`
(and labels `c`) computes NVlabs' R1 with gamma 1, `r1 = mean_i ||grad_x D(x, c)_i||^2 / 2`, and
its gradient in every parameter of D by double backward. Writes NAME.r1.json: `r1`, and per
parameter its shape and gradient norm.
"""
import json
import os
import pickle
import sys

import torch

repo, fixtures = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
from training import networks  # noqa: E402


class Persistent:
    """A persistent NVlabs object read as data: the fixtures carry no source to rebuild it from."""

    def __init__(self, meta):
        self.state = meta["state"]


class Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch_utils.persistence" and name == "_reconstruct_persistent_obj":
            return Persistent
        return super().find_class(module, name)


def state_dict(obj, prefix=""):
    """The `state_dict` of a module read as `Persistent` data."""
    if isinstance(obj, torch.nn.Module):
        return {prefix + k: v for k, v in obj.state_dict().items()}
    out = {}
    for group in ("_parameters", "_buffers"):
        for k, v in obj.state.get(group, {}).items():
            if v is not None:
                out[prefix + k] = v
    for k, m in obj.state.get("_modules", {}).items():
        if m is not None:
            out.update(state_dict(m, f"{prefix}{k}."))
    return out


for name in ("plain", "cond"):
    with open(os.path.join(fixtures, f"{name}.pkl"), "rb") as f:
        snapshot = Reader(f).load()
    golden = json.load(open(os.path.join(fixtures, f"{name}.golden.json")))
    D = networks.Discriminator(**golden["d_kwargs"])
    D.load_state_dict(state_dict(snapshot["D"]), strict=True)
    D = D.float().train().requires_grad_(True)

    b, res = golden["batch"], golden["d_kwargs"]["img_resolution"]
    ch = golden["d_kwargs"]["img_channels"]
    x = torch.tensor(golden["x"], dtype=torch.float32).reshape(b, ch, res, res)
    c_dim = golden["d_kwargs"]["c_dim"]
    c = torch.tensor(golden["c"], dtype=torch.float32).reshape(b, c_dim) if c_dim else None
    assert (D(x, c).detach().double().flatten() - torch.tensor(golden["d_x"])).abs().max() < 1e-5

    # training/loss.py: r1_grads of real_logits.sum(), r1_penalty = ||.||^2 summed per image,
    # loss_Dr1 = r1_penalty * (gamma / 2), averaged over the batch.
    x = x.detach().requires_grad_(True)
    g, = torch.autograd.grad(D(x, c).sum(), x, create_graph=True)
    r1 = g.square().sum([1, 2, 3]).mean() / 2
    names, params = zip(*D.named_parameters())
    grads = torch.autograd.grad(r1, params, allow_unused=True)  # D's last bias leaves grad_x alone
    grads = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, grads)]
    out = dict(r1=r1.item(), params={
        n: dict(shape=list(p.shape), norm=gr.double().norm().item()) for n, p, gr in zip(names, params, grads)
    })
    with open(os.path.join(fixtures, f"{name}.r1.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(name, "r1", out["r1"], "params", len(out["params"]),
          "total norm", sum(v["norm"] ** 2 for v in out["params"].values()) ** 0.5)
