#!/usr/bin/env bash
# How `dsl` scales with the size of a spec: each case runs at sizes N, 2N and 4N and prints the
# wall time of each and the ratio t(4N) / t(N): about 4 for linear work, 16 for quadratic.
# These are the inputs issue #11 found quadratic; speed is measured here, never asserted in
# tests (bench/README.md).
#
#   bash bench/scaling.sh [DSL_BINARY]      (default: .build/release/dsl, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
dsl=${1:-.build/release/dsl}
if [ ! -x "$dsl" ]; then swift build -c release --product dsl >/dev/null; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# gen CASE N: writes a spec of size N for one case.
gen() {
    python3 - "$1" "$2" <<'EOF'
import sys
case, n = sys.argv[1], int(sys.argv[2])
out = ["input 8x8x4"]
if case == "block-parameters":          # a block with N parameters, called once
    params = ["p%d" % i for i in range(n)]
    out += ["block b(%s) {" % ", ".join(params), "  conv 1 1 p0", "}", "b(%s)" % ", ".join(["4"] * n)]
elif case == "calls-labelled-alike":    # N calls of one block, each labelled x (names x, x_2, ...)
    out += ["block b() {", "  conv 1 1 4", "}"] + ["x: b()"] * n
elif case == "unknown-options":         # one layer with N unknown options (N errors, 100 shown)
    out += ["conv 1 1 4 " + " ".join("o%d=1" % i for i in range(n))]
elif case == "reduce-chained-inceptions":  # N inception modules in a row, no pool projection, no head
    out += ["inception<3,0,12,15,4,0>"] * n
    print("\n".join(out)); sys.exit(0)
elif case == "run-flat-layers":         # N layers lowered, compiled and run by `dsl run`
    cycle = ["conv 3 1 4 bn act=linear", "relu", "conv 1 1 4", "bn"]
    out += [cycle[i % 4] for i in range(n)]
out += ["gap", "fc 10", "softmax"]
print("\n".join(out))
EOF
}

# seconds CMD...: wall time of one run (its exit status is ignored: some cases are errors;
# a run is stopped after 300 s).
seconds() {
    python3 -c 'import subprocess, sys, time
t = time.time()
try: subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
except subprocess.TimeoutExpired: pass
print("%.3f" % (time.time() - t))' "$@"
}

printf '%-22s %10s %10s %10s %10s %9s\n' case N "t(N) s" "t(2N) s" "t(4N) s" "t4N/tN"
run_case() {
    local name=$1 n=$2; shift 2
    local times=()
    for m in $n $((2 * n)) $((4 * n)); do
        gen "$name" "$m" > "$tmp/$name-$m.dsl"
        times+=("$(seconds "$@" "$tmp/$name-$m.dsl")")
    done
    printf '%-22s %10d %10.2f %10.2f %10.2f %9.1f\n' "$name" "$n" "${times[0]}" "${times[1]}" "${times[2]}" \
        "$(python3 -c "print(${times[2]} / max(${times[0]}, 0.005))")"
}
run_case block-parameters 25000 "$dsl" check
run_case calls-labelled-alike 12500 "$dsl" check
run_case unknown-options 25000 "$dsl" check
run_case run-flat-layers 10000 "$dsl" run --batch 1
run_case reduce-chained-inceptions 100 "$dsl" rewrite --pass reduce --ratio 0.5
