#!/usr/bin/env python3
"""The specs of specs/ that transcribe torchvision models, counted by dsl and by torchvision.

For each spec: `dsl check --format json` gives the trainable parameters (`total.params`) and the
multiply-accumulates of convolutions and linear layers (`total.macs`, README "Counting rules");
torchvision's model, built with weights=None, gives sum(p.numel() for p in model.parameters())
and the MACs of one forward pass of a batch of 1 counted by forward hooks on every nn.Conv2d
(output elements per image x in_channels / groups x kh x kw) and nn.Linear (in x out). Both at
224x224 (Inception-v3: 299x299, aux_logits=False, init_weights=False). Nothing else of the model
is counted (batch norm, activations, pooling: dsl's "other ops").

A spec is equal when the totals are, with no warning from dsl check, and also layer by layer:
the conv and linear layers of both sides, as multisets of (weights, MACs), and the parameters
split into weights, biases and batch norm (dsl: total weights; params - weights - non-trainable;
non-trainable, since batch norm keeps as many running statistics as scale and shift
parameters). When they differ, the split and the (weights, MACs) found on one side only are
printed, which usually names the layer that is wrong.

Usage: python3 bench/torchvision-parity.py [--dsl PATH] [--json] [--size N] [SPEC ...]
       (default: every spec of the table below; exit 1 when any figure differs)
Run through bench/torchvision-parity.sh, which provides torch and torchvision.
"""
import argparse
import collections
import json
import os
import subprocess
import sys

# spec file in specs/ -> (torchvision.models constructor, keyword arguments, input side)
MODELS = collections.OrderedDict([
    ("mobilenet-v2.dsl", ("mobilenet_v2", {}, 224)),
    ("mobilenet-v3-large.dsl", ("mobilenet_v3_large", {}, 224)),
    ("efficientnet-b0.dsl", ("efficientnet_b0", {}, 224)),
    ("resnext-50-32x4d.dsl", ("resnext50_32x4d", {}, 224)),
    ("inception-v3.dsl", ("inception_v3", {"aux_logits": False, "init_weights": False}, 299)),
    ("resnet-18.dsl", ("resnet18", {}, 224)),
    ("resnet-50.dsl", ("resnet50", {}, 224)),
    ("vgg-16.dsl", ("vgg16", {}, 224)),
    ("densenet-121.dsl", ("densenet121", {}, 224)),
])


def torchvision_counts(constructor, kwargs, side):
    """Parameters, conv+linear MACs, and the (weights, MACs) of each conv/linear layer."""
    import torch
    import torchvision.models as models
    model = getattr(models, constructor)(weights=None, **kwargs).eval()
    params = sum(p.numel() for p in model.parameters())
    # Where the parameters are: conv/linear weights, their biases, batch norm's scale and shift.
    split = {"weights": 0, "biases": 0, "batch norm": 0}
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            split["weights"] += m.weight.numel()
            split["biases"] += m.bias.numel() if m.bias is not None else 0
        elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
            split["batch norm"] += m.weight.numel() + m.bias.numel()
    layers = []

    def conv_hook(module, inputs, output):
        kh, kw = module.kernel_size
        per_image = output.numel() // output.shape[0]
        layers.append((module.weight.numel(), per_image * (module.in_channels // module.groups) * kh * kw))

    def linear_hook(module, inputs, output):
        layers.append((module.weight.numel(), module.in_features * module.out_features))

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, torch.nn.Linear):
            m.register_forward_hook(linear_hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    return params, sum(macs for _, macs in layers), layers, split


def dsl_counts(dsl, path, side=None):
    """dsl check's parameters, MACs, input, diagnostics and the (weights, MACs) of each layer with MACs."""
    r = subprocess.run([dsl, "check", path, "--format", "json"] + ([] if side is None else ["--input", f"{side}x{side}x3"]),
                       capture_output=True, text=True)
    try:
        j = json.loads(r.stdout)
    except ValueError:
        return None, f"dsl check printed no JSON (exit {r.returncode}): {r.stderr.strip()[:400]}"
    if not j.get("valid"):
        errors = "; ".join(f"{d.get('line')}:{d.get('column')}: {d['message']}" for d in j.get("diagnostics", []) if d.get("severity") == "error")
        return None, f"dsl check rejects it: {errors[:600]}"
    layers = [(l["weights"], l["macs"]) for l in j["layers"] if l["macs"] > 0]
    warnings = [f"{d.get('line')}:{d.get('column')}: {d['message']}" for d in j.get("diagnostics", []) if d.get("severity") == "warning"]
    t = j["total"]
    # Batch norm has as many running statistics (non-trainable) as trainable scale and shift.
    split = {"weights": t["weights"], "biases": t["params"] - t["weights"] - t["non_trainable_params"], "batch norm": t["non_trainable_params"]}
    return {"params": t["params"], "macs": t["macs"], "input": j["input"], "layers": layers, "split": split, "warnings": warnings}, None


def unmatched(a, b):
    """Items of multiset a not in b."""
    return sorted((collections.Counter(a) - collections.Counter(b)).elements())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsl", default=".build/debug/dsl", help="the dsl binary (default .build/debug/dsl)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per spec instead of the table")
    ap.add_argument("--size", type=int, help="check both at SIZE x SIZE instead (dsl check --input SIZExSIZEx3); "
                    "dsl's warnings are then printed but not failures (a size may drop border rows)")
    ap.add_argument("specs", nargs="*", help="spec files (default: every spec of the table, in specs/)")
    args = ap.parse_args()
    paths = args.specs or [os.path.join("specs", name) for name in MODELS]

    import torch
    import torchvision
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if not args.json:
        print(f"torch {torch.__version__}, torchvision {torchvision.__version__}; dsl: {args.dsl}")
        print(f"| spec | input | dsl params | torchvision params | dsl conv+linear MACs | torchvision hook MACs | equal |")
        print(f"|---|---|---:|---:|---:|---:|---|")
    failures = 0
    layers_checked = 0
    notes = []
    for path in paths:
        name = os.path.basename(path)
        if name not in MODELS:
            print(f"{path}: no torchvision model is known for it (known: {', '.join(MODELS)})", file=sys.stderr)
            failures += 1
            continue
        constructor, kwargs, side = MODELS[name]
        side = args.size or side
        tv_params, tv_macs, tv_layers, tv_split = torchvision_counts(constructor, kwargs, side)
        d, error = dsl_counts(args.dsl, path, args.size)
        if d is None:
            failures += 1
            print(f"| {name} | - | - | {tv_params:,} | - | {tv_macs:,} | **no**: {error} |" if not args.json else
                  json.dumps({"spec": name, "error": error, "torchvision_params": tv_params, "torchvision_macs": tv_macs}))
            continue
        same_input = d["input"] == [side, side, 3]
        # Equal: the totals, and also layer by layer (the multisets of (weights, MACs) of the conv
        # and linear layers) and where the parameters are (weights, biases, batch norm).
        same_layers = not unmatched(d["layers"], tv_layers) and not unmatched(tv_layers, d["layers"])
        equal = (d["params"] == tv_params and d["macs"] == tv_macs and same_layers and d["split"] == tv_split
                 and same_input and (args.size is not None or not d["warnings"]))
        layers_checked += len(tv_layers) if equal else 0
        failures += not equal
        if args.json:
            print(json.dumps({"spec": name, "model": constructor, "input": d["input"], "dsl_params": d["params"],
                              "torchvision_params": tv_params, "dsl_macs": d["macs"], "torchvision_macs": tv_macs,
                              "warnings": d["warnings"], "equal": equal}))
        else:
            print(f"| {name} | {'x'.join(map(str, d['input']))} | {d['params']:,} | {tv_params:,} | {d['macs']:,} | {tv_macs:,} | {'yes' if equal else '**no**'} |")
        if not same_input:
            notes.append(f"{name}: dsl's input is {d['input']}, torchvision's is [{side}, {side}, 3]")
        for w in d["warnings"]:
            notes.append(f"{name}: dsl check warns: {w}")
        if not (d["params"] == tv_params and d["macs"] == tv_macs and same_layers and d["split"] == tv_split):
            only_dsl = unmatched(d["layers"], tv_layers)
            only_tv = unmatched(tv_layers, d["layers"])
            notes.append(f"{name}: params differ by {d['params'] - tv_params:+,}, MACs by {d['macs'] - tv_macs:+,}; "
                         f"{len(d['layers'])} dsl layers with MACs, {len(tv_layers)} torchvision conv/linear layers")
            notes.append("  parameters, dsl / torchvision: " + ", ".join(f"{k} {d['split'][k]:,} / {tv_split[k]:,}" for k in tv_split))
            notes.append(f"  (weights, MACs) only in dsl: {only_dsl[:12]}{' ...' if len(only_dsl) > 12 else ''}")
            notes.append(f"  (weights, MACs) only in torchvision: {only_tv[:12]}{' ...' if len(only_tv) > 12 else ''}")
    for n in notes:
        print(n, file=sys.stderr if args.json else sys.stdout)
    if not args.json:
        print(f"{len(paths) - failures} of {len(paths)} specs equal to torchvision" + ("" if failures == 0 else "; MISMATCH")
              + f" (equal also layer by layer: each of the {layers_checked} conv and linear layers of the equal specs has its"
              " torchvision counterpart's weights and MACs, and weights, biases and batch-norm parameters agree apart)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
