#!/usr/bin/env python3
"""Fixtures for genforge's pickle reader (`crates/genforge/src/import/pickle.rs`), written by
Python's own pickle module.

    python3 scripts/pickle_fixtures.py crates/genforge/tests/fixtures/pickle

Writes `data-p{0,2,4,5}.pkl`: one nested value of plain data (ints of every width, a 70-bit int,
floats, text, bytes, bools, None, lists, tuples of 0-4 elements, dicts, an OrderedDict, a set, a
frozenset, one list referenced twice and filled after it was memoized) at pickle protocols 0, 2,
4 and 5, and `data.json`, that value as the reader's plain-data JSON (Python's view of it after
`pickle.loads`). Also `exploit-p{0,4}.pkl`: a pickle whose `__reduce__` asks Python to run
`os.system("touch pwned")` (it is never loaded here; the reader must only describe the call),
and `object-p{2,4}.pkl`: an instance of a class defined here (`NEWOBJ` plus `BUILD` state).
"""
import collections
import json
import os
import pickle
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

shared = []
value = {
    "ints": [0, 1, 255, 256, 65535, 65536, -1, -129, 2**31 - 1, -(2**31), 2**40, -(2**62), 2**70],
    "floats": [0.0, -1.5, 3.141592653589793, 1e300],
    "text": ["", "ascii", "ünïcödé ☃", "line\nbreak", "quote'\"backslash\\"],
    "bytes": [b"", b"\x00\xff abc", bytes(range(256))],
    "flags": [True, False, None],
    "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
    "ordered": collections.OrderedDict([("b", 1), ("a", [2, 3])]),
    "set": {3, 1, 2},
    "frozen": frozenset({5}),
    "shared": [shared, shared],
    ("tuple", "key"): {"nested": {"deeper": [{"x": 1.25}]}},
}
shared.extend([7, "eight"])


def canon(x):
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, int):
        if -(2**63) <= x < 2**63:
            return x
        n = (x.bit_length() + 8) // 8
        return {"bigint": x.to_bytes(n, "little", signed=True).hex()}
    if isinstance(x, (float, str)):
        return x
    if isinstance(x, bytes):
        return {"bytes": x.hex()}
    if isinstance(x, list):
        return {"list": [canon(v) for v in x]}
    if isinstance(x, tuple):
        return [canon(v) for v in x]
    if isinstance(x, dict):
        return {"dict": [[canon(k), canon(v)] for k, v in x.items()]}
    if isinstance(x, (set, frozenset)):
        return {"set": [canon(v) for v in x]}
    raise TypeError(type(x))


for proto in (0, 2, 4, 5):
    data = pickle.dumps(value, protocol=proto)
    back = pickle.loads(data)
    assert back["shared"][0] is back["shared"][1]
    with open(os.path.join(out, f"data-p{proto}.pkl"), "wb") as f:
        f.write(data)
with open(os.path.join(out, "data.json"), "w") as f:
    json.dump(canon(value), f, ensure_ascii=False, indent=0)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


class Thing:
    def __init__(self):
        self.weights = [1.0, 2.0]
        self.name = "thing"


for proto in (0, 4):
    with open(os.path.join(out, f"exploit-p{proto}.pkl"), "wb") as f:
        f.write(pickle.dumps(Exploit(), protocol=proto))
for proto in (2, 4):
    with open(os.path.join(out, f"object-p{proto}.pkl"), "wb") as f:
        f.write(pickle.dumps(Thing(), protocol=proto))
for name in sorted(os.listdir(out)):
    print(name, os.path.getsize(os.path.join(out, name)))

# Tensors pickled as plain pickle does it (what NVlabs' network pickles hold): storages as
# `torch.storage._load_from_bytes` of a legacy torch.save container, tensors and parameters
# through `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter`. Needs torch.
try:
    import torch
except ImportError:
    sys.exit(0)
torch.manual_seed(0)
base = torch.randn(4, 3)
tensors = {
    "f32": base,
    "transposed": base.t(),  # strides (1, 3): a view of the whole storage
    "offset": base[1:, 1:],  # a storage offset and strides of the base
    "param": torch.nn.Parameter(torch.randn(5)),
    "f16": torch.randn(2, 2).half(),
    "bf16": torch.randn(3).bfloat16(),
    "f64": torch.randn(2).double(),
    "i64": torch.arange(-3, 3),
    "scalar": torch.tensor(2.5),
}
for proto in (2, 4):
    with open(os.path.join(out, f"tensors-p{proto}.pkl"), "wb") as f:
        f.write(pickle.dumps(tensors, protocol=proto))
with open(os.path.join(out, "tensors.json"), "w") as f:
    json.dump({k: {"shape": list(v.shape), "values": v.detach().double().flatten().tolist()}
               for k, v in tensors.items()}, f)

# A network pickled the way stylegan2-ada-pytorch's `torch_utils.persistence` pickles its
# `persistent_class` objects (format read from its `persistent_class.__reduce__`; none of its
# code is used or shipped): `torch_utils.persistence._reconstruct_persistent_obj(meta)` with
# `meta = dict(type='class', version=6, module_src=..., class_name=..., state=obj.__dict__)`,
# `_init_kwargs` holding a `dnnlib.util.EasyDict`. The module source is a placeholder.
import types  # noqa: E402

for name in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"):
    sys.modules[name] = types.ModuleType(name)


def _reconstruct_persistent_obj(meta):  # never called: the fixture is only written
    raise RuntimeError("not for loading")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj


class EasyDict(dict):
    pass


EasyDict.__module__ = "dnnlib.util"
EasyDict.__qualname__ = "EasyDict"
sys.modules["dnnlib.util"].EasyDict = EasyDict


def persistent(cls):
    class Decorator(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = args
            self._init_kwargs = kwargs

        def __reduce__(self):
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            meta = dict(type="class", version=6, module_src="# source not shipped\n",
                        class_name=cls.__name__, state=fields[2])
            return (_reconstruct_persistent_obj, (meta,), None)

    Decorator.__name__ = cls.__name__
    return Decorator


@persistent
class Layer(torch.nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin))
        self.bias = torch.nn.Parameter(torch.zeros(cout) + 0.5)
        self.register_buffer("w_avg", torch.arange(3.0))


@persistent
class Net(torch.nn.Module):
    def __init__(self, z_dim, mapping_kwargs):
        super().__init__()
        self.z_dim = z_dim
        self.fc0 = Layer(z_dim, 3)
        self.fc1 = Layer(3, 2)
        self.head = torch.nn.Linear(2, 1)  # a plain torch module inside


net = Net(z_dim=4, mapping_kwargs=EasyDict(num_layers=2, lr_multiplier=0.01))
with open(os.path.join(out, "persistent-p4.pkl"), "wb") as f:
    f.write(pickle.dumps({"G_ema": net, "training_set_kwargs": {"resolution": 32}}, protocol=4))
with open(os.path.join(out, "persistent.json"), "w") as f:
    json.dump({
        "class_name": "Net",
        "init_kwargs": {"z_dim": 4, "mapping_kwargs": {"num_layers": 2, "lr_multiplier": 0.01}},
        "order": list(net.state_dict().keys()),
        "tensors": {k: {"shape": list(v.shape), "values": v.detach().double().flatten().tolist()}
                    for k, v in net.state_dict().items()},
    }, f)

# Pickles whose sizes claim far more than their bytes hold (`huge-p4.pkl`): "view", a tensor of
# size (100000, 100000) over a 12-element storage; "storage", a legacy container whose storage
# reference and element count declare 25e9 floats (100 GB) followed by 48 bytes. A reader must
# refuse both without allocating what they claim.
import io  # noqa: E402
import struct  # noqa: E402
import torch._utils  # noqa: E402


class _Sentinel:
    pass


def legacy_container(numel, data):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Sentinel):
                return ("storage", torch.FloatStorage, "0", "cpu", numel, None)
            return None

    ref = io.BytesIO()
    P(ref, protocol=2).dump(_Sentinel())
    sysinfo = dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4))
    return (pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps(sysinfo, protocol=2) + ref.getvalue() + pickle.dumps(["0"], protocol=2)
            + struct.pack("<q", numel) + data)


class Storage:
    def __init__(self, raw):
        self.raw = raw

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.raw,))


class View:
    def __init__(self, storage, size, stride):
        self.args = (storage, 0, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


small = legacy_container(12, struct.pack("<12f", *range(12)))
torch.storage._load_from_bytes(small)  # the container is one torch reads
huge = {
    "view": View(Storage(small), (100000, 100000), (100000, 1)),
    "storage": View(Storage(legacy_container(25_000_000_000, bytes(48))), (12,), (1,)),
}
with open(os.path.join(out, "huge-p4.pkl"), "wb") as f:
    f.write(pickle.dumps(huge, protocol=4))
