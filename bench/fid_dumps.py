"""Sample dumps for an FID-against-time curve, shared by the PyTorch reference trainings
(bench/torch_stylegan_train.py, bench/torch_stylegan2_train.py): TAG-fid/reals/ holds the first N
training images, TAG-fid/tSSSSS/ N samples after SSSSS seconds of training, and
TAG-fid/times.jsonl one line per dump; bench/fid_curve.py scores them with genforge's metrics.
"""
import json
import os

import torch
from PIL import Image


def to_u8(img, rounding=True):
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W] (grey) or [N, H, W, 3]."""
    img = (img.clamp(-1, 1) + 1) * 127.5
    img = (img.round() if rounding else img).byte().numpy().transpose(0, 2, 3, 1)
    return img[..., 0] if img.shape[-1] == 1 else img


class Dumps:
    def __init__(self, tag, reals, n):
        """`reals`: the training images in [-1, 1]; the first `n` are written, as genforge's
        evaluations during training use the first `train.eval_n`."""
        self.dir, self.n = f"{tag}-fid", n
        os.makedirs(f"{self.dir}/reals", exist_ok=True)
        open(f"{self.dir}/times.jsonl", "w").close()
        for i, im in enumerate(to_u8(reals[:n])):
            Image.fromarray(im).save(f"{self.dir}/reals/{i:05d}.png")

    def write(self, step, train_s, generate):
        """`generate(k)`: k samples in [-1, 1], drawn here from seed 1 in batches of 100; the
        training RNG is kept."""
        out = f"{self.dir}/t{int(train_s):05d}"
        os.makedirs(out, exist_ok=True)
        state = torch.get_rng_state()
        torch.manual_seed(1)
        with torch.no_grad():
            for i in range(0, self.n, 100):
                for j, im in enumerate(to_u8(generate(min(100, self.n - i)))):
                    Image.fromarray(im).save(f"{out}/{i + j:05d}.png")
        torch.set_rng_state(state)
        with open(f"{self.dir}/times.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "minutes": train_s / 60, "dir": os.path.basename(out)}) + "\n")
        print(f"step {step}: {train_s / 60:.2f} min of training, {self.n} samples in {out}", flush=True)
