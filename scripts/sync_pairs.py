#!/usr/bin/env python3
"""Would activity synchrony alone link campaigns? (docs/evaluation.md, session 6)

For a simulated log and its labels: each account's set of 5-minute buckets (the width
`campaign::infra::SYNC_BUCKET_MS` uses), and for a pair of accounts the shared buckets, the
share of the less active account's buckets they are, and the lift over chance
(shared * active buckets of the log / (|A| * |B|)). A pair is "sync-linked" when all three reach
the thresholds given. Prints, per extraction kind, the share of its same-campaign pairs that
would be linked (at most 3,000 pairs sampled per kind), and the false links: benign-benign
pairs (all), benign-extraction and cross-campaign pairs (200,000 sampled each).

    python3 scripts/sync_pairs.py LOG LABELS MIN_SHARED MIN_SHARE MIN_LIFT
"""
import collections
import datetime
import itertools
import json
import random
import sys


def main():
    log, labels = sys.argv[1], sys.argv[2]
    min_shared, min_share, min_lift = (float(v) for v in sys.argv[3:6])
    lab = {}
    for line in open(labels):
        d = json.loads(line)
        lab[d["account_id"]] = (d["label"], d.get("campaign"), d.get("kind"))
    buckets = collections.defaultdict(set)
    for line in open(log):
        d = json.loads(line)
        ts = datetime.datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00"))
        buckets[d["account_id"]].add(int(ts.timestamp() * 1000) // 300_000)
    active = len(set().union(*buckets.values()))
    print(f"{len(buckets)} accounts, {active} active 5-minute buckets")

    def linked(a, b):
        x, y = buckets[a], buckets[b]
        shared = len(x & y)
        if not x or not y:
            return False
        share = shared / min(len(x), len(y))
        lift = shared * active / (len(x) * len(y))
        return shared >= min_shared and share >= min_share and lift >= min_lift

    accounts = sorted(buckets)
    by_kind = collections.defaultdict(lambda: collections.defaultdict(list))
    for a in accounts:
        label, campaign, kind = lab[a]
        if label == 1:
            by_kind[kind][campaign].append(a)
    for kind, campaigns in sorted(by_kind.items()):
        pairs = [p for m in campaigns.values() for p in itertools.combinations(m, 2)]
        random.seed(0)
        random.shuffle(pairs)
        pairs = pairs[:3000]
        hit = sum(linked(a, b) for a, b in pairs)
        print(f"{kind:26s} same-campaign pairs {len(pairs):5d} sync-linked {hit / max(len(pairs), 1):.2f}")
    benign = [a for a in accounts if lab[a][0] == 0]
    extraction = [a for a in accounts if lab[a][0] == 1]
    bb = sum(linked(a, b) for a, b in itertools.combinations(benign, 2))
    print(f"benign-benign links: {bb} of {len(benign) * (len(benign) - 1) // 2} pairs")
    random.seed(1)
    be = sum(linked(random.choice(benign), random.choice(extraction)) for _ in range(200_000))
    print(f"benign-extraction link rate: {be / 200_000:.6f}")
    cross = n = 0
    for _ in range(200_000):
        a, b = random.choice(extraction), random.choice(extraction)
        if lab[a][1] != lab[b][1]:
            n += 1
            cross += linked(a, b)
    print(f"cross-campaign link rate: {cross / max(n, 1):.6f}")


if __name__ == "__main__":
    main()
