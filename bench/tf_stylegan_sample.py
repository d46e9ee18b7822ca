#!/usr/bin/env python3
"""Time NVlabs' own StyleGAN (2019) and Progressive GAN generators at 1024x1024 on the CPU, the
reference beside `genforge bench-sample` on an imported pickle of the same network.

    python3 -m venv tfenv && tfenv/bin/pip install tensorflow-cpu==2.15.* 'numpy<2'
    tfenv/bin/python bench/tf_stylegan_sample.py STYLEGAN_DIR PGGAN_DIR [--reps 3] [--threads 2]

Builds `G_style` (FFHQ 1024, as `karras2019stylegan-ffhq-1024x1024.pkl`) and `G_paper`
(CelebA-HQ 1024) with their own code on TensorFlow 2's `tf.compat.v1`, with their initial
weights (the speed does not depend on them), and prints images/s of one image per run after a
warm-up run. StyleGAN runs with `truncation_psi=0.7, randomize_noise=True`, its sampling default.
"""
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_v2_behavior()
sys.modules["tensorflow"] = tf
stylegan_repo, pggan_repo = sys.argv[1:3]
reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2


CONTEXTS = []


def session():
    config = tf.ConfigProto(allow_soft_placement=True, intra_op_parallelism_threads=threads,
                            inter_op_parallelism_threads=threads)
    graph = tf.Graph()
    s = tf.Session(graph=graph, config=config)
    for context in (graph.as_default(), s.as_default()):
        context.__enter__()
        CONTEXTS.append(context)  # kept: a collected context manager leaves its scope
    return s


def timed(name, run):
    run()  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        run()
    dt = (time.perf_counter() - t0) / reps
    print(f"{name}: {dt:.2f} s per 1024x1024 image, {1 / dt:.3f} img/s ({threads} threads)")


sys.path.insert(0, stylegan_repo)
import dnnlib.tflib as tflib  # noqa: E402

session()
full = dict(num_channels=3, resolution=1024, label_size=0)
G = tflib.Network("G", func_name="training.networks_stylegan.G_style", **full)
z = np.random.RandomState(0).randn(1, 512).astype(np.float32)
timed("NVlabs StyleGAN G_style (TF)", lambda: G.run(z, None, truncation_psi=0.7,
                                                      randomize_noise=True))

sys.path.remove(stylegan_repo)
sys.path.insert(0, pggan_repo)
import tfutil  # noqa: E402

session()
G = tfutil.Network("G", func="networks.G_paper", **full)
timed("Progressive GAN G_paper (TF)", lambda: G.run(z, np.zeros([1, 0], np.float32)))
sys.stdout.flush()
import os  # noqa: E402

os._exit(0)
