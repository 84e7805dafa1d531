#!/usr/bin/env python3
"""Writes a MiniLM-shaped model with random weights: same config, tokenizer and tensor names and
shapes as all-MiniLM-L6-v2, so it costs the same per token, but only 90 MB of random numbers
that can be made on the GPU machine instead of carried there (the real f32 weights do not fit in
a device call's 64 MiB).

usage: random_minilm.py SOURCE_DIR OUT_DIR [--seed N]
  SOURCE_DIR: a folder with MiniLM's config.json and tokenizer.json (the weights are not read;
  their names and shapes follow from config.json). OUT_DIR gets config.json, tokenizer.json and
  model.safetensors, loadable by `distillguard embed --model-dir` and by sentence-transformers
  (which pools it by the mean, as all-MiniLM-L6-v2 does). Needs numpy and safetensors only."""
import argparse, json, os, shutil
import numpy as np
from safetensors.numpy import save_file

p = argparse.ArgumentParser()
p.add_argument("source"); p.add_argument("out"); p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
cfg = json.load(open(os.path.join(a.source, "config.json")))
h, inter, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
rng = np.random.default_rng(a.seed)


def normal(*shape):
    return (rng.standard_normal(shape) * cfg.get("initializer_range", 0.02)).astype(np.float32)


t = {
    "embeddings.word_embeddings.weight": normal(cfg["vocab_size"], h),
    "embeddings.position_embeddings.weight": normal(cfg["max_position_embeddings"], h),
    "embeddings.token_type_embeddings.weight": normal(cfg["type_vocab_size"], h),
    "embeddings.LayerNorm.weight": np.ones(h, np.float32),
    "embeddings.LayerNorm.bias": np.zeros(h, np.float32),
}
for i in range(layers):
    pre = f"encoder.layer.{i}."
    for name, (o, n) in {
        "attention.self.query": (h, h), "attention.self.key": (h, h),
        "attention.self.value": (h, h), "attention.output.dense": (h, h),
        "intermediate.dense": (inter, h), "output.dense": (h, inter),
    }.items():
        t[pre + name + ".weight"] = normal(o, n)
        t[pre + name + ".bias"] = np.zeros(o, np.float32)
    for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
        t[pre + ln + ".weight"] = np.ones(h, np.float32)
        t[pre + ln + ".bias"] = np.zeros(h, np.float32)
t["pooler.dense.weight"] = normal(h, h)
t["pooler.dense.bias"] = np.zeros(h, np.float32)

os.makedirs(a.out, exist_ok=True)
save_file(t, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
for f in ("config.json", "tokenizer.json"):
    shutil.copy(os.path.join(a.source, f), os.path.join(a.out, f))
print(f"wrote {a.out}: {sum(v.size for v in t.values()) / 1e6:.1f}M random parameters, seed {a.seed}")
