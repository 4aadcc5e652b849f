#!/usr/bin/env python3
"""Cross-process comparison: benches/ipc.rs, one implementation per fresh process, in shuffled
rounds, each run bracketed by the cross-process cache-line floor (probed before and after).
A trial counts only if both probes agree on the host's placement of the two vCPUs ("near":
both under 150 ns, "far": both over 300 ns); results are split by placement, as medians with
95% bootstrap intervals, and ratios against the in-process ring and the floor.

    cargo bench --bench ipc --no-run
    python3 tools/ipc_compare.py [rounds] [--out FILE]
    python3 tools/ipc_compare.py --from FILE [FILE ...] [--out FILE]   # report saved trials again
"""
import glob
import json
import os
import random
import statistics
import subprocess
import sys

IMPLS = ["ringmq-ipc", "ringmq-threads", "unix-socket", "iceoryx2"]
BURSTS = [1, 10, 100]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRIT = os.path.join(ROOT, "target", "criterion")


def binary():
    cands = [p for p in glob.glob(os.path.join(ROOT, "target/release/deps/ipc-*"))
             if os.access(p, os.X_OK) and not p.endswith(".d")]
    if not cands:
        sys.exit("build it first: cargo bench --bench ipc --no-run")
    return max(cands, key=os.path.getmtime)


def median_ns(*path):
    with open(os.path.join(CRIT, *path, "new", "estimates.json")) as f:
        return json.load(f)["median"]["point_estimate"]


def trial(bin_path, impl):
    env = dict(os.environ, RINGMQ_IPC_ONLY=impl)
    subprocess.run([bin_path, "--bench", "--noplot", "--warm-up-time", "0.5",
                    "--measurement-time", "2"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = {"impl": impl, "before": median_ns("ipc_floor", "before"),
         "after": median_ns("ipc_floor", "after")}
    for b in BURSTS:
        t[f"tput-{b}"] = b / median_ns("ipc_unicast_1p1c", impl, str(b)) * 1e3  # M events/s
    if impl != "ringmq-threads":
        t["rtt"] = median_ns("ipc_round_trip", impl)
    return t


def placement(t):
    hi, lo = max(t["before"], t["after"]), min(t["before"], t["after"])
    if hi < 150:
        return "near"
    if lo > 300:
        return "far"
    return "mixed"


def boot(xs, f=statistics.median, n=2000):
    if len(xs) < 2:
        return (xs[0], xs[0]) if xs else (float("nan"), float("nan"))
    rng = random.Random(7)
    est = sorted(f([rng.choice(xs) for _ in xs]) for _ in range(n))
    return est[int(0.025 * n)], est[int(0.975 * n) - 1]


def fmt(xs):
    if not xs:
        return "-"
    lo, hi = boot(xs)
    return f"{statistics.median(xs):.3g} [{lo:.3g}, {hi:.3g}] (n={len(xs)})"


def main():
    args = sys.argv[1:]
    out = None
    if "--out" in args:
        i = args.index("--out")
        out = args[i + 1]
        del args[i:i + 2]
    trials = []
    if args and args[0] == "--from":
        # Saved trials (the JSON lines of earlier --out files); rounds renumbered per file.
        offset = 0
        for path in args[1:]:
            with open(path) as f:
                got = [json.loads(line) for line in f if line.startswith("{")]
            for t in got:
                t["round"] += offset
            if got:
                offset = 1 + max(t["round"] for t in got)
            trials += got
        rounds = 1 + max(t["round"] for t in trials)
    else:
        rounds = int(args[0]) if args else 6
        bin_path = binary()
        for r in range(rounds):
            order = IMPLS[:]
            random.shuffle(order)
            for impl in order:
                t = trial(bin_path, impl)
                t["round"] = r
                t["placement"] = placement(t)
                trials.append(t)
                print(json.dumps(t), flush=True)
    lines = ["# benches/ipc.rs in fresh processes, shuffled rounds",
             f"rounds {rounds}; trials kept by placement: " + ", ".join(
                 f"{p} {sum(t['placement'] == p for t in trials)}" for p in ("near", "far", "mixed"))]
    for p in ("near", "far"):
        ts = [t for t in trials if t["placement"] == p]
        if not ts:
            continue
        lines.append(f"\n## {p}: floor (cross-process cache-line round trip) "
                     f"{fmt([t[k] for t in ts for k in ('before', 'after')])} ns")
        for b in BURSTS:
            key = f"tput-{b}"
            by = {i: [t[key] for t in ts if t["impl"] == i] for i in IMPLS}
            lines.append(f"unicast burst {b} (M events/s): " + "; ".join(f"{i} {fmt(v)}" for i, v in by.items()))
            # ipc / threads, paired by round when both landed in this placement
            pairs = []
            for r in range(rounds):
                a = [t[key] for t in ts if t["round"] == r and t["impl"] == "ringmq-ipc"]
                c = [t[key] for t in ts if t["round"] == r and t["impl"] == "ringmq-threads"]
                if a and c:
                    pairs.append(a[0] / c[0])
            lines.append(f"  ratio ringmq-ipc / ringmq-threads: {fmt(pairs)}")
        rtt = {i: [t["rtt"] for t in ts if t["impl"] == i] for i in ("ringmq-ipc", "unix-socket", "iceoryx2")}
        lines.append("round trip (ns): " + "; ".join(f"{i} {fmt(v)}" for i, v in rtt.items()))
        ratios = [t["rtt"] / ((t["before"] + t["after"]) / 2) for t in ts if t["impl"] == "ringmq-ipc"]
        lines.append(f"  ratio ringmq-ipc round trip / floor (same process's probes): {fmt(ratios)}")
    text = "\n".join(lines)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
            for t in trials:
                f.write(json.dumps(t) + "\n")


if __name__ == "__main__":
    main()
