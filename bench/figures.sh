#!/usr/bin/env bash
# Regenerates the drawings in bench/figures/ that README.md shows ("Drawing a network"), with
# a release build of dsl:
#
#   bash bench/figures.sh [DSL_BINARY]      (default: .build/release/dsl, built if missing)
#
# The SVGs are deterministic: the same spec and dsl give the same bytes, so `git diff` after a
# run shows exactly what a change to the drawing did.
set -euo pipefail
cd "$(dirname "$0")/.."
dsl=${1:-.build/release/dsl}
if [ ! -x "$dsl" ]; then swift build -c release --product dsl >/dev/null; fi
mkdir -p bench/figures

"$dsl" draw specs/inception-3a.dsl -o bench/figures/inception-3a.svg
"$dsl" draw specs/googlenet.dsl -o bench/figures/googlenet.svg
"$dsl" draw specs/pyramidnet-110-a48.dsl --depth 2 -o bench/figures/pyramidnet-110-a48-depth2.svg

ls -l bench/figures/*.svg
