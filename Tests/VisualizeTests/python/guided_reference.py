#!/usr/bin/env python3
"""An independent PyTorch implementation of `dsl visualize`'s three reconstructions, compared
with its `--raw` maps (Tests/VisualizeTests/TorchComparisonTests.swift runs it).

The networks of Tests/VisualizeTests/specs are written out by hand below as PyTorch operations
(NCHW), loaded from a dsl checkpoint (safetensors, read here with json and numpy: convolution
weights (KH, KW, IC, OC), linear weights (IN, OUT) with IN in NHWC order, batch-norm running
statistics), run in eval mode (batch norm with running statistics, dropout off). The three
rules are backward hooks on the network's nn.ReLU modules:

  backprop   the plain gradient (no hook)
  deconvnet  the ReLU passes the gradient from above where it is > 0: grad_in = relu(grad_out)
  guided     both: grad_in = relu(grad_out * [x > 0]) = relu(PyTorch's own grad_in)

Max pooling uses PyTorch's own max_pool2d backward (its argmax). For each row of the dsl run
the script finds the unit's strongest activation itself (first maximum in row-major order),
seeds its gradient with 1 (all others 0), takes the gradient of the preprocessed input image
and compares it with dsl's map: max |dsl - torch| <= tol * max |torch| for every map.

Usage: guided_reference.py --network NAME --weights CKPT --data DIR --raw RAW.npy
                           (--layer L --rows "U:I,I,...;U:I,..." | --class C --image N)
                           [--method guided|deconvnet|backprop|all] [--tol 1e-4]
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        buf = data[8 + n + start:8 + n + end]
        tensors[name] = np.frombuffer(buf, dtype=np.dtype(dtypes[info["dtype"]]).newbyteorder("<")).reshape(info["shape"])
    return tensors, meta


def load_cifar_test(directory):
    raw = np.fromfile(f"{directory}/test_batch.bin", dtype=np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32), raw[:, 0].astype(np.int64)


def preprocess(images, tensors, meta):
    method = meta.get("preprocess.method", "none")
    if method == "none":
        return images
    if method == "standardize":
        mean = tensors["preprocess.mean"].astype(np.float32).reshape(1, -1, 1, 1)
        inv = tensors["preprocess.inv_std"].astype(np.float32).reshape(1, -1, 1, 1)
        return (images - mean) * inv
    sys.exit(f"preprocessing {method} is not implemented by this reference")


# The networks, by hand: (name, op, arguments, inputs). Names are dsl's layer names.
NETWORKS = {
    "allcnn-small": [
        ("conv1", "conv", dict(k=3, s=1, pad=1, bn=False, relu=True), ["input"]),
        ("conv2", "conv", dict(k=3, s=2, pad=1, bn=False, relu=True), ["conv1"]),
        ("conv3", "conv", dict(k=3, s=1, pad=1, bn=False, relu=True), ["conv2"]),
        ("conv4", "conv", dict(k=3, s=2, pad=1, bn=False, relu=True), ["conv3"]),
        ("conv5", "conv", dict(k=3, s=1, pad=0, bn=False, relu=True), ["conv4"]),
        ("conv6", "conv", dict(k=1, s=1, pad=0, bn=False, relu=True), ["conv5"]),
        ("gap1", "gap", {}, ["conv6"]),
    ],
    "bn-merge": [
        ("conv1", "conv", dict(k=3, s=1, pad=1, bn=True, relu=True), ["input"]),
        ("maxpool1", "maxpool", dict(k=2, s=2, pad=0), ["conv1"]),
        ("conv2", "conv", dict(k=3, s=1, pad=1, bn=True, relu=True), ["maxpool1"]),
        ("conv3", "conv", dict(k=3, s=1, pad=1, bn=True, relu=False), ["conv2"]),
        ("res", "add", {}, ["conv3", "maxpool1"]),
        ("relu1", "relu", {}, ["res"]),
        ("conv4", "conv", dict(k=1, s=1, pad=0, bn=True, relu=True), ["relu1"]),
        ("conv5", "conv", dict(k=3, s=1, pad=1, bn=True, relu=True), ["relu1"]),
        ("maxpool2", "maxpool", dict(k=3, s=1, pad=1), ["relu1"]),
        ("mix", "concat", {}, ["conv4", "conv5", "maxpool2"]),
        ("conv6", "conv", dict(k=3, s=2, pad=1, bn=True, relu=True), ["mix"]),
        ("gap1", "gap", {}, ["conv6"]),
        ("fc1", "fc", {}, ["gap1"]),
    ],
}
# The logits: the input of the final softmax.
LOGITS = {"allcnn-small": "gap1", "bn-merge": "fc1"}


class Net(nn.Module):
    def __init__(self, steps, tensors):
        super().__init__()
        self.steps = steps
        t = lambda name: torch.tensor(np.array(tensors[name], dtype=np.float32))
        self.relus = nn.ModuleDict()
        self.params = {}
        for name, op, a, _ in steps:
            if op == "conv":
                p = {"weight": t(f"{name}.weight").permute(3, 2, 0, 1).contiguous()}  # (KH,KW,IC,OC) -> (OC,IC,KH,KW)
                if f"{name}.bias" in tensors:
                    p["bias"] = t(f"{name}.bias")
                if a["bn"]:
                    for k in ("weight", "bias", "running_mean", "running_var"):
                        p["bn." + k] = t(f"{name}.bn.{k}")
                self.params[name] = p
                if a["relu"]:
                    self.relus[name] = nn.ReLU(inplace=False)
            elif op == "relu":
                self.relus[name] = nn.ReLU(inplace=False)
            elif op == "fc":
                self.params[name] = {"weight": t(f"{name}.weight"), "bias": t(f"{name}.bias")}

    def forward(self, x):
        out = {"input": x}
        for name, op, a, inputs in self.steps:
            xs = [out[i] for i in inputs]
            if op == "conv":
                p = self.params[name]
                y = F.conv2d(xs[0], p["weight"], p.get("bias"), stride=a["s"], padding=a["pad"])
                if a["bn"]:
                    y = F.batch_norm(y, p["bn.running_mean"], p["bn.running_var"], p["bn.weight"], p["bn.bias"],
                                     training=False, eps=1e-5)
                if a["relu"]:
                    y = self.relus[name](y)
            elif op == "relu":
                y = self.relus[name](xs[0])
            elif op == "maxpool":
                y = F.max_pool2d(xs[0], a["k"], a["s"], a["pad"])
            elif op == "add":
                width = max(v.shape[1] for v in xs)
                y = sum(F.pad(v, (0, 0, 0, 0, 0, width - v.shape[1])) for v in xs)
            elif op == "concat":
                y = torch.cat(xs, dim=1)
            elif op == "gap":
                y = xs[0].mean(dim=(2, 3), keepdim=True)
            elif op == "fc":
                w = self.params[name]["weight"]  # (IN, OUT), IN flattened H, W, C
                v = xs[0]
                n, c, h, wd = v.shape
                w = w.reshape(h, wd, c, -1).permute(3, 2, 0, 1).reshape(w.shape[1], -1)
                y = (v.reshape(n, -1) @ w.T + self.params[name]["bias"]).reshape(n, -1, 1, 1)
            out[name] = y
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", required=True, choices=sorted(NETWORKS))
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--layer")
    ap.add_argument("--rows")
    ap.add_argument("--class", dest="cls", type=int)
    ap.add_argument("--image", type=int)
    ap.add_argument("--method", default="all")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    torch.set_default_dtype(torch.float32)
    tensors, meta = read_safetensors(args.weights)
    images, _ = load_cifar_test(args.data)
    inputs = preprocess(images, tensors, meta)
    net = Net(NETWORKS[args.network], tensors).eval()
    rules = ["backprop", "deconvnet", "guided"] if args.method == "all" else [args.method]
    state = {"rule": "backprop"}

    def hook(module, grad_input, grad_output):
        if state["rule"] == "deconvnet":
            return (grad_output[0].clamp(min=0),)
        if state["rule"] == "guided":
            return (grad_input[0].clamp(min=0),)
        return None

    for relu in net.relus.values():
        relu.register_full_backward_hook(hook)

    if args.cls is not None:
        layer, rows = LOGITS[args.network], [(args.cls, [args.image])]
    else:
        layer = args.layer
        rows = []
        for part in args.rows.split(";"):
            unit, ims = part.split(":")
            rows.append((int(unit), [int(i) for i in ims.split(",")]))
    raw = np.load(args.raw)
    expected_shape = (len(rows), max(len(r[1]) for r in rows), len(rules), 32, 32, 3)
    if raw.shape != expected_shape or raw.dtype != np.float32:
        sys.exit(f"dsl's raw maps are {raw.dtype} {raw.shape}, expected float32 {expected_shape}")

    worst, failures, compared = 0.0, 0, 0
    for r, (unit, ims) in enumerate(rows):
        for k, image in enumerate(ims):
            for m, rule in enumerate(rules):
                state["rule"] = rule
                x = torch.tensor(inputs[image:image + 1]).requires_grad_(True)
                act = net(x)[layer]
                flat = act[0, unit].reshape(-1)
                position = int(torch.argmax(flat))
                seed = torch.zeros_like(act)
                seed[0, unit].view(-1)[position] = 1
                (grad,) = torch.autograd.grad(act, x, grad_outputs=seed)
                ref = grad[0].permute(1, 2, 0).numpy()  # HWC, as dsl writes it
                got = raw[r, k, m]
                scale = float(np.abs(ref).max())
                diff = float(np.abs(got - ref).max())
                ratio = diff / scale if scale > 0 else diff
                worst = max(worst, ratio)
                compared += 1
                ok = diff <= args.tol * scale if scale > 0 else diff == 0
                if not ok:
                    failures += 1
                    print(f"MISMATCH unit {unit} image {image} {rule}: max |dsl - torch| = {diff:.3e}, largest |torch| = {scale:.3e} (ratio {ratio:.2e})")
    print(f"{args.network} {layer}: {compared} maps compared ({', '.join(rules)}), worst max|dsl - torch| / max|torch| = {worst:.2e} (tolerance {args.tol:g}), {failures} mismatches")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
