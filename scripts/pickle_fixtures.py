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
