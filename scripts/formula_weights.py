"""The deterministic values the golden scripts and genforge's tests both compute exactly: an FNV-1a
hash of a key, mixed with each element index by SplitMix64, as 24-bit fractions in [-1, 1)
(`metrics::inception::uniform` on the Rust side)."""
import numpy as np

MASK = (1 << 64) - 1


def fnv1a(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def splitmix(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def uniform(key, count):
    """count values in [-1, 1), exact in float64: 24-bit fractions."""
    h = fnv1a(key)
    out = np.empty(count, dtype=np.float64)
    for k in range(count):
        out[k] = (splitmix(h ^ k) >> 40) / float(1 << 23) - 1.0
    return out
