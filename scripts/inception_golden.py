"""Golden features of the FID Inception network with deterministic formula weights.

Builds pytorch-fid's InceptionV3 (the 2015 TensorFlow graph: FIDInceptionA/C/E_1/E_2 blocks,
1008 classes), fills every state-dict entry from a formula both sides compute exactly (an integer
hash of the key and the element index), runs two fixed images through it, and writes
crates/genforge/tests/fixtures/inception_golden.json: the state-dict layout (keys and shapes) and
the pool features and logits of the images. Nothing is downloaded: the weight loader pytorch-fid
calls is handed the formula state dict.

    pip install pytorch-fid
    python scripts/inception_golden.py [--save-pth formula.pth]
"""
import argparse
import json
import math
import pathlib

import numpy as np
import torch
import pytorch_fid.inception as pfi

from formula_weights import uniform


def formula(key, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(key, n)
    name = key.rsplit(".", 1)[-1]
    if key == "fc.weight":
        v = u * math.sqrt(3.0 / shape[1])
    elif name == "weight" and len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        v = u * math.sqrt(6.0 / fan_in)
    elif name == "weight":
        v = 1.0 + 0.1 * u
    elif name == "running_var":
        v = 1.0 + 0.25 * (u + 1.0)
    else:  # bias, running_mean
        v = 0.1 * u
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def image(index, size):
    """A 3 x size x size image in [0, 1]."""
    c = np.arange(3, dtype=np.float64)[:, None, None]
    y = np.arange(size, dtype=np.float64)[None, :, None]
    x = np.arange(size, dtype=np.float64)[None, None, :]
    v = 0.5 + 0.5 * np.sin(0.1 * (x + 1) * (c + 1) + 0.07 * y * (index + 1))
    return v.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--save-pth", help="also write the formula weights as a .pth state dict")
    args = ap.parse_args()

    skeleton = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    skeleton.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    skeleton.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    skeleton.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    skeleton.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    skeleton.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    skeleton.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    skeleton.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    skeleton.Mixed_7b = pfi.FIDInceptionE_1(1280)
    skeleton.Mixed_7c = pfi.FIDInceptionE_2(2048)
    state = {}
    layout = []
    for key, t in skeleton.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = t
            continue
        state[key] = formula(key, tuple(t.shape))
        layout.append([key, list(t.shape)])
    if args.save_pth:
        torch.save(state, args.save_pth)

    pfi.load_state_dict_from_url = lambda *a, **k: state
    net = pfi.InceptionV3([3]).eval()
    fc = skeleton.fc
    fc.load_state_dict({"weight": state["fc.weight"], "bias": state["fc.bias"]})
    images = []
    with torch.no_grad():
        for index, size in [(0, 64), (1, 32)]:
            x = torch.from_numpy(image(index, size))[None]
            pool = net(x)[0].reshape(1, 2048)
            logits = fc(pool)
            images.append(
                {
                    "index": index,
                    "size": size,
                    "pool": pool[0].tolist(),
                    "logits": logits[0].tolist(),
                }
            )
    # torch's bilinear resize (align_corners=False, as pytorch-fid calls it) up and down.
    resize = []
    for index, (h, w), out_hw in [(2, (17, 13), (299, 299)), (3, (64, 64), (32, 32))]:
        x = torch.from_numpy(image(index, max(h, w))[:, :h, :w].copy())[None]
        y = torch.nn.functional.interpolate(x, size=out_hw, mode="bilinear", align_corners=False)
        resize.append({"index": index, "in": [h, w], "out": list(out_hw), "values": y[0, 0].flatten()[::53].tolist()})
    out = pathlib.Path(__file__).resolve().parents[1] / "crates/genforge/tests/fixtures/inception_golden.json"
    out.write_text(
        json.dumps(
            {
                "source": "pytorch-fid 0.3.0 InceptionV3, formula weights",
                "layout": layout,
                "images": images,
                "resize": resize,
            }
        )
        + "\n"
    )
    for im in images:
        p = np.array(im["pool"])
        print(im["size"], p[:4], p.mean(), p.std(), np.array(im["logits"])[:4])


main()
