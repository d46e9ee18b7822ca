#!/usr/bin/env python3
"""Golden outputs of StyleGAN2-ADA's augmentation pipeline (NVlabs/stylegan2-ada-pytorch,
`training/augment.py`; imported from a checkout, not copied), for genforge's `nn/augment.rs`.

    pip install torch numpy scipy
    git clone https://github.com/NVlabs/stylegan2-ada-pytorch
    python3 scripts/ada_golden.py stylegan2-ada-pytorch crates/genforge/tests/fixtures/ada/golden.json

Each case runs `AugmentPipe` with one transform's multiplier set to 1 (or all of `bgc`), p = 1
and `debug_percentile = 0.7`, which fixes every drawn parameter at its 70th percentile (the second
rotation of `bgc` at 0), on a fixed RGB and a fixed grayscale 16x16 image (uniform in [-1, 1]).
Recorded: the inputs, each output, and the parameter values the percentile gives, so the test can
build the same matrices.
"""
import json
import sys

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
from training.augment import AugmentPipe  # noqa: E402

Q = 0.7
q = torch.tensor(Q, dtype=torch.float64)
erf = float(torch.erfinv(q * 2 - 1))
params = {
    "xflip": float(np.floor(Q * 2)),
    "rotate90": float(np.floor(Q * 4)),
    "xint": (Q * 2 - 1) * 0.125,
    "scale": float(2 ** (erf * 0.2)),
    "rotate": (Q * 2 - 1) * np.pi,
    "aniso": float(2 ** (erf * 0.2)),
    "xfrac": erf * 0.125,
    "brightness": erf * 0.2,
    "contrast": float(2 ** (erf * 0.5)),
    "lumaflip": float(np.floor(Q * 2)),
    "hue": (Q * 2 - 1) * np.pi,
    "saturation": float(2 ** (erf * 1.0)),
}
BGC = ["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
       "brightness", "contrast", "lumaflip", "hue", "saturation"]

gen = torch.Generator().manual_seed(0)
rgb = torch.rand([1, 3, 16, 16], generator=gen) * 2 - 1
gray = torch.rand([1, 1, 16, 16], generator=gen) * 2 - 1
out = {"percentile": Q, "params": params, "rgb": rgb.flatten().tolist(),
       "gray": gray.flatten().tolist(), "cases": {}}
for case in BGC + ["bgc"]:
    kwargs = {k: 1 for k in (BGC if case == "bgc" else [case])}
    pipe = AugmentPipe(**kwargs).eval()
    pipe.p.copy_(torch.tensor(1.0))
    with torch.no_grad():
        y_rgb = pipe(rgb.clone(), debug_percentile=Q)
        y_gray = pipe(gray.clone(), debug_percentile=Q)
    out["cases"][case] = {"rgb": y_rgb.flatten().tolist(), "gray": y_gray.flatten().tolist()}
    print(case, float((y_rgb - rgb).abs().max()))
with open(sys.argv[2], "w") as f:
    json.dump(out, f)
