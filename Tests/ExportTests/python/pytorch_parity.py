"""The PyTorch export checked against dsl's engine (run by PyTorchParityTests.swift).

usage: pytorch_parity.py CASE_DIR...

Each CASE_DIR holds what the Swift test wrote for one spec:
  model.py            dsl export --to pytorch
  expect.json         network, parameter count of 'dsl check', seed, batch, the SGD settings
  init.safetensors    the engine's initial weights for the seed (dsl names and layouts)
  weights.safetensors a dsl checkpoint: the weights every check starts from
  io.safetensors      input (N, H, W, C) and the engine's logits (N, H, W, C) in inference mode;
                      step.input, step.labels and step.loss of a training step; sgd.gradient,
                      sgd.after and sgd.velocity: dsl's SGD applied twice with that gradient
  after.safetensors   the engine's weights, statistics and optimizer.velocity after the step

Checks, for each case: the module's parameter count is dsl check's; Model(seed=S) is the
engine's initialisation; on the same weights and input the logits equal the engine's (max abs
difference <= 1e-4 of the largest); dsl's SGD on a given gradient (momentum, Nesterov, weight
decay on weights only) is make_optimizer's to 1e-6; and from the same weights one SGD step on
the same batch (no augmentation, dropout off) gives the same loss (1e-4), the same weights and
batch-norm statistics (max abs difference <= 1e-4 of the tensor's largest value), and the same
updates and velocity (<= 0.1 of their largest values: rounding, see below). Prints one JSON object per case: {"case", "ok", "failures", "summary"}.
"""

import importlib.util
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
torch.use_deterministic_algorithms(False)


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nhwc_to_output(t, like):
    """The engine's (N, H, W, C) tensor in the module's output layout: (N, C) or (N, C, H, W)."""
    t = t.permute(0, 3, 1, 2)
    return t.flatten(1) if like.dim() == 2 else t


def relative(a, b):
    """max |a - b| / max |b| (max |a - b| when b is zero)."""
    scale = float(b.abs().max()) if b.numel() else 0.0
    diff = float((a - b).abs().max()) if b.numel() else 0.0
    return diff / scale if scale > 0 else diff


def check(case):
    failures = []
    notes = []
    expect = json.load(open(os.path.join(case, "expect.json")))
    m = load_module(os.path.join(case, "model.py"), "exported_" + os.path.basename(case).replace("-", "_"))

    # Parameter count.
    model = m.Model()
    count = sum(p.numel() for p in model.parameters())
    if count != expect["params"] or m.PARAMETERS != expect["params"]:
        failures.append(f"parameters: module {count}, PARAMETERS {m.PARAMETERS}, dsl check {expect['params']}")
    if len(model.state_dict()) != len(m.DSL_NAMES) or set(model.state_dict()) != {k for k, *_ in m.DSL_NAMES}:
        failures.append("state_dict keys differ from DSL_NAMES")
    if len({n for _, n, *_ in m.DSL_NAMES}) != len(m.DSL_NAMES):
        failures.append("DSL_NAMES maps two keys to one dsl name")
    notes.append(f"{count} parameters")

    # Initialisation: PyTorch's generator with dsl's distributions, and dsl's own for a seed.
    state = m.dsl_tensors(model)
    for _, name, layout, kind, shape in m.DSL_NAMES:
        t = state[name]
        if layout == "vector":
            one = name.endswith(".running_var") or name.endswith(".weight")
            start = m.DSL_INITIAL_BIAS.get(name, 1.0 if one else 0.0)
            if not bool((t == start).all()):
                failures.append(f"Model(): {name} does not start at {start}")
        elif t.numel() >= 400:
            std = math.sqrt(2.0 / (shape[0] * shape[1] * max(shape[2], shape[3]))) if layout == "conv" else math.sqrt(1.0 / shape[0])
            if abs(float(t.std()) / std - 1) > 0.15:
                failures.append(f"Model(): {name} has standard deviation {float(t.std()):.4g}, dsl's is {std:.4g}")
    init = load_file(os.path.join(case, "init.safetensors"))
    seeded = m.dsl_tensors(m.Model(seed=expect["seed"]))
    worst = max((relative(seeded[n], init[n]) for n in init), default=0.0)
    if set(seeded) != set(init) or worst > 1e-6:
        failures.append(f"Model(seed={expect['seed']}) differs from the engine's initialisation by {worst:.3g}")
    notes.append(f"init {worst:.1e}")

    # Inference.
    checkpoint = m.load_dsl_checkpoint(model, os.path.join(case, "weights.safetensors"))
    if checkpoint.network != expect["network"]:
        failures.append(f"checkpoint network {checkpoint.network}")
    io = load_file(os.path.join(case, "io.safetensors"))
    model.eval()
    with torch.no_grad():
        logits = model(io["input"].permute(0, 3, 1, 2).contiguous())
    reference = nhwc_to_output(io["logits"], logits)
    if tuple(logits.shape) != tuple(reference.shape):
        failures.append(f"output shape {tuple(logits.shape)}, engine {tuple(reference.shape)}")
        return failures, "; ".join(notes)
    error = relative(logits, reference)
    if error > 1e-4:
        failures.append(f"inference: max |difference| is {error:.3g} of the largest output (tolerance 1e-4)")
    notes.append(f"forward {error:.1e}")

    # dsl's optimizer: two steps with a given gradient (exact arithmetic of the same formulas).
    parameters = dict(model.named_parameters())
    entries = [(key, name, layout, shape) for key, name, layout, kind, shape in m.DSL_NAMES if kind == "parameter"]
    sgd = m.make_optimizer(model, expect["sgd_lr"], momentum=expect["momentum"], weight_decay=expect["weight_decay"], nesterov=expect["nesterov"])
    gradient, offset = io["sgd.gradient"], 0
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    for key, name, layout, shape in entries:
        count = math.prod(shape)
        parameters[key].grad = m._from_dsl(gradient[offset:offset + count].reshape(shape), layout)
        offset += count
    sgd.step()
    sgd.step()
    flat = torch.cat([m.dsl_tensors(model)[name].flatten() for _, name, _, _ in entries]) if entries else torch.zeros(0)
    sgd_error = max(relative(flat, io["sgd.after"]), relative(m.dsl_velocity(sgd, model), io["sgd.velocity"]))
    if sgd_error > 1e-6:
        failures.append(f"SGD with a given gradient: weights or velocity differ by {sgd_error:.3g} (tolerance 1e-6)")
    notes.append(f"sgd {sgd_error:.1e}")
    with torch.no_grad():
        model.load_state_dict(saved)

    # One training step: dropout off, the same batch, SGD as dsl's.
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    optimizer = m.make_optimizer(model, expect["lr"], momentum=expect["momentum"], weight_decay=expect["weight_decay"],
                                 nesterov=expect["nesterov"])
    before = m.dsl_tensors(model)
    out = model(io["step.input"].permute(0, 3, 1, 2).contiguous())
    loss = m.dsl_loss(out, io["step.labels"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    loss, engine_loss = float(loss.detach()), float(io["step.loss"])
    if abs(loss - engine_loss) > 1e-4 * max(1.0, abs(engine_loss)):
        failures.append(f"step: loss {loss:.7g}, engine {engine_loss:.7g}")
    after = load_file(os.path.join(case, "after.safetensors"))
    mine = m.dsl_tensors(model)
    weights_error, worst_name = 0.0, ""
    for name, value in mine.items():
        e = relative(value, after[name])
        if e > weights_error:
            weights_error, worst_name = e, name
    if weights_error > 1e-4:
        failures.append(f"step: weights differ by {weights_error:.3g} of the tensor's largest value ({worst_name}; tolerance 1e-4)")
    # Each parameter's update against its own largest update, floored at 10% of the largest
    # update of any parameter: a tensor whose exact gradient is zero (a bias before batch norm)
    # holds only rounding, and a small gradient computed from large terms keeps the rounding of
    # the terms (the engine's Winograd weight gradient of a PyramidNet-164 stage-3 convolution,
    # 1% of the largest update, is 24% off float64, PyTorch's 1.3%). Float32 gradients of deep
    # networks differ by up to a few % from float64 (ReLU and max-pooling decisions within
    # rounding of a tie, batch norm's cancellations), so 10% separates rounding from a
    # different computation (a wrong padding, layout or decay is off by 100%).
    names = [name for _, name, _, _ in entries]
    scale = max((float((after[n] - before[n]).abs().max()) for n in names), default=0.0)
    update_error, update_name = 0.0, ""
    for n in names:
        engine_update = after[n] - before[n]
        e = float(((mine[n] - before[n]) - engine_update).abs().max()) / max(float(engine_update.abs().max()), 0.1 * scale, 1e-30)
        if e > update_error:
            update_error, update_name = e, n
    if update_error > 0.1:
        failures.append(f"step: the update of {update_name} differs by {update_error:.3g} of its largest value (tolerance 0.1)")
    velocity_error = relative(m.dsl_velocity(optimizer, model), after["optimizer.velocity"])
    if velocity_error > 0.1:
        failures.append(f"step: velocity differs by {velocity_error:.3g} of its largest value (tolerance 0.1)")
    notes.append(f"step: loss {loss:.5f}, weights {weights_error:.1e}, updates {update_error:.1e}")
    notes.append(f"lr {expect['lr']:.2g}")
    return failures, "; ".join(notes)


def main():
    ok = True
    for case in sys.argv[1:]:
        try:
            failures, summary = check(case)
        except Exception as error:  # a crash of the module is a failure of the case
            import traceback
            failures, summary = [f"{type(error).__name__}: {error}\n{traceback.format_exc()}"], ""
        ok = ok and not failures
        print(json.dumps({"case": os.path.basename(case), "ok": not failures, "failures": failures, "summary": summary}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
