#!/usr/bin/env python3
"""Fixtures for genforge's StyleGAN2-ADA tests, made with NVlabs' own classes
(NVlabs/stylegan2-ada-pytorch, `training/networks.py`; its code is imported from a checkout,
not copied here, and its embedded source is stripped from the pickles written).

    pip install torch numpy
    git clone https://github.com/NVlabs/stylegan2-ada-pytorch
    python3 scripts/stylegan2_fixtures.py stylegan2-ada-pytorch crates/genforge/tests/fixtures/stylegan2

Writes, into the output directory, for two tiny networks:
- `plain`: unconditional, 16x16 RGB, `z_dim = w_dim = 8`, two mapping layers,
  `channel_base=128, channel_max=16`, no `conv_clamp`;
- `cond`: three classes, 16x16 grayscale, `conv_clamp=0.5` (small enough to clip), D's `cmap`
  projection;

- `<name>.pkl`: `dict(G, D, G_ema, augment_pipe=None, training_set_kwargs)` pickled as
  `training_loop.py` does, with every parameter and buffer randomised (`const`, noise
  strengths and constants, `w_avg`, biases, affine biases), except the fixed `[1,3,3,1]`
  resample filters; the persistent classes' `module_src` is replaced by a placeholder line;
- `<name>.golden.json`: inputs and outputs of `G_ema` and `D` in fp32 on the CPU: `z`, `c`,
  `ws` of `G.mapping(z, c)` at psi 1 and at psi 0.6 with cutoff 3, images of
  `G.synthesis(ws, noise_mode='const')` for both, `D(img, c)` on those images and on `x`
  (uniform in [-1, 1]);
- `keys-<net>.txt`: `key shape` for every parameter and buffer of the networks NVlabs publishes,
  built at full size with their constructor arguments (`ffhq1024`, the FFHQ 1024 StyleGAN2-ADA
  network; `cifar10`, the conditional CIFAR-10 one, whose D is the `orig` architecture), as `G.key` / `D.key`, and
  `kwargs-<net>.json`, those arguments.
"""
import json
import os
import pickle
import sys

import types

import torch

repo, out_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
from training import networks  # noqa: E402
from torch_utils import persistence  # noqa: E402

os.makedirs(out_dir, exist_ok=True)

# The persistent classes carry their module's source (NVIDIA's code) into every pickle; the
# fixtures carry this line instead.
for obj in vars(networks).values():
    if isinstance(obj, type) and hasattr(obj, "_orig_module_src"):
        obj._orig_module_src = "# source not shipped\n"


def randomise(module, gen):
    with torch.no_grad():
        for name, t in module.state_dict().items():
            leaf = name.split(".")[-1]
            if leaf == "resample_filter":
                continue
            if leaf == "noise_strength":
                t.copy_(0.5 * torch.randn(t.shape, generator=gen))
            elif leaf in ("bias", "w_avg", "const", "noise_const"):
                t.copy_(0.5 * torch.randn(t.shape, generator=gen))
            else:  # weights: NVlabs' N(0, 1) scale (divided by the lr multiplier for fc)
                scale = t.abs().mean().item() / 0.8 if t.abs().mean().item() > 0 else 1.0
                t.copy_(scale * torch.randn(t.shape, generator=gen))


def flat(t):
    return t.detach().double().flatten().tolist()


def build(name, c_dim, channels, conv_clamp, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    g_kwargs = dict(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=channels,
                    mapping_kwargs=dict(num_layers=2),
                    synthesis_kwargs=dict(channel_base=128, channel_max=16, num_fp16_res=0,
                                          conv_clamp=conv_clamp))
    d_kwargs = dict(c_dim=c_dim, img_resolution=16, img_channels=channels,
                    architecture="resnet", channel_base=128, channel_max=16, num_fp16_res=0,
                    conv_clamp=conv_clamp, block_kwargs={}, mapping_kwargs={},
                    epilogue_kwargs=dict(mbstd_group_size=2))
    G = networks.Generator(**g_kwargs).eval().requires_grad_(False)
    D = networks.Discriminator(**d_kwargs).eval().requires_grad_(False)
    randomise(G, gen)
    randomise(D, gen)
    b = 4
    z = torch.randn([b, 8], generator=gen)
    c = torch.zeros([b, c_dim])
    if c_dim:
        c[torch.arange(b), torch.tensor([0, 2, 1, 2])] = 1
    x = torch.rand([b, channels, 16, 16], generator=gen) * 2 - 1
    ws = G.mapping(z, c)
    ws_trunc = G.mapping(z, c, truncation_psi=0.6, truncation_cutoff=3)
    img = G.synthesis(ws, noise_mode="const", force_fp32=True)
    img_trunc = G.synthesis(ws_trunc, noise_mode="const", force_fp32=True)
    d_img = D(img, c)
    d_x = D(x, c)
    # A saturated random network proves little: the outputs must depend on the inputs.
    assert (img[0] - img[1]).abs().max() > 0.05 and (ws[0] - ws[1]).abs().max() > 0.05
    print(name, "D(x)", flat(d_x), "D(G(z))", flat(d_img))
    assert (d_x[0] - d_x[1]).abs().max() > 1e-3 and (d_img[0] - d_img[1]).abs().max() > 1e-3
    assert (img - img_trunc).abs().max() > 1e-3
    if conv_clamp is not None:  # the clamp must bite
        clamped = [m for m in G.modules() if getattr(m, "conv_clamp", None) is not None]
        for m in clamped:
            m.conv_clamp = None
        free = G.synthesis(ws, noise_mode="const", force_fp32=True)
        for m in clamped:
            m.conv_clamp = conv_clamp
        assert (free - img).abs().max() > 0.05
    snapshot = dict(G=G, D=D, G_ema=G, augment_pipe=None,
                    training_set_kwargs=dict(resolution=16, use_labels=bool(c_dim)))
    with open(os.path.join(out_dir, f"{name}.pkl"), "wb") as f:
        pickle.dump(snapshot, f, protocol=3)
    golden = dict(g_kwargs=g_kwargs, d_kwargs=d_kwargs, z=flat(z), c=flat(c), x=flat(x),
                  ws=flat(ws), ws_trunc=flat(ws_trunc), img=flat(img), img_trunc=flat(img_trunc),
                  d_img=flat(d_img), d_x=flat(d_x), batch=b, num_ws=G.num_ws)
    with open(os.path.join(out_dir, f"{name}.golden.json"), "w") as f:
        json.dump(golden, f)
    write_tf(name, G, D, g_kwargs, d_kwargs, z, c, x)


class Network:
    """Stand-in for `dnnlib.tflib.network.Network`: pickles as TF StyleGAN2's did (its
    `__getstate__`, version 4), with no TensorFlow."""

    def __init__(self, name, static_kwargs, variables, components=None):
        self.state = dict(version=4, name=name, static_kwargs=static_kwargs,
                          components=components or {}, build_module_src="# not shipped\n",
                          build_func_name=f"training.networks_stylegan2.{name}", variables=variables)

    def __getstate__(self):
        return self.state


Network.__module__ = "dnnlib.tflib.network"
Network.__qualname__ = "Network"


def np32(t):
    return t.detach().numpy().astype("float32")


def tf_generator(G, g_kwargs, name):
    """G's parameters as TF StyleGAN2's G_main / G_mapping / G_synthesis variables (the inverse of
    legacy.convert_tf_generator)."""
    sd = {k: v for k, v in G.state_dict().items()}
    sk, mk = g_kwargs["synthesis_kwargs"], g_kwargs["mapping_kwargs"]
    mapping = []
    if g_kwargs["c_dim"]:
        mapping += [("LabelEmbed/weight", np32(sd["mapping.embed.weight"]).T),
                    ("LabelEmbed/bias", np32(sd["mapping.embed.bias"]))]
    for i in range(mk["num_layers"]):
        mapping += [(f"Dense{i}/weight", np32(sd[f"mapping.fc{i}.weight"]).T),
                    (f"Dense{i}/bias", np32(sd[f"mapping.fc{i}.bias"]))]
    synthesis = []
    conv = lambda w: np32(w).transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
    res = g_kwargs["img_resolution"]
    for r in [2 ** i for i in range(2, res.bit_length())]:
        b = f"synthesis.b{r}"
        layers = [("Conv", "conv1")] if r == 4 else [("Conv0_up", "conv0"), ("Conv1", "conv1")]
        if r == 4:
            synthesis.append(("4x4/Const/const", np32(sd[f"{b}.const"])[None]))
        for tf, pt in layers + [("ToRGB", "torgb")]:
            w = conv(sd[f"{b}.{pt}.weight"])
            if tf == "Conv0_up":
                w = w[::-1, ::-1].copy()
            synthesis += [(f"{r}x{r}/{tf}/weight", w),
                          (f"{r}x{r}/{tf}/bias", np32(sd[f"{b}.{pt}.bias"])),
                          (f"{r}x{r}/{tf}/mod_weight", np32(sd[f"{b}.{pt}.affine.weight"]).T),
                          (f"{r}x{r}/{tf}/mod_bias", np32(sd[f"{b}.{pt}.affine.bias"]) - 1)]
            if tf != "ToRGB":
                synthesis.append((f"{r}x{r}/{tf}/noise_strength",
                                  np32(sd[f"{b}.{pt}.noise_strength"])))
    i = 0
    for r in [2 ** i for i in range(2, res.bit_length())]:
        for pt in (["conv1"] if r == 4 else ["conv0", "conv1"]):
            synthesis.append((f"noise{i}", np32(sd[f"synthesis.b{r}.{pt}.noise_const"])[None, None]))
            i += 1
    kwargs = dict(latent_size=g_kwargs["z_dim"], label_size=g_kwargs["c_dim"],
                  dlatent_size=g_kwargs["w_dim"], resolution=res,
                  num_channels=g_kwargs["img_channels"], mapping_layers=mk["num_layers"],
                  fmap_base=sk["channel_base"] // 2, fmap_max=sk["channel_max"],
                  conv_clamp=sk["conv_clamp"], truncation_psi=0.5, structure="auto")
    return Network(name, kwargs, [("dlatent_avg", np32(sd["mapping.w_avg"]))], dict(
        mapping=Network("G_mapping", {}, mapping), synthesis=Network("G_synthesis", {}, synthesis)))


def tf_discriminator(D, d_kwargs):
    sd = {k: v for k, v in D.state_dict().items()}
    conv = lambda w: np32(w).transpose(2, 3, 1, 0)
    variables = []
    res = d_kwargs["img_resolution"]
    for r in [2 ** i for i in range(res.bit_length() - 1, 2, -1)]:
        b = f"b{r}"
        if r == res:
            variables += [(f"{r}x{r}/FromRGB/weight", conv(sd[f"{b}.fromrgb.weight"])),
                          (f"{r}x{r}/FromRGB/bias", np32(sd[f"{b}.fromrgb.bias"]))]
        for i, tf in enumerate(["Conv0", "Conv1_down"]):
            variables += [(f"{r}x{r}/{tf}/weight", conv(sd[f"{b}.conv{i}.weight"])),
                          (f"{r}x{r}/{tf}/bias", np32(sd[f"{b}.conv{i}.bias"]))]
        variables.append((f"{r}x{r}/Skip/weight", conv(sd[f"{b}.skip.weight"])))
    if d_kwargs["c_dim"]:
        variables += [("LabelEmbed/weight", np32(sd["mapping.embed.weight"]).T),
                      ("LabelEmbed/bias", np32(sd["mapping.embed.bias"]))]
        i = 0
        while f"mapping.fc{i}.weight" in sd:
            variables += [(f"Mapping{i}/weight", np32(sd[f"mapping.fc{i}.weight"]).T),
                          (f"Mapping{i}/bias", np32(sd[f"mapping.fc{i}.bias"]))]
            i += 1
    variables += [("4x4/Conv/weight", conv(sd["b4.conv.weight"])),
                  ("4x4/Conv/bias", np32(sd["b4.conv.bias"])),
                  ("4x4/Dense0/weight", np32(sd["b4.fc.weight"]).T),
                  ("4x4/Dense0/bias", np32(sd["b4.fc.bias"])),
                  ("Output/weight", np32(sd["b4.out.weight"]).T),
                  ("Output/bias", np32(sd["b4.out.bias"]))]
    kwargs = dict(label_size=d_kwargs["c_dim"], resolution=res,
                  num_channels=d_kwargs["img_channels"], fmap_base=d_kwargs["channel_base"] // 2,
                  fmap_max=d_kwargs["channel_max"], conv_clamp=d_kwargs["conv_clamp"],
                  mbstd_group_size=d_kwargs["epilogue_kwargs"]["mbstd_group_size"],
                  structure="auto")
    if d_kwargs["c_dim"]:
        kwargs["mapping_layers"] = 8
    return Network("D", kwargs, variables)


def write_tf(name, G, D, g_kwargs, d_kwargs, z, c, x):
    sys.modules.setdefault("dnnlib.tflib", types.ModuleType("dnnlib.tflib"))
    sys.modules["dnnlib.tflib.network"] = types.ModuleType("dnnlib.tflib.network")
    sys.modules["dnnlib.tflib.network"].Network = Network
    Gs = tf_generator(G, g_kwargs, "G")
    data = (Gs, tf_discriminator(D, d_kwargs), Gs)
    path = os.path.join(out_dir, f"tf-{name}.pkl")
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)
    # The golden outputs: what NVlabs' own converter makes of the file.
    import legacy
    with open(path, "rb") as f:
        nets = legacy.load_network_pkl(f)
    G2, D2 = nets["G_ema"], nets["D"]
    ws = G2.mapping(z, c)
    img = G2.synthesis(ws, noise_mode="const", force_fp32=True)
    ref = G.synthesis(G.mapping(z, c), noise_mode="const", force_fp32=True)
    assert (img - ref).abs().max() < 1e-5, "the TF layout round-trips through legacy.py"
    golden = dict(ws=flat(ws), img=flat(img), d_x=flat(D2(x, c)), z=flat(z), c=flat(c), x=flat(x),
                  batch=z.shape[0])
    with open(os.path.join(out_dir, f"tf-{name}.golden.json"), "w") as f:
        json.dump(golden, f)


build("plain", c_dim=0, channels=3, conv_clamp=None, seed=1)
build("cond", c_dim=3, channels=1, conv_clamp=0.5, seed=2)

# The published networks' constructor arguments (as their pickles' `_init_kwargs` hold them).
full = {
    "ffhq1024": (
        dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
             mapping_kwargs=dict(num_layers=8),
             synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=4,
                                   conv_clamp=256)),
        dict(c_dim=0, img_resolution=1024, img_channels=3, architecture="resnet",
             channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
             block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4)),
    ),
    "cifar10": (
        dict(z_dim=512, c_dim=10, w_dim=512, img_resolution=32, img_channels=3,
             mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=4,
                                   conv_clamp=256)),
        dict(c_dim=10, img_resolution=32, img_channels=3, architecture="orig",
             channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
             block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=32)),
    ),
}
for name, (g_kwargs, d_kwargs) in full.items():
    G = networks.Generator(**g_kwargs)
    D = networks.Discriminator(**d_kwargs)
    with open(os.path.join(out_dir, f"keys-{name}.txt"), "w") as f:
        for prefix, net in (("G", G), ("D", D)):
            for k, v in net.state_dict().items():
                f.write(f"{prefix}.{k} {list(v.shape)}\n")
    with open(os.path.join(out_dir, f"kwargs-{name}.json"), "w") as f:
        json.dump(dict(G=g_kwargs, D=d_kwargs), f, indent=1)

for name in sorted(os.listdir(out_dir)):
    print(name, os.path.getsize(os.path.join(out_dir, name)))
