#!/usr/bin/env bash
# Issue 18's speedrun: airbench94 (Keller Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single
# GPU", 2024) written in dsl (specs/airbench94.dsl), trained on the five CIFAR-10 training
# batches with the whole recipe (RECIPE below: the README's command) for each seed, printing
# each seed's test accuracy with test-time augmentation and wall time (the whole command: data
# loading, whitening, training, evaluation), and their mean and median; then the same recipe in
# PyTorch (bench/airbench94_torch.py, airbench94's published code path on the CPU in float32,
# the same threads) on the same machine right after, so that the ratio is measured in one run.
#
# Usage: bash bench/speedrun.sh
#        SEEDS="1 2" TORCH=full DATA=DIR bash bench/speedrun.sh
#   DATA     the CIFAR-10 binary directory (default ../shared/data/cifar-10-full)
#   SEEDS    the seeds of the dsl runs (default "1 2 3 4 5")
#   TORCH    off, fraction (default: the first TORCH_STEPS training steps of the PyTorch
#            recipe, timed, and the whole recipe's training time projected from them), or
#            full (the whole PyTorch recipe for the first seed, with its accuracy)
#   THREADS  threads for both (default: all cores)
# For TORCH != off, torch and numpy are installed from PyPI into .build/venv when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data/cifar-10-full}
seeds=${SEEDS:-1 2 3 4 5}
torch_mode=${TORCH:-fraction}
torch_steps=${TORCH_STEPS:-24}
threads=${THREADS:-$(nproc)}
out=.build/speedrun
swift build -c release --product dsl >/dev/null
dsl=.build/release/dsl
mkdir -p "$out"

# The recipe (README, "airbench94"): every flag spelled out, none left to a default.
RECIPE=(--batch 1024 --epochs 9.9 --momentum 0.85 --nesterov --decoupled --lr 11.5 --weight-decay 0.0153
        --weight-decay-on all --bn-bias-lr 64 --label-smoothing 0.2 --schedule linear:0.2,0.07@0.23
        --lookahead 5 --flip alternate --translate 2 --pad-mode reflect --whiten standardize
        --eval-every final --tta 2)

echo "data $data, seeds $seeds, $threads threads, $(date -u +%FT%TZ)" >&2
for s in $seeds; do
    run="$out/seed$s"
    start=$(date +%s.%N)
    "$dsl" train specs/airbench94.dsl --data "$data" "${RECIPE[@]}" --seed "$s" --threads "$threads" \
        --out "$run" --overwrite --quiet >"$run.log" 2>&1 || { echo "seed $s failed: $(tail -3 "$run.log")" >&2; exit 1; }
    end=$(date +%s.%N)
    python3 - "$run/metrics.jsonl" "$s" "$start" "$end" >>"$out/results.jsonl" <<'PY'
import json, sys
last = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
print(json.dumps({"seed": int(sys.argv[2]), "tta_acc": last.get("tta_acc"), "test_acc": last.get("test_acc"),
                  "seconds": round(float(sys.argv[4]) - float(sys.argv[3]), 1)}))
PY
    tail -1 "$out/results.jsonl" >&2
done

torch_json=""
if [ "$torch_mode" != off ]; then
    py=.build/venv/bin/python
    [ -x "$py" ] || python3 -m venv .build/venv
    if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
        echo "installing torch and numpy into .build/venv..." >&2
        "$py" -m pip install --quiet --upgrade pip >&2
        "$py" -m pip install --quiet torch numpy >&2
    fi
    first=${seeds%% *}
    if [ "$torch_mode" = full ]; then
        torch_json=$("$py" bench/airbench94_torch.py --data "$data" --seed "$first" --threads "$threads" 2>"$out/torch.log")
    else
        torch_json=$("$py" bench/airbench94_torch.py --data "$data" --seed "$first" --threads "$threads" --max-steps "$torch_steps" 2>"$out/torch.log")
    fi
    echo "$torch_json" >&2
fi

python3 - "$out/results.jsonl" "$seeds" "$torch_json" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
seeds = [int(s) for s in sys.argv[2].split()]
rows = [r for r in rows if r["seed"] in seeds][-len(seeds):]
print("| seed | test accuracy (TTA) | without TTA | wall time |")
print("|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['seed']} | {100 * r['tta_acc']:.2f} % | {100 * r['test_acc']:.2f} % | {r['seconds'] / 60:.1f} min ({r['seconds']:.0f} s) |")
accs = [r["tta_acc"] for r in rows]; secs = [r["seconds"] for r in rows]
print(f"| mean | {100 * statistics.mean(accs):.2f} % | {100 * statistics.mean(r['test_acc'] for r in rows):.2f} % | median {statistics.median(secs) / 60:.1f} min |")
if sys.argv[3]:
    t = json.loads(sys.argv[3])
    if "accuracy" in t:
        print(f"\nPyTorch {t['torch']} (bench/airbench94_torch.py, seed {t['seed']}, {t['threads']} threads): "
              f"{100 * t['accuracy']:.2f} % with TTA in {t['seconds'] / 60:.1f} min; training {t['train_seconds']:.0f} s "
              f"at {t['images_per_second']:.0f} img/s")
        print(f"wall-time ratio (PyTorch / dsl median): {t['seconds'] / statistics.median(secs):.2f}x")
    else:
        print(f"\nPyTorch {t['torch']} (bench/airbench94_torch.py, {t['steps']} of {t['total_steps']} steps timed, "
              f"{t['threads']} threads): {t['images_per_second']:.0f} img/s, the whole training projected at "
              f"{t['projected_train_seconds'] / 60:.1f} min")
        print(f"training-time ratio (PyTorch projected / dsl median wall time, which also loads, evaluates): "
              f"{t['projected_train_seconds'] / statistics.median(secs):.2f}x")
PY
