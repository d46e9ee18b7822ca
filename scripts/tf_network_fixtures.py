#!/usr/bin/env python3
"""Fixtures for genforge's import of NVlabs' original TensorFlow pickles of StyleGAN (2019) and
Progressive GAN, made with their own build functions and `Network` classes
(NVlabs/stylegan `training/networks_stylegan.py` and `dnnlib/tflib`;
tkarras/progressive_growing_of_gans `networks.py` and `tfutil.py`; their code is imported from
checkouts, not copied here, and its embedded source is stripped from the pickles written).

Both repositories target TensorFlow 1.x; they run unchanged on TensorFlow 2's `tf.compat.v1`
graph mode on the CPU, which this script installs in place of `tensorflow` before importing
them:

    python3 -m venv tfenv && tfenv/bin/pip install tensorflow-cpu==2.15.* 'numpy<2'
    git clone https://github.com/NVlabs/stylegan
    git clone https://github.com/tkarras/progressive_growing_of_gans
    tfenv/bin/python scripts/tf_network_fixtures.py stylegan progressive_growing_of_gans \
        crates/genforge/tests/fixtures/tf

Writes, into the output directory:
- `stylegan.pkl` and `stylegan-fused.pkl`: `(G, D, Gs)` of a tiny unconditional StyleGAN
  (`G_style`, `D_basic`; 16x16 RGB, `latent_size = dlatent_size = 8`, two mapping layers,
  `fmap_base=64, fmap_max=16`), pickled as `training_loop.py` pickles them (protocol 4), with
  `fused_scale='auto'` (no fused layers at this size) and `fused_scale=True` (every up and down
  conv fused, as the published 1024 networks are from 128x128 up);
- `pggan.pkl`: `(G, D, Gs)` of a tiny Progressive GAN (`G_paper`, `D_paper`, same sizes, the
  default `fused_scale=True`);
- every variable is randomised (biases, noise strengths, `dlatent_avg` and the constant noise
  maps included), except `lod`, which stays 0; `Gs` is randomised apart from `G`;
  `build_module_src` is replaced by a placeholder line;
- `<name>.golden.json`: inputs and outputs of `Gs` and `D` in fp32: `z`; for StyleGAN the
  mapping output `dlatents`, `images` of the synthesis network with `randomize_noise=False`,
  `images_trunc` of the whole `Gs` with `truncation_psi=0.6, truncation_cutoff=3`, and the noise
  maps; for Progressive GAN `images`; `D` on the images and on `x` (uniform in [-1, 1]);
- `keys-<net>.txt`: `net/variable shape` of every variable of the networks NVlabs published,
  built at full size (`stylegan-ffhq1024`: `karras2019stylegan-ffhq-1024x1024.pkl`'s G_style
  and D_basic; `pggan-celebahq1024`: `karras2018iclr-celebahq-1024x1024.pkl`'s G_paper and
  D_paper), components as `component/variable`, and `kwargs-<net>.json`, their arguments;
- with `--full DIR`, into DIR (not committed: 300 MB each): those two full-size `(G, D, Gs)` with
  randomised weights, and `<net>.golden.json` with `z`, every 997th value of `Gs`'s image
  (`randomize_noise=False`, no truncation) and `D`'s score, for the ignored test
  `full_size_pickles_match_tf` (`GENFORGE_TF_FULL_DIR=DIR`).
"""
import copyreg
import json
import os
import pickle
import sys

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_v2_behavior()
sys.modules["tensorflow"] = tf

stylegan_repo, pggan_repo, out_dir = sys.argv[1:4]
# --full DIR: also full-size networks (FFHQ 1024 StyleGAN, CelebA-HQ 1024 Progressive GAN) with
# randomised weights, for the ignored full-size test (hundreds of MB: not committed).
full_dir = sys.argv[sys.argv.index("--full") + 1] if "--full" in sys.argv else None
os.makedirs(out_dir, exist_ok=True)
SOURCE = "# source not shipped\n"


CONTEXTS = []


def fresh_graph():
    """A new graph with its own CPU session as the default (each network set is built alone)."""
    graph = tf.Graph()
    config = tf.ConfigProto(allow_soft_placement=True)
    config.graph_options.place_pruned_graph = True
    session = tf.Session(graph=graph, config=config)
    for context in (graph.as_default(), session.as_default()):
        context.__enter__()
        CONTEXTS.append(context)  # kept: a collected context manager leaves its scope
    return session


def save_json(name, value):
    with open(os.path.join(out_dir, name), "w") as f:
        json.dump(value, f)


def floats(a):
    # str() of a numpy float32 is its shortest round-trip form.
    return [float(str(v)) for v in np.asarray(a, dtype=np.float32).ravel()]


def variables(net, prefix=""):
    """`component/name -> tf.Variable` of a network (a `dnnlib.tflib.network.Network`, whose
    components pickle inside it, or a Progressive GAN `tfutil.Network`)."""
    own = getattr(net, "own_vars", None) or net.vars
    out = {prefix + k: v for k, v in own.items()}
    for name, comp in getattr(net, "components", {}).items():
        out.update(variables(comp, prefix + name + "/"))
    return out


def randomise(net, rs, session):
    for name, var in variables(net).items():
        leaf = name.split("/")[-1]
        shape = var.shape.as_list()
        if leaf == "lod":
            continue
        if leaf == "const" or leaf.startswith("noise"):
            value = rs.randn(*shape)
        elif leaf == "bias" or leaf == "dlatent_avg":
            value = 0.2 * rs.randn(*shape)
        elif name.endswith("Noise/weight"):
            value = 0.5 * rs.randn(*shape)
        else:
            value = rs.randn(*shape)
        if name.startswith("mapping/"):
            value = value / 0.01  # the stored values of lr multiplier 0.01 layers
        var.load(value.astype(np.float32), session)


def write_pickle(nets, path, network_class):
    """`(G, D, Gs)` pickled as NVlabs pickles them, minus the embedded source."""

    class Stripped(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, network_class):
                state = obj.__getstate__()
                state["build_module_src"] = SOURCE
                return copyreg.__newobj__, (type(obj),), state
            return NotImplemented

    with open(path, "wb") as f:
        Stripped(f, protocol=4).dump(nets)


def keys(nets, name, kwargs):
    lines = []
    for tag, net in nets:
        for k, v in variables(net).items():
            lines.append("%s/%s %s" % (tag, k, list(v.shape.as_list())))
    with open(os.path.join(out_dir, "keys-%s.txt" % name), "w") as f:
        f.write("\n".join(lines) + "\n")
    save_json("kwargs-%s.json" % name, kwargs)


def save_full(nets, name, network_class, golden):
    """A full-size `(G, D, Gs)`, its input `z` and every 997th value of its outputs, into
    `full_dir`."""
    write_pickle(nets, os.path.join(full_dir, name + ".pkl"), network_class)
    out = {k: floats(np.asarray(v).ravel()[::997]) for k, v in golden.items()}
    out["z"] = floats(golden["z"])
    with open(os.path.join(full_dir, name + ".golden.json"), "w") as f:
        json.dump(out, f)


def distinct(a, what):
    a = np.asarray(a)
    assert np.abs(a[0] - a[1]).max() > 1e-3, "%s does not depend on its input" % what
    assert np.isfinite(a).all(), what


# StyleGAN (2019).
sys.path.insert(0, stylegan_repo)
import dnnlib.tflib as tflib  # noqa: E402

TINY = dict(num_channels=3, resolution=16, fmap_base=64, fmap_max=16, label_size=0)
SG_TINY = dict(TINY, latent_size=8, dlatent_size=8, mapping_fmaps=8, mapping_layers=2)
B = 4


def stylegan(name, fused_scale, seed):
    session = fresh_graph()
    rs = np.random.RandomState(seed)
    kw = dict(SG_TINY, fused_scale=fused_scale)
    G = tflib.Network("G", func_name="training.networks_stylegan.G_style", **kw)
    D = tflib.Network("D", func_name="training.networks_stylegan.D_basic", **kw)
    Gs = G.clone("Gs")
    for net in (G, D, Gs):
        randomise(net, rs, session)
    z = rs.randn(B, 8).astype(np.float32)
    dlatents = Gs.components.mapping.run(z, None)
    images = Gs.components.synthesis.run(dlatents, randomize_noise=False)
    trunc = Gs.run(z, None, truncation_psi=0.6, truncation_cutoff=3, randomize_noise=False)
    x = rs.uniform(-1, 1, images.shape).astype(np.float32)
    for a, what in ((dlatents, "mapping"), (images, "synthesis"), (trunc, "truncation")):
        distinct(a, what)
    assert np.abs(images - trunc).max() > 1e-3, "truncation changes nothing"
    synth = variables(Gs.components.synthesis)
    noise = [synth["noise%d" % i].eval(session) for i in range(dlatents.shape[1])]
    write_pickle((G, D, Gs), os.path.join(out_dir, name + ".pkl"), tflib.Network)
    save_json(name + ".golden.json", {
        "batch": B,
        "num_layers": int(dlatents.shape[1]),
        "z": floats(z),
        "dlatents": floats(dlatents),
        "images": floats(images),
        "images_trunc": floats(trunc),
        "noise": [floats(n) for n in noise],
        "d_images": floats(D.run(images, None)),
        "x": floats(x),
        "d_x": floats(D.run(x, None)),
    })


stylegan("stylegan", "auto", 1)
stylegan("stylegan-fused", True, 2)

fresh_graph()
full = dict(num_channels=3, resolution=1024, label_size=0)
G = tflib.Network("G", func_name="training.networks_stylegan.G_style", **full)
D = tflib.Network("D", func_name="training.networks_stylegan.D_basic", **full)
keys((("G", G), ("D", D)), "stylegan-ffhq1024", full)
if full_dir:
    Gs = G.clone("Gs")
    rs = np.random.RandomState(4)
    for net in (G, D, Gs):
        randomise(net, rs, tf.get_default_session())
    z = rs.randn(1, 512).astype(np.float32)
    images = Gs.components.synthesis.run(Gs.components.mapping.run(z, None), randomize_noise=False)
    save_full((G, D, Gs), "stylegan-ffhq1024", tflib.Network, {
        "z": z, "images": images, "d_images": D.run(images, None)})

# Progressive GAN: its modules are top-level (`tfutil`, `networks`), loaded from its checkout.
sys.path.remove(stylegan_repo)
sys.path.insert(0, pggan_repo)
import tfutil  # noqa: E402

session = fresh_graph()
rs = np.random.RandomState(3)
kw = dict(TINY, latent_size=8)
G = tfutil.Network("G", func="networks.G_paper", **kw)
D = tfutil.Network("D", func="networks.D_paper", **kw)
Gs = G.clone("Gs")
for net in (G, D, Gs):
    randomise(net, rs, session)
z = rs.randn(B, 8).astype(np.float32)
labels = np.zeros([B, 0], np.float32)
images = Gs.run(z, labels)
x = rs.uniform(-1, 1, images.shape).astype(np.float32)
distinct(images, "G")
scores, _ = D.run(images)
scores_x, _ = D.run(x)
distinct(scores, "D")
write_pickle((G, D, Gs), os.path.join(out_dir, "pggan.pkl"), tfutil.Network)
save_json("pggan.golden.json", {
    "batch": B,
    "z": floats(z),
    "images": floats(images),
    "d_images": floats(scores),
    "x": floats(x),
    "d_x": floats(scores_x),
})

fresh_graph()
G = tfutil.Network("G", func="networks.G_paper", **full)
D = tfutil.Network("D", func="networks.D_paper", **full)
keys((("G", G), ("D", D)), "pggan-celebahq1024", full)
if full_dir:
    Gs = G.clone("Gs")
    rs = np.random.RandomState(5)
    for net in (G, D, Gs):
        randomise(net, rs, tf.get_default_session())
    z = rs.randn(1, 512).astype(np.float32)
    images = Gs.run(z, np.zeros([1, 0], np.float32))
    save_full((G, D, Gs), "pggan-celebahq1024", tfutil.Network, {
        "z": z, "images": images, "d_images": D.run(images)[0]})
print("wrote", sorted(os.listdir(out_dir)))
sys.stdout.flush()
os._exit(0)  # skips TF's complaints about the graph contexts left open above
