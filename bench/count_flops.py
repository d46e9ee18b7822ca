"""Counts the floating-point work of a PyTorch reference script: the FLOPs of its matrix
products and convolutions, forward and backward (and double backward), with the formulas of
`torch.utils.flop_counter`; element-wise work is not counted. After each line the script
prints, it prints the FLOPs done since the line before, per step.

    python3 bench/count_flops.py --steps 5 bench/torch_stylegan.py --preset mnist --batch 32 --steps 4 --warmup 1

`--steps` is how many train steps the script runs per printed stage (warm-up included), to
divide by. Run it apart from timing: counting slows the script down.
"""
import argparse
import builtins
import runpy
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import flop_registry


class Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            shape = lambda t: t.shape if isinstance(t, torch.Tensor) else t
            self.flops += count(*tree_map(shape, args), **tree_map(shape, kwargs),
                                out_val=tree_map(shape, out))
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, required=True, help="train steps per printed stage")
    ap.add_argument("script")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    sys.argv = [a.script] + a.args
    counter = Count()
    seen = [0]
    print_ = builtins.print

    def print_with_flops(*args, **kwargs):
        print_(*args, **kwargs)
        done = counter.flops - seen[0]
        seen[0] = counter.flops
        print_(f"  [{done / 1e9 / a.steps:.2f} GFLOP per step: {done / 1e9:.1f} GFLOP over {a.steps} steps]")

    builtins.print = print_with_flops
    with counter:
        runpy.run_path(a.script, run_name="__main__")


if __name__ == "__main__":
    main()
