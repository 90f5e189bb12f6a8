#!/usr/bin/env bash
# The All-CNN paper's Table 3 for the C family (Springenberg et al. 2015, "Striving for
# Simplicity", CIFAR-10 without data augmentation): the base Model C and its three variants,
# the variants made by `dsl rewrite` from specs/model-c.dsl as a user would:
#
#   Strided-CNN-C   dsl rewrite specs/model-c.dsl --pass strided   (pooling removed, stride 2)
#   ConvPool-CNN-C  dsl rewrite specs/model-c.dsl --pass convpool  (a dense conv before each pool)
#   All-CNN-C       dsl rewrite specs/model-c.dsl --pass all-conv  (pooling -> conv 3 2 C)
#
# each trained with the same recipe and budget (dsl train's defaults: SGD momentum 0.9, lr 0.02
# (the default for networks without batch norm), cosine, batch 64, weight decay 1e-3, flips and
# translations of 2 pixels, standardised inputs) for two seeds, printing the test error on the
# 10,000 test images after the last epoch next to the paper's.
#
# Budget (the paper: the 50,000 training images, 350 epochs, no augmentation, ZCA whitening, a
# per-model learning rate from a grid): here the 10,000-image subset for EPOCHS=20 epochs with
# dsl's default recipe, 160 runs of an epoch (about 22 s each for Model C), about an hour on 2
# quiet cores. Nothing is tuned per model.
#
# Usage: bash bench/ablation.sh                  (the README's table)
#        DATA=../shared/data/cifar-10-full EPOCHS=N SEEDS="1 2 3" bash bench/ablation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data/cifar-10-batches-bin}
epochs=${EPOCHS:-20}
seeds=${SEEDS:-1 2}
out=.build/ablation
swift build -c release --product dsl >/dev/null
dsl=.build/release/dsl
mkdir -p "$out/specs" "$out/runs"

rm -f "$out/rewrite.log"
cp specs/model-c.dsl "$out/specs/model-c.dsl"
"$dsl" rewrite specs/model-c.dsl --pass strided  --name strided-cnn-c  -o "$out/specs/strided-cnn-c.dsl" >>"$out/rewrite.log" 2>&1
"$dsl" rewrite specs/model-c.dsl --pass convpool --name convpool-cnn-c -o "$out/specs/convpool-cnn-c.dsl" >>"$out/rewrite.log" 2>&1
"$dsl" rewrite specs/model-c.dsl --pass all-conv --name all-cnn-c      -o "$out/specs/all-cnn-c.dsl" >>"$out/rewrite.log" 2>&1

models="model-c strided-cnn-c convpool-cnn-c all-cnn-c"
echo "data $data, $epochs epochs, seeds $seeds, dsl train defaults" >&2
for m in $models; do
    for s in $seeds; do
        run="$out/runs/$m-seed$s"
        rm -rf "$run"
        start=$(date +%s)
        "$dsl" train "$out/specs/$m.dsl" --data "$data" --epochs "$epochs" --seed "$s" --out "$run" --quiet >"$run.log" 2>&1 \
            || { echo "$m seed $s failed: $(tail -1 "$run.log")" >&2; exit 1; }
        echo "$m seed $s: $(tail -2 "$run.log" | head -1) ($(( $(date +%s) - start )) s)" >&2
    done
done

python3 - "$out/runs" "$seeds" <<'PY'
import json, sys, statistics
runs, seeds = sys.argv[1], sys.argv[2].split()
paper = {"model-c": 9.74, "strided-cnn-c": 10.19, "convpool-cnn-c": 9.31, "all-cnn-c": 9.08}
names = {"model-c": "Model C", "strided-cnn-c": "Strided-CNN-C", "convpool-cnn-c": "ConvPool-CNN-C", "all-cnn-c": "All-CNN-C"}
print("| Model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | paper |")
print("|---|" + "---:|" * (len(seeds) + 2))
means = {}
for m in paper:
    errs = []
    for s in seeds:
        rows = [json.loads(l) for l in open(f"{runs}/{m}-seed{s}/metrics.jsonl") if l.strip()]
        errs.append(100 - rows[-1]["test_acc"] * 100)
    means[m] = statistics.mean(errs)
    print(f"| {names[m]} | " + " | ".join(f"{e:.2f} %" for e in errs) + f" | {means[m]:.2f} % | {paper[m]:.2f} % |")
order = sorted(paper, key=lambda m: means[m])
paper_order = sorted(paper, key=lambda m: paper[m])
print()
print("measured order (best first): " + " < ".join(names[m] for m in order))
print("paper's order  (best first): " + " < ".join(names[m] for m in paper_order))
print("the order " + ("matches the paper's" if order == paper_order else "differs from the paper's"))
PY
