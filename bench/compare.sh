#!/usr/bin/env bash
# dsl against the strongest CPU peers, in one run, best peer per row (issue #16).
#
# Usage: bash bench/compare.sh [--quick]
#
# Builds dsl in release mode, installs the peers (torch, onnx, onnxruntime, openvino, numpy; from
# PyPI, about 6 GB, a few minutes the first time) into the virtual environment .build/venv when
# they are absent, then measures, for each row, dsl (`dsl bench --format json`) before and after
# the peers (`../shared/bench/peers.py`: PyTorch eager NCHW and channels_last, torch.compile,
# ONNX Runtime, OpenVINO), and prints dsl's mean, the best peer, and the ratio. Rows:
#   All-CNN-C training and inference, batch 64; PyramidNet-110 training and inference, batch 64;
#   GoogLeNet inference at 224x224, batch 16; MobileNetV2 inference at 224x224, batch 16, and a
#   CIFAR MobileNetV2 training step, batch 64 (peer: PyTorch eager, bench/ref_models.py);
#   the airbench94 network's training step at batch 1024 (peer: bench/airbench94_torch.py);
#   batch-1 inference latency of All-CNN-C and GoogLeNet.
# Then (unless --quick) dsl's thread scaling and per-layer rates on All-CNN-C.
# The machine is shared: compare ratios within one run, never absolute times across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
shared="${SHARED:-../shared}"
venv=.build/venv
py="$venv/bin/python"

if [ ! -x "$py" ]; then python3 -m venv "$venv"; fi
if ! "$py" -c 'import torch, onnx, onnxruntime, openvino, numpy' 2>/dev/null; then
    echo "installing the peers into $venv (torch, onnx, onnxruntime, openvino, numpy)..." >&2
    "$py" -m pip install --quiet --upgrade pip >&2
    "$py" -m pip install --quiet torch onnx onnxruntime openvino numpy >&2
fi
swift build -c release --product dsl >/dev/null
dsl=.build/release/dsl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "peers: $("$py" -c 'import torch, onnxruntime, openvino; print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}")')"

# row NAME SPEC BATCH KIND(train|infer|latency) PEERMODEL
# dsl is measured before and after the peers; its figure is the mean of the two runs.
row() {
    local name=$1 spec=$2 batch=$3 kind=$4 peer=$5 steps=5
    [ "$kind" = latency ] && steps=20
    # The JSON goes through files: a deep network's per-layer JSON exceeds one argument's limit.
    local d1="$work/d1.json" p="$work/peers.json" d2="$work/d2.json"
    $dsl bench "$spec" --batch "$batch" --steps "$steps" --format json > "$d1"
    if [[ $peer == mobilenetv2* ]]; then
        # PyTorch eager (NCHW, channels_last) on bench/ref_models.py's torchvision MobileNetV2.
        "$py" bench/ref_models.py "$peer" "$batch" "$steps" > "$p" 2>/dev/null || true
    elif [ "$peer" = airbench94 ]; then
        # airbench94's own PyTorch code (bench/airbench94_torch.py: channels_last, float32),
        # 8 training steps of the recipe timed after two warm-up steps.
        "$py" bench/airbench94_torch.py --data "$shared/data/cifar-10-full" --threads "$(nproc)" --max-steps 8 2>/dev/null \
            | "$py" -c 'import json, sys; r = json.loads(sys.stdin.read().strip().splitlines()[-1]); print(json.dumps({"peer": "PyTorch channels_last, airbench94 code", "train_ips": r["images_per_second"]}))' \
            > "$p" || true
    else
        "$py" "$shared/bench/peers.py" "$peer" "$batch" "$steps" > "$p" 2>/dev/null || true
    fi
    $dsl bench "$spec" --batch "$batch" --steps "$steps" --format json > "$d2"
    "$py" - "$name" "$kind" "$batch" "$d1" "$d2" "$p" <<'EOF'
import json, sys
name, kind, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
d1, d2, peers = (open(path).read() for path in sys.argv[4:7])
key = "train_images_per_second" if kind == "train" else "inference_images_per_second"
pkey = "train_ips" if kind == "train" else "infer_ips"
a, b = json.loads(d1)[key], json.loads(d2)[key]
dsl = (a + b) / 2
best = None
for line in peers.splitlines():
    try: r = json.loads(line)
    except ValueError: continue
    if pkey in r and (best is None or r[pkey] > best[1]): best = (r["peer"], r[pkey])
if best is None:
    print(f"| {name} | {dsl:.1f} img/s | no peer ran | - |"); sys.exit()
if kind == "latency":
    # Lower is better: the ratio is the peer's latency over dsl's.
    print(f"| {name} | {1000/dsl:.2f} ms | {1000/best[1]:.2f} ms ({best[0]}) | {dsl/best[1]:.2f}x |  (dsl runs {1000/a:.2f}, {1000/b:.2f} ms)")
else:
    print(f"| {name} | {dsl:.1f} img/s | {best[1]:.1f} img/s ({best[0]}) | {dsl/best[1]:.2f}x |  (dsl runs {a:.1f}, {b:.1f})")
EOF
}

echo
echo "| network, batch | dsl | best peer | ratio |"
echo "|---|---|---|---|"
row "All-CNN-C training, 64" specs/all-cnn-c.dsl 64 train allcnn
row "All-CNN-C inference, 64" specs/all-cnn-c.dsl 64 infer allcnn
row "PyramidNet-110 training, 64" specs/pyramidnet-110-a48.dsl 64 train pyramidnet
row "PyramidNet-110 inference, 64" specs/pyramidnet-110-a48.dsl 64 infer pyramidnet
row "GoogLeNet inference 224x224, 16" specs/googlenet.dsl 16 infer googlenet
# MobileNetV2 (issue #13): torchvision's at 224x224, and its CIFAR form for a training step
# (32x32 input, the stem and the second stage at stride 1, 10 classes; bench/ref_models.py
# builds the same network for PyTorch).
cifar_mobilenet="$work/mobilenet-v2-cifar.dsl"
sed -e 's/^network mobilenet-v2$/network mobilenet-v2-cifar/' -e 's/^input 224x224x3$/input 32x32x3/' \
    -e 's/^conv 3 2 32 bn act=relu6 .*/conv 3 1 32 bn act=relu6/' -e 's/^stage(16, 6, 24, 2, 2) .*/stage(16, 6, 24, 2, 1)/' \
    -e 's/^fc 1000$/fc 10/' specs/mobilenet-v2.dsl > "$cifar_mobilenet"
[ "$(diff specs/mobilenet-v2.dsl "$cifar_mobilenet" | grep -c '^>')" = 5 ] || { echo "specs/mobilenet-v2.dsl changed: update the CIFAR edit" >&2; exit 1; }
row "MobileNetV2 inference 224x224, 16" specs/mobilenet-v2.dsl 16 infer mobilenetv2
row "MobileNetV2 CIFAR training, 64" "$cifar_mobilenet" 64 train mobilenetv2-cifar
# The airbench94 network (issue #18) at the recipe's batch, against airbench94's PyTorch code.
row "airbench94 training, 1024" specs/airbench94.dsl 1024 train airbench94
row "All-CNN-C latency, batch 1" specs/all-cnn-c.dsl 1 latency allcnn
row "GoogLeNet latency 224x224, batch 1" specs/googlenet.dsl 1 latency googlenet
[ $quick = 1 ] && exit 0

field() { "$py" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
ratio() { "$py" -c "print(f'{$1/$2:.2f}')"; }

# Thread scaling of the training step: best of five alternating runs each (other work on the
# host slows a two-thread run more than a one-thread run).
s1=0; s2=0
for _ in 1 2 3 4 5; do
    a=$($dsl bench specs/all-cnn-c.dsl --batch 64 --steps 3 --threads 1 --format json | field train_images_per_second)
    b=$($dsl bench specs/all-cnn-c.dsl --batch 64 --steps 3 --threads 2 --format json | field train_images_per_second)
    s1=$("$py" -c "print(max($s1, $a))"); s2=$("$py" -c "print(max($s2, $b))")
done
echo
printf 'all-cnn-c training, 2 threads vs 1 (best of 5 each): %.1f / %.1f img/s = %s x\n' "$s2" "$s1" "$(ratio "$s2" "$s1")"

# Per layer on one core: each convolution's rate against one core's peak (forward + the
# backward passes it runs; Winograd layers count the direct convolution's FLOPs); per layer the
# best of five runs.
runs=()
for _ in 1 2 3 4 5; do
    runs+=("$($dsl bench specs/all-cnn-c.dsl --batch 64 --steps 3 --threads 1 --format json)")
done
"$py" -c "
import json,sys
runs=[json.loads(a) for a in sys.argv[1:]]
peak=max(r['peak_gflops'] for r in runs)
print(f\"all-cnn-c per layer on 1 thread (peak {peak:.0f} GFLOP/s; best of {len(runs)} runs):\")
for i,l in enumerate(runs[0]['layers']):
    if l['macs'] == 0: continue
    b=max((r['layers'][i] for r in runs), key=lambda x: x['gflops_per_second'])
    print(f\"  {b['name']:8s} {b['kernel']:12s} fwd {b['forward_ms']:7.2f} ms  bwd {b['backward_ms']:7.2f} ms  {100*b['gflops_per_second']/peak:4.0f}% of one core\")
" "${runs[@]}"
