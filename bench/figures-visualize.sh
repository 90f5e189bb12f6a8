#!/usr/bin/env bash
# The figures of README "Visualising what a network learned": trains specs/cifar-fast.dsl for
# 8 epochs on the 10,000 CIFAR-10 training images of ../shared/data/cifar-10-batches-bin
# (about 6 minutes on 2 shared cores), then draws with dsl visualize, on its 10,000 test
# images, what units of its last convolution (conv6) respond to.
#   DATA=DIR  the CIFAR-10 binary directory   RUN=DIR  the training run   DSL=PATH  the binary
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/cifar-10-batches-bin}
RUN=${RUN:-runs/visualize-cifar-fast}
if [ -z "${DSL:-}" ]; then swift build -c release; DSL=.build/release/dsl; fi

"$DSL" train specs/cifar-fast.dsl --data "$DATA" --epochs 8 --batch 64 --lr 0.1 --weight-decay 5e-4 \
    --nesterov --out "$RUN" --overwrite
"$DSL" eval specs/cifar-fast.dsl --weights "$RUN/checkpoint.safetensors" --data "$DATA" | head -1

# Guided backpropagation: units 0-7 of conv6, the 8 test images that activate each most,
# cropped to the unit's 23x23 receptive field.
"$DSL" visualize specs/cifar-fast.dsl --weights "$RUN/checkpoint.safetensors" --data "$DATA" \
    --layer conv6 --units 0-7 --top 8 --method guided -o bench/figures/visualize-conv6-guided.png
# The three methods side by side (backprop, deconvnet, guided): units 0-3, 4 images each.
"$DSL" visualize specs/cifar-fast.dsl --weights "$RUN/checkpoint.safetensors" --data "$DATA" \
    --layer conv6 --units 0-3 --top 4 --method all -o bench/figures/visualize-conv6-all.png
# Whole-image maps of the logits: test images 0-3, each for its own class.
for n in 0 1 2 3; do
    class=$(od -An -tu1 -j $((n * 3073)) -N1 "$DATA/test_batch.bin" | tr -d ' ')  # the image's label
    "$DSL" visualize specs/cifar-fast.dsl --weights "$RUN/checkpoint.safetensors" --data "$DATA" \
        --image $n --class "$class" --method all -o "bench/figures/visualize-class-image$n.png"
done
