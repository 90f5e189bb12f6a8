#!/usr/bin/env bash
# The modern architectures of specs/ against torchvision (issue #13, README "Modern architectures"):
# for each spec, `dsl check --format json`'s trainable parameters and conv+linear MACs against
# torchvision's model built with weights=None: sum(p.numel() for p in model.parameters()) and
# forward hooks on every nn.Conv2d and nn.Linear, at 224x224 (Inception-v3: 299x299, without the
# auxiliary head). Prints a table (spec, params, MACs, equal) and exits 1 on any difference, a
# spec that dsl check rejects, or one it warns about.
#
# torch and torchvision go into the build folder's virtual environment (.build/venv, as for the
# other bench scripts; VENV=DIR for another), installed from PyPI only when absent (torch is
# about 5 GB of CUDA wheels; a present torch is kept and torchvision is matched to it).
# Usage: bash bench/torchvision-parity.sh [SPEC ...]   (default: the nine specs)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.build/venv}"
py="$venv/bin/python"
mkdir -p .build

if [ ! -x "$py" ]; then
    python3 -m venv "$venv"
fi
if ! "$py" -c 'import torch, torchvision' 2>/dev/null; then
    if torch_version=$("$py" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null); then
        echo "installing torchvision for torch $torch_version from PyPI into $venv..." >&2
        "$py" -m pip install --quiet --disable-pip-version-check torchvision "torch==$torch_version"
    else
        echo "installing torch and torchvision from PyPI into $venv (about 5 GB, a few minutes)..." >&2
        "$py" -m pip install --quiet --disable-pip-version-check torch torchvision
    fi
fi

swift build --product dsl >/dev/null
"$py" bench/torchvision-parity.py --dsl .build/debug/dsl "$@"
