#!/usr/bin/env python3
"""TF-IDF + logistic regression: the simple lexical baseline beside every figure of
docs/evaluation.md (scikit-learn; scripts/evaluate.sh installs it in target/venv-eval).

One document per account: its prompts (and system prompts) joined. Word 1-2-grams and
character 3-5-grams within word boundaries, sublinear TF, L2-normalised; class-balanced
logistic regression (C = 1). Trained on a labelled week (the training traffic), applied to the
test traffic. Recall at 1% FPR is computed as distillguard's `eval` does: the threshold is the
lowest score that flags at most 1% of the benign accounts scored.

usage: tfidf_baseline.py TRAIN.jsonl TRAIN.labels.jsonl TEST.jsonl TEST.labels.jsonl OUT.json

OUT.json: {"all": {kind: {...}}, "loko": {kind: {...}}}: "all" trained on every training
account, scored on every test account (each extraction kind against all benign test accounts,
each benign kind's flagged share at the 1% FPR threshold of all benign); "loko" one model per
extraction kind, trained without it and tested on the benign accounts and that kind.
"""
import json
import sys
from collections import defaultdict

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def docs(log, labels):
    text = defaultdict(list)
    with open(log) as f:
        for n, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                text[r["account_id"]].append(r.get("system_prompt") or "")
                text[r["account_id"]].append(r["prompt"])
            except (KeyError, json.JSONDecodeError) as e:
                sys.exit(f"{log}:{n}: bad request line ({e})")
    rows = []
    with open(labels) as f:
        for n, line in enumerate(f, 1):
            try:
                l = json.loads(line)
                rows.append((l["account_id"], int(l["label"]), l.get("kind", "")))
            except (KeyError, ValueError, json.JSONDecodeError) as e:
                sys.exit(f"{labels}:{n}: bad label line ({e})")
    missing = [a for a, _, _ in rows if a not in text]
    if missing:
        sys.exit(f"{labels}: {len(missing)} labelled accounts have no request in {log}, e.g. {missing[0]}")
    return ["\n".join(text[a]) for a, _, _ in rows], np.array([y for _, y, _ in rows]), [k for _, _, k in rows]


def threshold_at_fpr(s, y, fpr=0.01):
    neg = np.sort(s[y == 0])[::-1]
    allowed = int(np.floor(fpr * len(neg)))
    # Flag score >= t; t just above the (allowed+1)-th highest benign score.
    if allowed >= len(neg):
        return -np.inf
    return np.nextafter(neg[allowed], np.inf)


def fit(xtr, ytr):
    m = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    m.fit(xtr, ytr)
    return m


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    train_log, train_labels, test_log, test_labels, out = sys.argv[1:]
    dtr, ytr, ktr = docs(train_log, train_labels)
    dte, yte, kte = docs(test_log, test_labels)
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=200000)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2,
                            max_features=200000)
    xtr = hstack([words.fit_transform(dtr), chars.fit_transform(dtr)]).tocsr()
    xte = hstack([words.transform(dte), chars.transform(dte)]).tocsr()
    ktr, kte = np.array(ktr), np.array(kte)

    report = {"all": {}, "loko": {}}
    s = fit(xtr, ytr).decision_function(xte)
    t = threshold_at_fpr(s, yte)
    for k in sorted(set(kte)):
        m = kte == k
        if yte[m][0] == 1:
            sel = m | (yte == 0)
            report["all"][k] = {"accounts": int(m.sum()),
                                "auroc": float(roc_auc_score(yte[sel], s[sel])),
                                "recall_at_1pct_fpr": float((s[m] >= t).mean())}
        else:
            report["all"][k] = {"accounts": int(m.sum()), "flagged_share": float((s[m] >= t).mean())}
    for k in sorted(set(ktr[ytr == 1])):
        keep = ktr != k
        sel = (kte == k) | (yte == 0)
        if not (kte == k).any():
            continue
        s = fit(xtr[keep], ytr[keep]).decision_function(xte[sel])
        y = yte[sel]
        t = threshold_at_fpr(s, y)
        report["loko"][k] = {"accounts": int((kte == k).sum()),
                             "auroc": float(roc_auc_score(y, s)),
                             "recall_at_1pct_fpr": float((s[y == 1] >= t).mean())}
        print(f"tfidf: held out {k}: R@1%FPR {report['loko'][k]['recall_at_1pct_fpr']:.3f}",
              file=sys.stderr)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
