#!/usr/bin/env bash
# The export parity check of issue #12, for every spec in specs/ (README, "Export and scale out"):
#
#   PyTorch (dsl export --to pytorch): the module's parameter count is `dsl check`'s; on the same
#   weights and inputs its logits equal dsl's engine (max |difference| <= 1e-4 of the largest
#   output); one SGD step from the same weights on the same batch (no augmentation, dropout off)
#   gives the same weights (max |difference| <= 1e-4 of each tensor's largest value).
#   ONNX (ONNXExport): onnx.checker.check_model(full_check=True), strict shape inference, and
#   onnxruntime's outputs equal the engine's (<= 1e-4 of the largest output).
#
# PyTorch is large (5 GB of CUDA wheels from PyPI, about 1.5 min here); it goes into the build
# folder's virtual environment .build/venv (never global), installed only when absent, with
# safetensors and numpy; onnx and onnxruntime are installed there by the tests when absent.
# The checks are the test suite's (PyTorchParityTests, ONNXExportTests), run with
# DSL_REQUIRE_TORCH=1 and DSL_REQUIRE_PYTHON=1 so that a missing tool fails instead of skipping;
# this script prints one line per spec with the measured differences, and exits 1 when any
# check fails. Usage: bash bench/export-parity.sh   (the full log: .build/export-parity.log)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/venv
log=.build/export-parity.log
mkdir -p .build

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, safetensors, numpy' 2>/dev/null; then
    echo "installing torch, safetensors and numpy from PyPI into $venv (about 5 GB, a few minutes)..." >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check torch safetensors numpy
fi
echo "torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') in $venv" >&2

swift build --build-tests >/dev/null
status=0
DSL_REQUIRE_TORCH=1 DSL_REQUIRE_PYTHON=1 swift test --skip-build \
    --filter 'PyTorchParityTests|ONNXExportTests/testEverySpecMatchesTheEngine' >"$log" 2>&1 || status=$?

# One line per spec: dsl check's parameter count, then what the checks measured.
summary=0
"$venv/bin/python" - "$log" specs/*.dsl <<'EOF' || summary=$?
import json, os, re, subprocess, sys

log = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
torch_lines, onnx = {}, {}
for line in log:
    m = re.match(r"pytorch parity (\S+): (ok|FAILED): (.*)", line)
    if m:
        torch_lines[m.group(1)] = (m.group(2), m.group(3))
    m = re.match(r"onnx (\S+\.dsl)( \(logits\))?: relative difference (\S+)", line)
    if m:
        onnx[m.group(1)] = max(onnx.get(m.group(1), 0.0), float(m.group(3)))
failed_onnx = {m.group(1) for line in log for m in [re.search(r"error: .*ONNXExportTests.* - (\S+\.dsl)", line)] if m}

bad = 0
for path in sys.argv[2:]:
    name = os.path.basename(path)
    check = json.loads(subprocess.run([".build/debug/dsl", "check", path, "--format", "json"], capture_output=True, text=True).stdout)
    params = check["total"]["params"]
    verdict, summary = torch_lines.get(name[:-4], ("MISSING", ""))
    fields = dict(re.findall(r"(forward|weights|init|sgd) ([0-9.e+-]+)", summary))
    count = re.search(r"(\d+) parameters", summary)
    same = count is not None and int(count.group(1)) == params
    ok = verdict == "ok" and same and name in onnx and name not in failed_onnx and onnx[name] <= 1e-4
    bad += not ok
    print(f"{name:38s} {'ok    ' if ok else 'FAILED'} params {params:>9,} (PyTorch {'same' if same else count.group(1) if count else '?'})"
          f" | PyTorch forward {fields.get('forward', '?'):>7s}, SGD step weights {fields.get('weights', '?'):>7s}"
          f" | ONNX full check {'ok' if name in onnx and name not in failed_onnx else 'FAILED'}, forward {onnx.get(name, float('nan')):.1e}")
constructs = {k: v for k, v in torch_lines.items() if not os.path.exists(f"specs/{k}.dsl")}
print(f"PyTorch parity of the {len(constructs)} construct specs of the tests: "
      f"{sum(v[0] == 'ok' for v in constructs.values())} ok")
print("(differences: max |dsl engine - other| / max |dsl engine|; tolerance 1e-4)")
sys.exit(1 if bad else 0)
EOF
if [ "$status" -ne 0 ] || [ "$summary" -ne 0 ]; then
    echo "bench/export-parity.sh: a check failed (swift test status $status); see $log" >&2
    exit 1
fi
