"""Score the sample dumps of a reference training (bench/torch_stylegan_train.py --dump-every) with
genforge's own metrics, for `genforge report RUN --compare DUMPDIR/curve.jsonl`.

Each line of DUMPDIR/times.jsonl names a folder of samples; each is scored by
`genforge eval --real DUMPDIR/reals --fake FOLDER` (FID, KID, precision, recall with the shipped
digit features) and one line per dump goes to DUMPDIR/curve.jsonl:
{"label", "step", "minutes", "fid", "kid", "precision", "recall"}.

    python3 bench/fid_curve.py /tmp/torchsg-fid --genforge target/release/genforge \\
        --label "PyTorch reference"
"""
import argparse, json, os, subprocess

ap = argparse.ArgumentParser()
ap.add_argument("dump_dir")
ap.add_argument("--genforge", default="target/release/genforge")
ap.add_argument("--label", default="PyTorch reference")
ap.add_argument("--features", default="mnist")
a = ap.parse_args()

reals = os.path.join(a.dump_dir, "reals")
n = len(os.listdir(reals))
out = []
for line in open(os.path.join(a.dump_dir, "times.jsonl")):
    t = json.loads(line)
    cmd = [a.genforge, "eval", "--real", reals, "--fake", os.path.join(a.dump_dir, t["dir"]),
           "--n", str(n), "--metrics", "fid,kid,pr", "--features", a.features, "--no-cache"]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    scores = {}
    for row in text.splitlines():  # "FID  12.345", "KID  0.1 ± 0.01", "precision  0.5"
        parts = row.split()
        if len(parts) >= 2 and parts[0] in ("FID", "KID", "precision", "recall"):
            scores[parts[0].lower()] = float(parts[1])
    rec = {"label": a.label, "step": t["step"], "minutes": round(t["minutes"], 3), **scores}
    print(json.dumps(rec), flush=True)
    out.append(rec)
with open(os.path.join(a.dump_dir, "curve.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in out)
