#!/usr/bin/env python3
"""Golden values for genforge's spectral-norm convolutions, computed with PyTorch's
`nn.utils.spectral_norm` (one training-mode forward: one power iteration, then W / sigma).

    pip install torch
    python3 scripts/spectral_norm_golden.py crates/genforge/tests/fixtures

Writes sn_conv.json (Conv2d 2->3, k4 s2 p1) and sn_convT.json (ConvTranspose2d 2->3, k4 s2 p1):
weights, bias, the starting `u`, an input x, a cotangent r, and PyTorch's output y, dL/dW,
dL/dx and updated `u` for L = sum(y * r).
"""
import json, sys
import torch

out_dir = sys.argv[1]
torch.manual_seed(0)
for kind in ["conv", "convT"]:
    m = torch.nn.Conv2d(2, 3, 4, 2, 1) if kind == "conv" else torch.nn.ConvTranspose2d(2, 3, 4, 2, 1)
    torch.nn.init.normal_(m.weight, 0, 0.5)
    torch.nn.init.normal_(m.bias, 0, 0.1)
    w0 = m.weight.detach().clone()
    m = torch.nn.utils.spectral_norm(m)
    u0 = m.weight_u.detach().clone()
    x = torch.randn(2, 2, 6, 6, requires_grad=True)
    r = torch.randn_like(m(x))
    with torch.no_grad():
        m.weight_u.copy_(u0)  # undo the probe forward's power iteration
    y = m(x)
    (y * r).sum().backward()
    json.dump(dict(
        w=w0.flatten().tolist(), wshape=list(w0.shape), b=m.bias.detach().tolist(), u=u0.tolist(),
        x=x.detach().flatten().tolist(), r=r.flatten().tolist(), rshape=list(r.shape),
        y=y.detach().flatten().tolist(), gw=m.weight_orig.grad.flatten().tolist(),
        gx=x.grad.flatten().tolist(), u1=m.weight_u.detach().tolist(),
    ), open(f"{out_dir}/sn_{kind}.json", "w"))
