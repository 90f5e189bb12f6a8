#!/usr/bin/env bash
# Issue #17's acceptance table: every CIFAR spec in specs/ trained with default flags,
#
#   dsl train SPEC --data ../shared/data/cifar-10-batches-bin --epochs 3
#
# (the 10,000-image CIFAR-10 subset; default recipe: SGD momentum 0.9, --lr 0.05, cosine, batch
# 64, weight decay 1e-3, translations of 2 pixels, standardised inputs, seed 1). Prints one line
# per spec with its test accuracy after each epoch and the wall time, and exits 1 when a spec
# ends below 30 % (the issue's bar) or fails. Runs go to .build/train-defaults/NAME.
#
# Usage: bash bench/train-defaults.sh [SPEC...]     (default: every CIFAR spec in specs/)
#        DATA=DIR EPOCHS=N bash bench/train-defaults.sh   (another dataset folder or budget)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data/cifar-10-batches-bin}
epochs=${EPOCHS:-3}
out=.build/train-defaults
swift build -c release --product dsl >/dev/null
dsl=.build/release/dsl
mkdir -p "$out"

specs=("$@")
if [ ${#specs[@]} -eq 0 ]; then
    for s in specs/*.dsl; do
        # CIFAR specs: a 32x32x3 input.
        grep -q '^input 32x32x3' "$s" && specs+=("$s")
    done
fi

printf '%-36s %-26s %9s %9s\n' spec "test accuracy by epoch" final time
status=0
for s in "${specs[@]}"; do
    name=$(basename "$s" .dsl)
    rm -rf "$out/$name"
    start=$(date +%s)
    if ! "$dsl" train "$s" --data "$data" --epochs "$epochs" --out "$out/$name" --quiet >"$out/$name.log" 2>&1; then
        printf '%-36s failed: %s\n' "$name" "$(tail -1 "$out/$name.log")"
        status=1
        continue
    fi
    secs=$(( $(date +%s) - start ))
    python3 - "$out/$name/metrics.jsonl" "$name" "$secs" <<'PY' || status=1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
accs = [r["test_acc"] * 100 for r in rows]
final = accs[-1]
line = " ".join(f"{a:5.1f}" for a in accs)
print(f"{sys.argv[2]:<36} {line:<26} {final:8.2f}% {int(sys.argv[3]) // 60:4d}m{int(sys.argv[3]) % 60:02d}s"
      + ("   BELOW 30 %" if final < 30 else ""))
sys.exit(1 if final < 30 else 0)
PY
done
exit $status
