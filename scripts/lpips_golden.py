#!/usr/bin/env python3
"""Golden LPIPS distances from the `lpips` package itself (Zhang et al. 2018, "The Unreasonable
Effectiveness of Deep Features as a Perceptual Metric"; LPIPS v0.1, VGG trunk), with VGG16
weights from a deterministic formula both sides compute exactly (the one of
`scripts/inception_golden.py`: an integer hash of the key and the element index), so nothing is
downloaded; the linear heads are the package's own `weights/v0.1/vgg.pth`, the file shipped as
`data/lpips/vgg-v0.1.pth`. Writes crates/genforge/tests/fixtures/lpips/golden.json: the distances
of fixed image pairs, per layer and in total.

    pip install lpips torchvision
    python scripts/lpips_golden.py
"""
import json
import math
import pathlib

import numpy as np
import torch
import lpips

from formula_weights import uniform


def formula(key, shape):
    u = uniform(key, int(np.prod(shape)))
    if key.endswith("weight"):
        v = u * math.sqrt(6.0 / (shape[1] * shape[2] * shape[3]))
    else:
        v = 0.1 * u
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def image(key, size):
    """A 3 x size x size image in [-1, 1]."""
    return torch.from_numpy(uniform(key, 3 * size * size).astype(np.float32).reshape(1, 3, size, size))


root = pathlib.Path(__file__).resolve().parent.parent
net = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)  # the package's linear heads
assert torch.equal(net.lin0.model[1].weight,
                   torch.load(root / "data/lpips/vgg-v0.1.pth", map_location="cpu")["lin0.model.1.weight"])
features = [(i, m) for s in [net.net.slice1, net.net.slice2, net.net.slice3, net.net.slice4,
                             net.net.slice5] for i, m in s.named_children()]
with torch.no_grad():
    for i, m in features:
        if isinstance(m, torch.nn.Conv2d):
            m.weight.copy_(formula(f"features.{i}.weight", tuple(m.weight.shape)))
            m.bias.copy_(formula(f"features.{i}.bias", tuple(m.bias.shape)))
pairs = []
with torch.no_grad():
    for a, b, size in [("a0", "b0", 64), ("a1", "b1", 48), ("a2", "a2", 32)]:
        x, y = image(a, size), image(b, size)
        if a == b:  # a near copy
            y = x + 0.05 * image("noise", size)
        total, layers = net(x, y, retPerLayer=True)
        pairs.append(dict(a=a, b=b, size=size, near_copy=a == b, lpips=float(total),
                          layers=[float(v) for v in layers]))
out = root / "crates/genforge/tests/fixtures/lpips/golden.json"
out.write_text(json.dumps(dict(pairs=pairs), indent=1))
print(json.dumps(pairs, indent=1))
