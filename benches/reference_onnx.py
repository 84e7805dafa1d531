#!/usr/bin/env python3
"""The ONNX Runtime reference for embedding speed and int8 quality (CPU), beside reference_st.py.

usage: reference_onnx.py PROMPTS.jsonl MODEL_DIR --onnx-dir DIR [--max-seq-len N] [--batch N]
       [--threads N] [--repeat N] [--precision f32|int8] [--cosine-to-f32]
Exports MODEL_DIR's BERT to DIR/model_f32.onnx once (checked against sentence-transformers) and
quantizes it to DIR/model_int8.onnx once (dynamic, per-channel QInt8). Times tokenize + run +
mean pooling + L2 normalisation over all prompts in length-sorted batches of --batch, best of
--repeat after a warm-up on the first 256, and prints one JSON object like benches/embed.rs does;
--cosine-to-f32 adds the cosine of every embedding to the f32 model's (min, mean, share < 0.99)."""
import argparse, contextlib, json, os, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("prompts"); p.add_argument("model_dir"); p.add_argument("--onnx-dir", required=True)
p.add_argument("--max-seq-len", type=int, default=128); p.add_argument("--batch", type=int, default=64)
p.add_argument("--threads", type=int, default=2); p.add_argument("--repeat", type=int, default=3)
p.add_argument("--precision", choices=["f32", "int8"], default="f32")
p.add_argument("--cosine-to-f32", action="store_true")
a = p.parse_args()
# The fast tokenizer encodes a batch on a rayon pool that would otherwise use every core.
os.environ.setdefault("RAYON_NUM_THREADS", str(a.threads))
import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

NAMES = ["input_ids", "attention_mask", "token_type_ids"]
texts = [json.loads(l)["text"] for l in open(a.prompts, encoding="utf-8")]
tok = AutoTokenizer.from_pretrained(a.model_dir, use_fast=True)
f32_path = os.path.join(a.onnx_dir, "model_f32.onnx")
int8_path = os.path.join(a.onnx_dir, "model_int8.onnx")


def log(msg):
    print(f"reference_onnx: {msg}", file=sys.stderr, flush=True)


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def encode(sess, batch_texts):
    """Normalised mean-pooled embeddings (n, dim) in input order and the number of tokens
    (padding excluded). Batches are cut from the texts sorted by length, longest first, as
    sentence-transformers' encode does, so that padding costs both references alike."""
    order = sorted(range(len(batch_texts)), key=lambda i: -len(batch_texts[i]))
    out, tokens = [], 0
    for i in range(0, len(order), a.batch):
        enc = tok([batch_texts[j] for j in order[i:i + a.batch]], padding=True, truncation=True,
                  max_length=a.max_seq_len, return_tensors="np")
        hidden = sess.run(["last_hidden_state"], {k: enc[k].astype(np.int64) for k in NAMES})[0]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
        out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        tokens += int(enc["attention_mask"].sum())
    emb = np.empty_like(np.concatenate(out))
    emb[order] = np.concatenate(out)
    return emb, tokens


def export_f32():
    """MODEL_DIR's transformer -> ONNX (opset 17, dynamic batch and sequence), checked against
    sentence-transformers on 16 prompts in one padded batch before it is moved into place."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel
    torch.set_num_threads(a.threads)
    # Eager attention: the SDPA path may drop the mask while tracing an unpadded input.
    model = AutoModel.from_pretrained(a.model_dir, attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__(); self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    dummy = tok(["a short one", "a somewhat longer sentence, so the first one is padded"],
                padding=True, return_tensors="pt")
    axes = {k: {0: "batch", 1: "sequence"} for k in NAMES + ["last_hidden_state"]}
    tmp = f"{f32_path}.tmp-{os.getpid()}.onnx"
    log(f"exporting {a.model_dir} to {f32_path}")
    # dynamo=False: the dynamo exporter needs onnxscript, which is not installed.
    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
        torch.onnx.export(Hidden(model), tuple(dummy[k] for k in NAMES), tmp, input_names=NAMES,
                          output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    check = texts[:16]
    st = SentenceTransformer(a.model_dir, device="cpu")
    st.max_seq_length = a.max_seq_len
    ref = st.encode(check, batch_size=len(check), normalize_embeddings=True)
    ours, _ = encode(session(tmp), check)
    cos = (ours.astype(np.float64) * ref).sum(1)
    if cos.min() <= 0.9999:
        os.remove(tmp)
        sys.exit(f"reference_onnx: the ONNX export disagrees with sentence-transformers: "
                 f"cosines {np.round(cos, 6).tolist()}")
    log(f"export agrees with sentence-transformers on {len(check)} prompts (min cosine {cos.min():.7f})")
    os.replace(tmp, f32_path)


def export_int8():
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
    log(f"quantizing {f32_path} to {int8_path}")
    # Pre-processing (symbolic shape inference + ORT's basic graph optimisation) is what ORT
    # recommends before quantizing, and quantize_dynamic warns without it: it gives the quantizer
    # the shapes it needs and fuses the graph first, so the quantized MatMuls are the real ones.
    # auto_merge: without it symbolic shape inference stops ("incomplete") on the exported
    # attention-mask arithmetic, whose batch/sequence dims it cannot prove equal. The work
    # happens in a scratch folder, as the cwd: a failed shape inference dumps a model there.
    src, dst = os.path.abspath(f32_path), os.path.abspath(int8_path)
    with tempfile.TemporaryDirectory(dir=a.onnx_dir) as work, contextlib.chdir(work), \
            contextlib.redirect_stdout(sys.stderr):
        quant_pre_process(src, "pre.onnx", auto_merge=True)
        quantize_dynamic("pre.onnx", "int8.onnx", per_channel=True, weight_type=QuantType.QInt8)
        os.replace("int8.onnx", dst)


os.makedirs(a.onnx_dir, exist_ok=True)
if not os.path.exists(f32_path):
    export_f32()
if a.precision == "int8" and not os.path.exists(int8_path):
    export_int8()

sess = session(int8_path if a.precision == "int8" else f32_path)
encode(sess, texts[:256])  # warm-up
best = float("inf")
for _ in range(a.repeat):
    t0 = time.perf_counter()
    emb, tokens = encode(sess, texts)
    best = min(best, time.perf_counter() - t0)
agreement = None
if a.cosine_to_f32:
    ref, _ = encode(session(f32_path), texts)
    cos = (emb.astype(np.float64) * ref).sum(1)
    agreement = {"min": float(cos.min()), "mean": float(cos.mean()),
                 "share_under_0_99": float((cos < 0.99).mean())}
print(json.dumps({"impl": f"onnxruntime-{a.precision}", "onnxruntime": ort.__version__,
                  "cosine_to_f32": agreement, "device": "cpu", "threads": a.threads,
                  "prompts": len(texts), "tokens": tokens, "max_seq_len": a.max_seq_len,
                  "batch": a.batch, "seconds": best, "prompts_per_s": len(texts) / best,
                  "tokens_per_s": tokens / best}))
