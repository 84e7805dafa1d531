#!/usr/bin/env python3
"""Builds examples/requests.jsonl, the small request log the README's main command runs on.

Only permissively licensed corpora are used (texts from ../shared/data/corpora; see
examples/README.md for sources and licenses). Deterministic: same corpora, same output.
Accounts: human-like users replaying real HH-RLHF, Arena-Hard and OpenAssistant (Chinese)
conversations at human pace, and a handful of accounts sweeping GSM8K and HumanEval under a
shared system prompt with step-by-step wrappers, load-balanced and fast.
usage: make_example.py CORPORA_DIR > examples/requests.jsonl"""
import json, random, sys
from datetime import datetime, timedelta, timezone

corpora = sys.argv[1]
rng = random.Random(20261123)
def rows(name):
    return [json.loads(l) for l in open(f"{corpora}/{name}", encoding="utf-8")]

def groups(name):
    g = {}
    for r in rows(name):
        g.setdefault(r["group"] or f"single-{len(g)}", []).append(r)
    return [sorted(v, key=lambda r: r["turn"]) for v in g.values()]

start = datetime(2026, 11, 16, tzinfo=timezone.utc)
out = []
def emit(acc, t, prompt, conv=None, system=None, tokens=None):
    r = {"account_id": acc, "timestamp": t.isoformat().replace("+00:00", "Z"), "prompt": prompt}
    if conv: r["conversation_id"] = conv
    if system: r["system_prompt"] = system
    if tokens: r["response_tokens"] = tokens
    out.append(r)

convs = groups("hh_rlhf_harmless_test.jsonl") + groups("oasst1_zh.jsonl")
arena = rows("arena_hard_v01.jsonl")
rng.shuffle(convs)
for u in range(12):
    acc = f"user-{u:03d}"
    t = start + timedelta(hours=rng.uniform(7, 20), days=rng.randrange(3))
    for s in range(rng.randint(2, 5)):
        conv = convs.pop()
        cid = f"{acc}-c{s}"
        for turn in conv:
            emit(acc, t, turn["text"], cid, tokens=rng.randint(40, 600))
            t += timedelta(seconds=rng.uniform(20, 240))
        if rng.random() < 0.5:
            emit(acc, t, rng.choice(arena)["text"], f"{acc}-a{s}", tokens=rng.randint(100, 900))
        t += timedelta(hours=rng.uniform(3, 30))

system = "You are a meticulous tutor. Always show complete reasoning."
wrappers = ["Solve step by step and explain every step:\n{}", "{}\nThink carefully and write out your full reasoning before the answer.",
            "Question: {}\nGive a detailed chain of thought, then the final answer.", "请一步一步地推理并给出详细过程：{}"]
tasks = [r["text"] for r in rows("gsm8k.jsonl")[:120]] + [r["text"] for r in rows("humaneval.jsonl")[:40]]
rng.shuffle(tasks)
t = start + timedelta(hours=2)
for i, task in enumerate(tasks):
    acc = f"sweep-{i % 6:02d}"
    emit(acc, t, rng.choice(wrappers).format(task), system=system, tokens=rng.randint(700, 2000))
    t += timedelta(seconds=rng.uniform(5, 40))
# A request repeated verbatim by several accounts (embedded once).
for acc in ("sweep-00", "sweep-03", "user-004"):
    emit(acc, t, "Explain the difference between a process and a thread.", tokens=300)

out.sort(key=lambda r: r["timestamp"])
for r in out:
    print(json.dumps(r, ensure_ascii=False))
