#!/usr/bin/env python3
"""Exploratory measurement for issue 10 (not a stage of the pipeline): does cross-account
"crowding" tell a distributed sweep of public task sets from honest accounts?

For every distinct prompt of a scored run directory, its crowd is the number of *other*
accounts that sent a prompt within cosine TAU of it (exact duplicates included). An account's
crowding is the median (and the 90th percentile) of the crowds of its distinct prompts. The idea, from the plain-thin probe
(docs/evaluation.md, session 13): hundreds of accounts each take a few items of the same
public task sets, so each of their items has many close neighbours in *other* accounts,
while an honest person's prompts have few, and an honest benchmark run's close neighbours
are its own.

usage: crowding.py RUN_DIR LABELS.jsonl [TAU ...]   (numpy; brute force, chunked)
Prints, per kind, the accounts and the quartiles of their crowding, for each TAU (default
0.6 0.7 0.8), and the AUROC of crowding alone (extraction against benign).
"""
import json
import struct
import sys
from collections import defaultdict

import numpy as np


def embeddings(run):
    with open(f"{run}/embeddings.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        e = header["embeddings"]
        assert e["dtype"] == "F32", e
        start, end = e["data_offsets"]
        f.seek(8 + n + start)
        return np.frombuffer(f.read(end - start), dtype=np.float32).reshape(e["shape"])


def auroc(pos, neg):
    s = np.concatenate([pos, neg])
    ranks = s.argsort().argsort() + 1.0
    # Ties get their mean rank.
    for v in np.unique(s):
        m = s == v
        ranks[m] = ranks[m].mean()
    return (ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def main():
    run, labels_path = sys.argv[1], sys.argv[2]
    taus = [float(t) for t in sys.argv[3:]] or [0.6, 0.7, 0.8]
    emb = embeddings(run)
    owners = defaultdict(set)  # row -> accounts
    rows_of = defaultdict(set)  # account -> rows
    for line in open(f"{run}/requests.jsonl"):
        r = json.loads(line)
        owners[r["row"]].add(r["account_id"])
        rows_of[r["account_id"]].add(r["row"])
    labels = {}
    for line in open(labels_path):
        r = json.loads(line)
        labels[r["account_id"]] = r
    n = emb.shape[0]
    near = {t: [None] * n for t in taus}
    for s in range(0, n, 2048):
        sims = emb[s : s + 2048] @ emb.T
        for t in taus:
            hit = sims >= t
            for i in range(hit.shape[0]):
                near[t][s + i] = np.flatnonzero(hit[i])
    for t in taus:
        crowd_of = defaultdict(list)
        for a, rows in rows_of.items():
            for row in rows:
                others = set()
                for j in near[t][row]:
                    others |= owners[j]
                others.discard(a)
                crowd_of[a].append(len(others))
        for agg, name in [(np.median, "median"), (lambda c: np.percentile(c, 90), "90th percentile")]:
            report(t, {a: float(agg(c)) for a, c in crowd_of.items()}, labels, name)


def report(t, score, labels, name):
    by_kind = defaultdict(list)
    for a, v in score.items():
        if a in labels:
            by_kind[(labels[a]["label"], labels[a].get("kind", "?"))].append(v)
    print(f"\nTAU {t}: {name} over an account's prompts of the other accounts within TAU")
    print("| kind | label | accounts | q25 | median | q75 |")
    print("|---|---:|---:|---:|---:|---:|")
    for (label, kind), v in sorted(by_kind.items(), key=lambda x: (-x[0][0], x[0][1])):
        q = np.percentile(v, [25, 50, 75])
        print(f"| {kind} | {label} | {len(v)} | {q[0]:.0f} | {q[1]:.0f} | {q[2]:.0f} |")
    pos = np.array([v for (l, _), vs in by_kind.items() if l == 1 for v in vs])
    neg = np.array([v for (l, _), vs in by_kind.items() if l == 0 for v in vs])
    print(f"AUROC of crowding alone (extraction against benign): {auroc(pos, neg):.3f}")


if __name__ == "__main__":
    main()
