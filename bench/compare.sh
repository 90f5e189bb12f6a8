#!/usr/bin/env bash
# Builds dsl in release mode and measures it against PyTorch in the same run, printing ratios:
# All-CNN-C training and inference (batch 64), GoogLeNet inference (224x224) and
# PyramidNet-110 training. Needs `pip install torch`. Usage: bench/compare.sh [BATCH]
set -euo pipefail
cd "$(dirname "$0")/.."
batch="${1:-64}"
shared="${SHARED:-../shared}"
swift build -c release >/dev/null
dsl=.build/release/dsl
python3 -c 'import torch' 2>/dev/null || { echo "bench/compare.sh: PyTorch is not installed (pip install torch)" >&2; exit 2; }

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)"

# All-CNN-C: dsl, then PyTorch, then dsl again; the dsl figure is the mean of both runs.
d1=$($dsl bench specs/all-cnn-c.dsl --batch "$batch" --steps 5 --format json)
t=$(python3 "$shared/bench/ref_torch.py" speed "$batch")
d2=$($dsl bench specs/all-cnn-c.dsl --batch "$batch" --steps 5 --format json)
dt=$(python3 -c "import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print((a['train_images_per_second']+b['train_images_per_second'])/2)" "$d1" "$d2")
di=$(python3 -c "import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print((a['inference_images_per_second']+b['inference_images_per_second'])/2)" "$d1" "$d2")
tt=$(echo "$t" | sed -E 's/.*train ([0-9.]+) img\/s.*/\1/')
ti=$(echo "$t" | sed -E 's/.*inference ([0-9.]+) img\/s.*/\1/')
printf 'all-cnn-c batch %s  train: dsl %.1f img/s, torch %s img/s, ratio %s\n' "$batch" "$dt" "$tt" "$(ratio "$dt" "$tt")"
printf 'all-cnn-c batch %s  infer: dsl %.1f img/s, torch %s img/s, ratio %s\n' "$batch" "$di" "$ti" "$(ratio "$di" "$ti")"
echo "$d1" | python3 -c "
import json,sys
d=json.load(sys.stdin)
print(f\"  dsl achieved {d['gflops_per_second']:.1f} GFLOP/s in training, {100*d['fraction_of_peak']:.0f}% of the measured peak {d['peak_gflops']:.0f} GFLOP/s\")
for l in d['layers']:
    if l['macs'] > 0: print(f\"  {l['name']:8s} {l['kernel']:12s} fwd {l['forward_ms']:7.2f} ms  bwd {l['backward_ms']:7.2f} ms  {l['gflops_per_second']:6.1f} GFLOP/s  {100*l['fraction_of_peak']:3.0f}% of peak\")
"

# Thread scaling of the training step: best of five alternating runs each (the machine is
# shared: other work on the host slows a two-thread run more than a one-thread run, and three
# pairs were sometimes all disturbed).
s1=0; s2=0
for _ in 1 2 3 4 5; do
    a=$($dsl bench specs/all-cnn-c.dsl --batch "$batch" --steps 3 --threads 1 --format json | field train_images_per_second)
    b=$($dsl bench specs/all-cnn-c.dsl --batch "$batch" --steps 3 --threads 2 --format json | field train_images_per_second)
    s1=$(python3 -c "print(max($s1, $a))"); s2=$(python3 -c "print(max($s2, $b))")
done
printf 'all-cnn-c training, 2 threads vs 1 (best of 5 each): %.1f / %.1f img/s = %s x\n' "$s2" "$s1" "$(ratio "$s2" "$s1")"

# Per layer on one core: each convolution's rate against one core's peak (forward + the
# backward passes it runs; Winograd layers count the direct convolution's FLOPs); per layer
# the best of five runs, since other work on the machine slows single runs down (by up to a
# fifth for the memory-bound first layer).
runs=()
for _ in 1 2 3 4 5; do
    runs+=("$($dsl bench specs/all-cnn-c.dsl --batch "$batch" --steps 3 --threads 1 --format json)")
done
python3 -c "
import json,sys
runs=[json.loads(a) for a in sys.argv[1:]]
# Against the highest peak measured in the five runs: a run whose peak measurement was slowed
# by other work would otherwise overstate its layers' fractions.
peak=max(r['peak_gflops'] for r in runs)
print(f\"all-cnn-c per layer on 1 thread (peak {peak:.0f} GFLOP/s; best of {len(runs)} runs):\")
for i,l in enumerate(runs[0]['layers']):
    if l['macs'] == 0: continue
    b=max((r['layers'][i] for r in runs), key=lambda x: x['gflops_per_second'])
    print(f\"  {b['name']:8s} {b['kernel']:12s} fwd {b['forward_ms']:7.2f} ms  bwd {b['backward_ms']:7.2f} ms  {100*b['gflops_per_second']/peak:4.0f}% of one core\")
" "${runs[@]}"

# GoogLeNet inference at 224x224 and PyramidNet-110 training: like All-CNN-C, dsl before and
# after PyTorch, the dsl figure the mean of both runs.
mean() { python3 -c "print(($1 + $2) / 2)"; }
gb=16
g1=$($dsl bench specs/googlenet.dsl --batch $gb --steps 3 --format json | field inference_images_per_second)
gt=$(python3 bench/ref_models.py googlenet $gb 3 | sed -E 's/.*inference ([0-9.]+) img\/s.*/\1/')
g2=$($dsl bench specs/googlenet.dsl --batch $gb --steps 3 --format json | field inference_images_per_second)
gd=$(mean "$g1" "$g2")
printf 'googlenet batch %s  infer: dsl %.1f img/s, torch %s img/s, ratio %s\n' "$gb" "$gd" "$gt" "$(ratio "$gd" "$gt")"

pb=64
p1=$($dsl bench specs/pyramidnet-110-a48.dsl --batch $pb --steps 3 --format json | field train_images_per_second)
pt=$(python3 bench/ref_models.py pyramidnet $pb 3 | sed -E 's/.*train ([0-9.]+) img\/s.*/\1/')
p2=$($dsl bench specs/pyramidnet-110-a48.dsl --batch $pb --steps 3 --format json | field train_images_per_second)
pd=$(mean "$p1" "$p2")
printf 'pyramidnet-110 batch %s  train: dsl %.1f img/s, torch %s img/s, ratio %s\n' "$pb" "$pd" "$pt" "$(ratio "$pd" "$pt")"
