"""Golden numbers for genforge's metrics from the reference implementations.

FID from pytorch-fid's `calculate_frechet_distance`, KID and the Inception Score from
torch-fidelity, on feature arrays both sides compute from the same formula (so only the numbers
are committed). Writes crates/genforge/tests/fixtures/metrics_golden.json.

    pip install pytorch-fid torch-fidelity
    python scripts/metrics_golden.py
"""
import json
import pathlib

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric


def features(n, d, phase, scale):
    """f[i, j] = scale * sin(0.37 i (j + 1) / d + phase j) + 0.05 j, as float32."""
    i = np.arange(n, dtype=np.float64)[:, None]
    j = np.arange(d, dtype=np.float64)[None, :]
    return (scale * np.sin(0.37 * i * (j + 1) / d + phase * j) + 0.05 * j).astype(np.float32)


def stats(f):
    f = f.astype(np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


cases = []
for n, d, (pa, sa), (pb, sb) in [
    (300, 16, (0.3, 1.0), (0.5, 1.3)),
    (500, 40, (0.1, 2.0), (0.2, 1.5)),
]:
    a, b = features(n, d, pa, sa), features(n, d, pb, sb)
    fid = calculate_frechet_distance(*stats(a), *stats(b))
    # In float64: torch-fidelity keeps the features' dtype, and float32 sums of m^2 kernel
    # values cancel to noise.
    kid = kid_features_to_metric(
        torch.from_numpy(a.astype(np.float64)),
        torch.from_numpy(b.astype(np.float64)),
        kid_subsets=1,
        kid_subset_size=n,
        verbose=False,
    )["kernel_inception_distance_mean"]
    logits = features(n, 10, pa, 3.0 * sa)
    isc = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=False)
    cases.append(
        {
            "n": n,
            "d": d,
            "a": [pa, sa],
            "b": [pb, sb],
            "fid": float(fid),
            "kid": float(kid),
            "is_mean": isc["inception_score_mean"],
            "is_std": isc["inception_score_std"],
        }
    )

out = pathlib.Path(__file__).resolve().parents[1] / "crates/genforge/tests/fixtures/metrics_golden.json"
out.write_text(json.dumps({"source": "pytorch-fid 0.3.0, torch-fidelity 0.4.0", "cases": cases}, indent=1) + "\n")
print(json.dumps(cases, indent=1))
