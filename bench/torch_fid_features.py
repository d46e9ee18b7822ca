"""pytorch-fid's feature extraction speed, for comparison with `genforge bench-features`.

Times pytorch-fid's InceptionV3 (2048-d pool features, bilinear resize to 299 included) on
random 32x32 RGB images in batches, on the CPU by default. The weights do not change the speed,
so the network keeps its random initialisation instead of downloading the weight file.

    python bench/torch_fid_features.py [--n 200] [--batch 50] [--threads 2] [--device cpu]
"""
import argparse
import time

import torch
import pytorch_fid.inception as pfi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    skeleton = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, block in [
        ("Mixed_5b", pfi.FIDInceptionA(192, pool_features=32)),
        ("Mixed_5c", pfi.FIDInceptionA(256, pool_features=64)),
        ("Mixed_5d", pfi.FIDInceptionA(288, pool_features=64)),
        ("Mixed_6b", pfi.FIDInceptionC(768, channels_7x7=128)),
        ("Mixed_6c", pfi.FIDInceptionC(768, channels_7x7=160)),
        ("Mixed_6d", pfi.FIDInceptionC(768, channels_7x7=160)),
        ("Mixed_6e", pfi.FIDInceptionC(768, channels_7x7=192)),
        ("Mixed_7b", pfi.FIDInceptionE_1(1280)),
        ("Mixed_7c", pfi.FIDInceptionE_2(2048)),
    ]:
        setattr(skeleton, name, block)
    state = skeleton.state_dict()
    pfi.load_state_dict_from_url = lambda *a, **k: state
    net = pfi.InceptionV3([3]).eval().to(args.device)

    def run(n):
        with torch.no_grad():
            for start in range(0, n, args.batch):
                x = torch.rand(min(args.batch, n - start), 3, 32, 32, device=args.device)
                net(x)[0].cpu()

    run(args.batch)
    t0 = time.perf_counter()
    run(args.n)
    dt = time.perf_counter() - t0
    print(f"pytorch-fid inception: {args.n / dt:.1f} img/s ({args.n} images, batch {args.batch}, "
          f"{args.threads} threads, torch {torch.__version__})")


main()
