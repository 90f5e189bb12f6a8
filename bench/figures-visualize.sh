#!/usr/bin/env bash
# The figures of README "Visualising what a network learned": trains specs/cifar-fast.dsl for
# 8 epochs on the 10,000 CIFAR-10 training images of ../shared/data/cifar-10-batches-bin
# (about 6 minutes on 2 shared cores), then draws with dsl visualize, on its 10,000 test
# images, what units of its last convolution (conv6) respond to.
#   DATA=DIR  the CIFAR-10 binary directory   RUN=DIR  the training run   DSL=PATH  the binary
#   TRAIN=0   draw from the checkpoint already in RUN
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/cifar-10-batches-bin}
RUN=${RUN:-runs/visualize-cifar-fast}
if [ -z "${DSL:-}" ]; then swift build -c release; DSL=.build/release/dsl; fi

[ "${TRAIN:-1}" = 0 ] || "$DSL" train specs/cifar-fast.dsl --data "$DATA" --epochs 8 --batch 64 --lr 0.1 --weight-decay 5e-4 \
    --nesterov --out "$RUN" --overwrite
"$DSL" eval specs/cifar-fast.dsl --weights "$RUN/checkpoint.safetensors" --data "$DATA" > "$RUN/eval.txt"
head -1 "$RUN/eval.txt"

# Guided backpropagation: units 0-5 of conv6, the 6 test images that activate each most,
# cropped to the unit's 23x23 receptive field.
"$DSL" visualize specs/cifar-fast.dsl --weights "$RUN/checkpoint.safetensors" --data "$DATA" \
    --layer conv6 --units 0-5 --top 6 --method guided -o bench/figures/visualize-conv6-guided.png
# The three methods side by side (backprop, deconvnet, guided): units 0-3, 3 images each.
"$DSL" visualize specs/cifar-fast.dsl --weights "$RUN/checkpoint.safetensors" --data "$DATA" \
    --layer conv6 --units 0-3 --top 3 --method all -o bench/figures/visualize-conv6-all.png
# Whole-image maps of the logits: test images 2 and 3, each for its own class.
for n in 2 3; do
    class=$(od -An -tu1 -j $((n * 3073)) -N1 "$DATA/test_batch.bin" | tr -d ' ')  # the image's label
    "$DSL" visualize specs/cifar-fast.dsl --weights "$RUN/checkpoint.safetensors" --data "$DATA" \
        --image $n --class "$class" --method all -o "bench/figures/visualize-class-image$n.png"
done
