#!/usr/bin/env python3
"""The Python reference for embedding speed: sentence-transformers on PyTorch (CPU by default).

usage: reference_st.py PROMPTS.jsonl MODEL_DIR [--max-seq-len N] [--batch N] [--threads N]
       [--repeat N] [--device cpu|cuda] [--fp16]
Times model.encode (tokenization included) over all prompts, best of --repeat after a warm-up,
and prints one JSON object like benches/embed.rs does."""
import argparse, json, time
import torch
from sentence_transformers import SentenceTransformer

p = argparse.ArgumentParser()
p.add_argument("prompts"); p.add_argument("model_dir")
p.add_argument("--max-seq-len", type=int, default=128); p.add_argument("--batch", type=int, default=64)
p.add_argument("--threads", type=int, default=2); p.add_argument("--repeat", type=int, default=3)
p.add_argument("--device", default="cpu"); p.add_argument("--fp16", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)
texts = [json.loads(l)["text"] for l in open(a.prompts, encoding="utf-8")]
model = SentenceTransformer(a.model_dir, device=a.device)
if a.fp16:
    model = model.half()
model.max_seq_length = a.max_seq_len
model.encode(texts[:256], batch_size=a.batch)
best = float("inf")
for _ in range(a.repeat):
    t0 = time.perf_counter()
    model.encode(texts, batch_size=a.batch, normalize_embeddings=True)
    if a.device != "cpu":
        torch.cuda.synchronize()
    best = min(best, time.perf_counter() - t0)
tokens = sum(len(model.tokenizer(t, truncation=True, max_length=a.max_seq_len)["input_ids"]) for t in texts)
print(json.dumps({"impl": "sentence-transformers", "torch": torch.__version__, "device": a.device,
                  "threads": torch.get_num_threads(), "prompts": len(texts), "tokens": tokens,
                  "max_seq_len": a.max_seq_len, "batch": a.batch, "seconds": best,
                  "prompts_per_s": len(texts) / best, "tokens_per_s": tokens / best}))
