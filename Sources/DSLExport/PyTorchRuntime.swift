// The fixed Python of every exported module file: the layer classes whose semantics are dsl's
// engine's (Ops/*.swift), and the functions that move weights, optimizer state and
// preprocessing between PyTorch and dsl's checkpoints (Checkpoint.swift, Safetensors.swift,
// Preprocessing.swift). PyTorchExport.swift puts the network's own class between the two parts.

let pyTorchModuleImports = #"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

"""#

let pyTorchLayerClasses = #"""


def activation(x, act, slope=0.0):
    """dsl's activations, PyTorch's definitions: "relu" is max(x, 0), "leaky" x if x > 0 else
    slope * x, "gelu" the exact (erf) GELU of nn.GELU(), "silu" x * sigmoid(x), "relu6"
    min(max(x, 0), 6), "hardswish" x * relu6(x + 3) / 6, "hardsigmoid" relu6(x + 3) / 6,
    "sigmoid", "tanh"; None the identity."""
    if act == "relu":
        return F.relu(x)
    if act == "leaky":
        return F.leaky_relu(x, slope)
    if act == "gelu":
        return F.gelu(x)
    if act == "silu":
        return F.silu(x)
    if act == "relu6":
        return F.relu6(x)
    if act == "hardswish":
        return F.hardswish(x)
    if act == "hardsigmoid":
        return F.hardsigmoid(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    if act == "tanh":
        return torch.tanh(x)
    assert act is None, act
    return x


class BatchNorm(nn.BatchNorm2d):
    """dsl's batch normalisation: per channel over (N, H, W), eps 1e-5 and momentum 0.1 (PyTorch's
    defaults) unless the spec says otherwise ('bn eps=X momentum=X'). Training normalises with
    the batch mean and biased variance and moves the running statistics toward the batch mean
    and the unbiased variance; evaluation uses the running statistics. dsl keeps no batch
    counter, so there is no num_batches_tracked buffer: the state_dict holds exactly dsl's
    weight, bias, running_mean and running_var. Without a learned scale ('bn scale=off',
    scale=False) weight is a constant vector of ones (a buffer outside the state_dict), as dsl's
    engine, which has no such parameter."""

    def __init__(self, channels, eps=1e-5, momentum=0.1, scale=True):
        super().__init__(channels, eps=eps, momentum=momentum)
        self.num_batches_tracked = None
        if not scale:
            del self.weight
            self.register_buffer("weight", torch.ones(channels), persistent=False)

    def reset_running_stats(self):
        self.running_mean.zero_()
        self.running_var.fill_(1)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        # As version 2 of BatchNorm's state; older versions would get a num_batches_tracked entry.
        super()._load_from_state_dict(state_dict, prefix, dict(local_metadata, version=2), *args, **kwargs)


class Conv(nn.Conv2d):
    """dsl's conv: a K x K (or KH x KW) kernel, a stride, zero padding, dilation and groups as
    nn.Conv2d's, a bias unless bias=False; then batch norm when bn=True (the child 'bn'), then
    the activation. Padding that differs between top and bottom or left and right is
    pre_pad=(left, right, top, bottom), applied with F.pad before an unpadded convolution.
    weight is (OC, IC/G, KH, KW), dsl's (KH, KW, IC/G, OC) permuted; output channel oc belongs
    to group oc // (OC/G). Initialisation as dsl: weight N(0, 2 / (KH*KW*max(IC/G, OC)))
    (Kaiming normal over the larger fan), bias 0."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, padding=0, bias=True, bn=False, act=None, slope=0.0,
                 dilation=1, groups=1, pre_pad=None, bn_eps=1e-5, bn_momentum=0.1, bn_scale=True):
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.pre_pad = pre_pad
        self.bn = BatchNorm(out_channels, eps=bn_eps, momentum=bn_momentum, scale=bn_scale) if bn else None
        self.act = act
        self.slope = slope

    def reset_parameters(self):
        kh, kw = self.kernel_size
        fan = kh * kw * max(self.in_channels // self.groups, self.out_channels)
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / fan))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x):
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad)
        x = self._conv_forward(x, self.weight, self.bias)
        if self.bn is not None:
            x = self.bn(x)
        return activation(x, self.act, self.slope)

    def extra_repr(self):
        return (super().extra_repr() + (f", pre_pad={self.pre_pad}" if self.pre_pad is not None else "")
                + (f", act={self.act}" if self.act else "") + (f", slope={self.slope}" if self.act == "leaky" else ""))


class Linear(nn.Linear):
    """dsl's fc: flattens its (N, C, H, W) input in dsl's (h, w, c) order (NHWC), computes
    x W^T + b and the activation, and returns (N, OUT, 1, 1). weight is (OUT, H*W*C), dsl's
    (H*W*C, OUT) transposed. Initialisation as dsl: weight N(0, 1 / (H*W*C)), bias 0."""

    def __init__(self, in_shape, out_features, bias=True, act=None, slope=0.0):
        c, h, w = in_shape
        super().__init__(c * h * w, out_features, bias=bias)
        self.in_shape = (c, h, w)
        self.act = act
        self.slope = slope

    def reset_parameters(self):
        nn.init.normal_(self.weight, 0.0, math.sqrt(1.0 / self.in_features))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x):
        x = x.permute(0, 2, 3, 1).flatten(1)
        x = activation(F.linear(x, self.weight, self.bias), self.act, self.slope)
        return x[:, :, None, None]

    def extra_repr(self):
        return super().extra_repr() + f", in_shape={self.in_shape}" + (f", act={self.act}" if self.act else "")


class Block(nn.Module):
    """A dsl module instance: an inception module, a pyramid, one of its stages or units, or a
    block call. It groups the layers it holds (its attributes); the network's forward runs them."""

    def __init__(self, kind, summary):
        super().__init__()
        self.dsl_kind = kind
        self.dsl_summary = summary

    def extra_repr(self):
        return f"{self.dsl_kind}: {self.dsl_summary}"


def add_padded(*inputs):
    """dsl's add: the sum of the inputs in order, an input with fewer channels zero-padded to the
    widest (its values fill the first channels)."""
    channels = max(x.shape[1] for x in inputs)
    total = None
    for x in inputs:
        if x.shape[1] < channels:
            x = F.pad(x, (0, 0, 0, 0, 0, channels - x.shape[1]))
        total = x if total is None else total + x
    return total

"""#

let pyTorchModuleFunctions = #"""


class DSLCheckpointError(ValueError):
    """A dsl checkpoint that cannot be used: unreadable, damaged, or of another network."""


def dsl_loss(logits, labels):
    """dsl's loss: softmax cross-entropy from the logits, the mean over the batch and, for an
    output map larger than 1x1, over its pixels (each pixel against its image's label)."""
    if logits.dim() == 4:
        n, _, h, w = logits.shape
        return F.cross_entropy(logits, labels.view(n, 1, 1).expand(n, h, w))
    return F.cross_entropy(logits, labels)


def dsl_predict(logits):
    """Each image's predicted class as dsl computes it: the first argmax of its softmax
    probabilities averaged over the output's pixels (computed in float64)."""
    probabilities = F.softmax(logits.double(), 1)
    if probabilities.dim() == 4:
        probabilities = probabilities.mean((2, 3))
    return probabilities.argmax(1)


def unwrap(model):
    """The network inside DistributedDataParallel or DataParallel wrappers."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def _to_dsl(tensor, layout):
    if layout == "conv":
        return tensor.permute(2, 3, 1, 0).contiguous()
    if layout == "linear":
        return tensor.t().contiguous()
    return tensor.contiguous()


def _from_dsl(tensor, layout):
    if layout == "conv":
        return tensor.permute(3, 2, 0, 1).contiguous()
    if layout == "linear":
        return tensor.t().contiguous()
    return tensor.contiguous()


def dsl_tensors(model):
    """The model's parameters and batch-norm statistics under dsl's names, in dsl's layouts
    (float32, on the CPU)."""
    state = unwrap(model).state_dict()
    return {name: _to_dsl(state[key].detach().to("cpu", torch.float32, copy=True), layout) for key, name, layout, _, _ in DSL_NAMES}


def load_dsl_tensors(model, tensors, file="weights"):
    """Sets the model's parameters and statistics from tensors under dsl's names and layouts.
    Every tensor of the network must be there, float32, of dsl's shape and finite; a tensor the
    network does not have (other than dsl's optimizer., preprocess. and train. entries) is an
    error too. Errors name `file` and the tensor."""
    state = {}
    for key, name, layout, kind, shape in DSL_NAMES:
        if name not in tensors:
            raise DSLCheckpointError(f"{file}: no tensor named '{name}' (the {kind} {key} of this network)")
        tensor = tensors[name]
        if tensor.dtype != torch.float32:
            raise DSLCheckpointError(f"{file}: tensor '{name}' is {tensor.dtype}, expected float32")
        if tuple(tensor.shape) != tuple(shape):
            raise DSLCheckpointError(f"{file}: tensor '{name}' has shape {list(tensor.shape)}, expected {list(shape)}")
        if not bool(torch.isfinite(tensor).all()):
            raise DSLCheckpointError(f"{file}: tensor '{name}' holds values that are not finite")
        state[key] = _from_dsl(tensor, layout)
    known = {name for _, name, _, _, _ in DSL_NAMES}
    extra = sorted(n for n in tensors if n not in known and not n.startswith(("optimizer.", "preprocess.", "train.")))
    if extra:
        raise DSLCheckpointError(f"{file}: tensor '{extra[0]}' is not a parameter or buffer of this network")
    with torch.no_grad():
        unwrap(model).load_state_dict(state, strict=True)


_MASK64 = (1 << 64) - 1


def _int64(value):
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(z, bits):
    # A logical right shift of 64-bit patterns held in int64 tensors.
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix_finalize(z):
    z = (z ^ _shift_right(z, 30)) * _int64(0xBF58476D1CE4E5B9)
    z = (z ^ _shift_right(z, 27)) * _int64(0x94D049BB133111EB)
    return z ^ _shift_right(z, 31)


def _engine_normals(seed, count):
    # dsl's EngineRandom(seed): output k = 1, 2, ... is finalize(seed + (k + 1) * 0x9E3779B97F4A7C15)
    # (mod 2^64); uniforms (bits >> 11) * 2^-53; normals by Box-Muller in pairs, cos first.
    pairs = (count + 1) // 2
    k = torch.arange(1, 2 * pairs + 1, dtype=torch.int64)
    z = _splitmix_finalize(k * _int64(0x9E3779B97F4A7C15) + _int64(seed + 0x9E3779B97F4A7C15))
    uniform = _shift_right(z, 11).to(torch.float64) * 2.0 ** -53
    radius = torch.sqrt(-2.0 * torch.log(1.0 - uniform[0::2]))
    angle = 2.0 * math.pi * uniform[1::2]
    return torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), 1).flatten()[:count]


def _mix(value):
    # EngineRandom.mix on a Python integer: finalize(value + 0x9E3779B97F4A7C15) mod 2^64.
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _engine_uniforms(seed, count):
    # The uniforms of dsl's EngineRandom(seed): output k = 1, 2, ... is
    # finalize(seed + (k + 1) * 0x9E3779B97F4A7C15), uniform (bits >> 11) * 2^-53 (float64).
    k = torch.arange(1, count + 1, dtype=torch.int64)
    z = _splitmix_finalize(k * _int64(0x9E3779B97F4A7C15) + _int64(seed + 0x9E3779B97F4A7C15))
    return _shift_right(z, 11).to(torch.float64) * 2.0 ** -53


def dsl_initialize(model, seed):
    """Sets every parameter and statistic to what dsl's engine starts from with this seed ('dsl
    train --seed S', 'dsl run --seed S'): conv and fc weights from one stream of normals in dsl's
    parameter order and layouts (std sqrt(2 / (KH*KW*max(IC/G, OC))) and sqrt(1 / IN)), biases 0
    (those in DSL_INITIAL_BIAS: their value), batch norm
    scale 1, shift 0, running mean 0 and variance 1. The tensors of DSL_INIT ('init=torch',
    'init=dirac', 'init=whiten') instead: U(-bound, bound) from a second stream,
    EngineRandom(mix(seed ^ DSL_UNIFORM_STREAM_KEY)), in dsl's order; Dirac (filter o < min(IC, OC)
    is 1 at the kernel centre (KH // 2, KW // 2) of input channel o, 0 elsewhere; the other
    filters uniform); or zeros."""
    normal_count = sum(math.prod(shape) for _, name, layout, _, shape in DSL_NAMES if layout != "vector" and name not in DSL_INIT)
    normals = _engine_normals(seed, normal_count)
    uniform_count = sum(math.prod(shape) for _, name, _, _, shape in DSL_NAMES if DSL_INIT.get(name, ("",))[0] in ("uniform", "dirac"))
    uniforms = _engine_uniforms(_mix(seed ^ DSL_UNIFORM_STREAM_KEY), uniform_count)
    tensors, offset, uniform_offset = {}, 0, 0
    for _, name, layout, _, shape in DSL_NAMES:
        count = math.prod(shape)
        if name in DSL_INIT:
            kind, bound = DSL_INIT[name]
            values = torch.zeros(count, dtype=torch.float64)
            if kind == "uniform":
                values = (2 * uniforms[uniform_offset:uniform_offset + count] - 1) * bound
                uniform_offset += count
            elif kind == "dirac":
                kh, kw, ic, oc = shape
                identity = min(ic, oc)
                drawn = torch.arange(count) % oc >= identity
                n = int(drawn.sum())
                values[drawn] = (2 * uniforms[uniform_offset:uniform_offset + n] - 1) * bound
                uniform_offset += n
                for o in range(identity):
                    values[((kh // 2 * kw + kw // 2) * ic + o) * oc + o] = 1
            tensors[name] = values.to(torch.float32).reshape(shape)
            continue
        if layout == "vector":
            one = name.endswith(".running_var") or name.endswith(".weight")
            tensors[name] = torch.full(shape, DSL_INITIAL_BIAS.get(name, 1.0 if one else 0.0))
            continue
        std = math.sqrt(2.0 / (shape[0] * shape[1] * max(shape[2], shape[3]))) if layout == "conv" else math.sqrt(1.0 / shape[0])
        tensors[name] = (normals[offset:offset + count] * std).to(torch.float32).reshape(shape)
        offset += count
    load_dsl_tensors(model, tensors, f"dsl_initialize(seed={seed})")


def dsl_freeze(model):
    """Turns off requires_grad of DSL_FROZEN's parameters ('freeze' in the spec: never trained,
    so no optimizer moves them). DSL_TRAIN_EPOCHS lists the parameters a training loop should
    stop updating after their first N epochs."""
    parameters = dict(unwrap(model).named_parameters())
    for key, name, _, kind, _ in DSL_NAMES:
        if kind == "parameter" and name in DSL_FROZEN:
            parameters[key].requires_grad_(False)


def dsl_initial_biases(model):
    """Sets the biases of DSL_INITIAL_BIAS (the ReLU classifier's, 1) to dsl's starting value."""
    state = unwrap(model).state_dict()
    with torch.no_grad():
        for key, name, _, _, _ in DSL_NAMES:
            if name in DSL_INITIAL_BIAS:
                state[key].fill_(DSL_INITIAL_BIAS[name])


def make_optimizer(model, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    """SGD as dsl's optimizer: momentum (Nesterov optional; the velocity v <- momentum * v + d,
    d = gradient + weight_decay * w, as torch.optim.SGD) with weight decay on conv and fc weights
    only, not on biases or batch norm."""
    parameters = dict(unwrap(model).named_parameters())
    decay = [parameters[key] for key, _, layout, kind, _ in DSL_NAMES if kind == "parameter" and layout != "vector"]
    exempt = [parameters[key] for key, _, layout, kind, _ in DSL_NAMES if kind == "parameter" and layout == "vector"]
    groups = [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}) if g["params"]]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)


def dsl_velocity(optimizer, model):
    """The optimizer's momentum buffers as dsl's 'optimizer.velocity': one float32 vector, the
    parameters in dsl's order and layouts (zeros before the first step)."""
    parameters = dict(unwrap(model).named_parameters())
    parts = []
    for key, _, layout, kind, _ in DSL_NAMES:
        if kind != "parameter":
            continue
        p = parameters[key]
        buffer = optimizer.state.get(p, {}).get("momentum_buffer")
        v = torch.zeros(p.shape) if buffer is None else buffer.detach().to("cpu", torch.float32)
        parts.append(_to_dsl(v, layout).flatten())
    return torch.cat(parts) if parts else torch.zeros(0)


def set_dsl_velocity(optimizer, model, velocity, file="checkpoint"):
    """Sets the optimizer's momentum buffers from dsl's 'optimizer.velocity' vector."""
    parameters = dict(unwrap(model).named_parameters())
    expected = sum(math.prod(shape) for _, _, _, kind, shape in DSL_NAMES if kind == "parameter")
    if velocity.dim() != 1 or velocity.numel() != expected:
        raise DSLCheckpointError(f"{file}: tensor 'optimizer.velocity' has shape {list(velocity.shape)}, the network has {expected} parameters")
    offset = 0
    for key, _, layout, kind, shape in DSL_NAMES:
        if kind != "parameter":
            continue
        count = math.prod(shape)
        p = parameters[key]
        value = _from_dsl(velocity[offset:offset + count].reshape(shape).to(torch.float32), layout)
        optimizer.state[p]["momentum_buffer"] = value.to(p.device).clone()
        offset += count


def _float_text(value):
    # The shortest text that reads back as the same float32 (as dsl writes its Float fields).
    target = torch.tensor(float(value), dtype=torch.float32).item()
    for digits in range(1, 10):
        text = f"{target:.{digits}g}"
        if torch.tensor(float(text), dtype=torch.float32).item() == target:
            return text
    return repr(target)


class Preprocessor:
    """dsl's input transform (Preprocessing.swift), fitted on the training set and stored in
    checkpoints ('preprocess.*'). apply() takes raw pixels (N, H, W, C), 0..255 as dsl's loaders
    give them, and returns the network's input (N, C, H, W) float32:
      none         the pixels unchanged;
      standardize  (x - mean_c) * inv_std_c per channel;
      gcn-zca      per image, subtract its mean and divide by sqrt(sqrt_bias + sum x^2) / scale
                   (with use_std, by sqrt(sqrt_bias + var(x, ddof=1)) / scale; a divisor below
                   1e-8 becomes 1), then y = (x - mean) W with the image flattened in (h, w, c)
                   order and W the symmetric ZCA matrix."""

    def __init__(self, method, shape, mean=None, inv_std=None, zca=None, gcn_scale=55.0, gcn_sqrt_bias=0.0,
                 gcn_use_std=False, zca_epsilon=0.1):
        if method not in ("none", "standardize", "gcn-zca"):
            raise ValueError(f"unknown preprocessing method '{method}' (none, standardize or gcn-zca)")
        self.method = method
        self.shape = tuple(int(d) for d in shape)  # (H, W, C)
        self.mean, self.inv_std, self.zca = mean, inv_std, zca
        self.gcn_scale, self.gcn_sqrt_bias, self.gcn_use_std, self.zca_epsilon = gcn_scale, gcn_sqrt_bias, gcn_use_std, zca_epsilon

    @classmethod
    def from_checkpoint(cls, metadata, tensors, file="checkpoint"):
        """The preprocessing stored in a checkpoint's metadata and tensors (None when it has none)."""
        method = metadata.get("preprocess.method")
        if method is None:
            return None
        try:
            shape = tuple(int(d) for d in metadata["preprocess.shape"].split(","))
            if method == "standardize":
                return cls(method, shape, mean=tensors["preprocess.mean"], inv_std=tensors["preprocess.inv_std"])
            if method == "gcn-zca":
                return cls(method, shape, mean=tensors["preprocess.mean"], zca=tensors["preprocess.zca"],
                           gcn_scale=float(metadata["preprocess.gcn_scale"]), gcn_sqrt_bias=float(metadata["preprocess.gcn_sqrt_bias"]),
                           gcn_use_std=metadata["preprocess.gcn_use_std"] == "true", zca_epsilon=float(metadata["preprocess.zca_epsilon"]))
            return cls(method, shape)
        except (KeyError, ValueError) as error:
            raise DSLCheckpointError(f"{file}: the preprocessing (preprocess.*) is incomplete or damaged: {error}") from None

    def checkpoint_tensors(self):
        if self.method == "standardize":
            return {"preprocess.mean": self.mean.float().contiguous(), "preprocess.inv_std": self.inv_std.float().contiguous()}
        if self.method == "gcn-zca":
            return {"preprocess.mean": self.mean.float().contiguous(), "preprocess.zca": self.zca.float().contiguous()}
        return {}

    def checkpoint_metadata(self):
        metadata = {"preprocess.method": self.method, "preprocess.shape": ",".join(str(d) for d in self.shape)}
        if self.method == "gcn-zca":
            metadata.update({"preprocess.gcn_scale": _float_text(self.gcn_scale), "preprocess.gcn_sqrt_bias": _float_text(self.gcn_sqrt_bias),
                             "preprocess.gcn_use_std": "true" if self.gcn_use_std else "false",
                             "preprocess.zca_epsilon": _float_text(self.zca_epsilon)})
        return metadata

    def contrast_normalize(self, x):
        """Global contrast normalisation of flattened images (N, D) float32, as dsl computes it."""
        d = x.shape[1]
        image_mean = (x.double().sum(1) / d).float()
        x = x - image_mean[:, None]
        squares = (x * x).double().sum(1)
        spread = squares / max(1, d - 1) if self.gcn_use_std else squares
        divisor = torch.sqrt(self.gcn_sqrt_bias + spread).float() / torch.tensor(self.gcn_scale, dtype=torch.float32)
        divisor = torch.where(divisor < 1e-8, torch.ones_like(divisor), divisor)
        return x * (1.0 / divisor)[:, None]

    def apply(self, images, chunk=1024):
        """Raw pixels (N, H, W, C) -> network input (N, C, H, W), float32."""
        x = images.to(torch.float32)
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"images are {tuple(x.shape[1:])} (H, W, C); the preprocessing was fitted for {self.shape}")
        if self.method == "standardize":
            x = (x - self.mean.to(x.device)) * self.inv_std.to(x.device)
        elif self.method == "gcn-zca":
            n = x.shape[0]
            flat = x.reshape(n, -1)
            out = torch.empty_like(flat)
            mean, zca = self.mean.to(x.device), self.zca.to(x.device)
            for first in range(0, n, chunk):
                block = self.contrast_normalize(flat[first:first + chunk]) - mean
                out[first:first + chunk] = block @ zca
            x = out.reshape(x.shape)
        return x.permute(0, 3, 1, 2).contiguous()


class DSLCheckpoint:
    """A dsl checkpoint as read_dsl_checkpoint reads it: tensors (the model's, under dsl's names
    and layouts), extras ('optimizer.velocity', 'preprocess.*', 'train.*') and metadata
    ('network', 'spec_hash', 'format', 'recipe.*', 'data.*', 'preprocess.*')."""

    def __init__(self, path, tensors, extras, metadata):
        self.path, self.tensors, self.extras, self.metadata = path, tensors, extras, metadata

    @property
    def network(self):
        return self.metadata.get("network")

    @property
    def preprocessor(self):
        return Preprocessor.from_checkpoint(self.metadata, self.extras, self.path)

    @property
    def recipe(self):
        """The training recipe ('recipe.*' metadata without the prefix): flag values as text."""
        return {k[len("recipe."):]: v for k, v in self.metadata.items() if k.startswith("recipe.")}

    @property
    def velocity(self):
        return self.extras.get("optimizer.velocity")

    def integer(self, name, default=0):
        t = self.extras.get(name)
        return default if t is None else int(t.item())

    def real(self, name, default=0.0):
        t = self.extras.get(name)
        return default if t is None else float(t.item())


def read_dsl_checkpoint(path):
    """Reads a dsl checkpoint (.safetensors) without checking which network it belongs to."""
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors, extras = {}, {}
            for name in f.keys():
                (extras if name.startswith(("optimizer.", "preprocess.", "train.")) else tensors)[name] = f.get_tensor(name)
    except (OSError, ValueError, RuntimeError) as error:
        raise DSLCheckpointError(f"{path}: cannot read it as a safetensors checkpoint: {error}") from None
    except Exception as error:  # safetensors' own SafetensorError
        raise DSLCheckpointError(f"{path}: cannot read it as a safetensors checkpoint: {error}") from None
    return DSLCheckpoint(path, tensors, extras, metadata)


def check_network(checkpoint):
    """Refuses a checkpoint of another network (its spec hash differs from SPEC_HASH)."""
    spec_hash = checkpoint.metadata.get("spec_hash")
    if spec_hash is None:
        raise DSLCheckpointError(f"{checkpoint.path}: not a dsl checkpoint (no spec_hash in its metadata)")
    if spec_hash != SPEC_HASH:
        raise DSLCheckpointError(f"{checkpoint.path}: the checkpoint is of a different network ({checkpoint.network or 'unknown'}, "
                                 f"spec hash {spec_hash}); this module is {NETWORK}, spec hash {SPEC_HASH}")


def load_dsl_checkpoint(model, path=None):
    """Loads a dsl checkpoint's weights and batch-norm statistics into the model (refusing one of
    another network, or a damaged one) and returns it as a DSLCheckpoint (its preprocessor,
    recipe, velocity, ... for what comes next). `path` defaults to WEIGHTS."""
    path = path if path is not None else WEIGHTS
    if path is None:
        raise DSLCheckpointError("no checkpoint given (and WEIGHTS is None: export with 'dsl export --weights CKPT')")
    checkpoint = read_dsl_checkpoint(path)
    check_network(checkpoint)
    load_dsl_tensors(model, checkpoint.tensors, path)
    return checkpoint


def save_dsl_checkpoint(model, path, like=None, optimizer=None, preprocessor=None, recipe=None, data=None, epoch=None,
                        step=None, elapsed_s=None, epoch_loss_sum=None, epoch_correct=None, metadata=None):
    """Writes the model in dsl's checkpoint format (safetensors, atomically: a temporary file
    next to `path`, then renamed), for 'dsl eval' and the other dsl commands. What is not the
    model comes from the arguments, else from `like` (a DSLCheckpoint, e.g. the one the model was
    loaded from): the preprocessing (`preprocessor`; dsl eval applies it), the recipe (`recipe`,
    dsl train's flags as {name: text} without the 'recipe.' prefix), the data fingerprint
    (`data`, {name: text} without 'data.'), the momentum (`optimizer`'s buffers; zeros when
    neither gives one), the position (`epoch`, `step`), the training time and the epoch's
    running sums. With a recipe, a data fingerprint and a preprocessing the file is a
    dsl-checkpoint-2 that 'dsl train --resume' continues; otherwise a dsl-checkpoint-1, which
    dsl eval reads. The metadata names the network and its spec hash."""
    from safetensors.torch import save_file
    tensors = dsl_tensors(model)
    meta = dict(like.metadata) if like is not None else {}
    extras = dict(like.extras) if like is not None else {}

    def replace(prefix, values):
        for key in [k for k in meta if k.startswith(prefix)]:
            del meta[key]
        meta.update({prefix + k: str(v) for k, v in values.items()})

    if preprocessor is not None:
        for key in [k for k in extras if k.startswith("preprocess.")]:
            del extras[key]
        for key in [k for k in meta if k.startswith("preprocess.")]:
            del meta[key]
        extras.update(preprocessor.checkpoint_tensors())
        meta.update(preprocessor.checkpoint_metadata())
    if recipe is not None:
        replace("recipe.", recipe)
    if data is not None:
        replace("data.", data)
    if optimizer is not None:
        extras["optimizer.velocity"] = dsl_velocity(optimizer, model)
    for name, value, dtype in (("train.epoch", epoch, torch.int64), ("train.step", step, torch.int64),
                               ("train.elapsed_s", elapsed_s, torch.float64), ("train.epoch_loss_sum", epoch_loss_sum, torch.float64),
                               ("train.epoch_correct", epoch_correct, torch.int64)):
        if value is not None or name not in extras:
            extras[name] = torch.tensor(value if value is not None else 0, dtype=dtype)
    current = all(any(k.startswith(p) for k in meta) for p in ("recipe.", "data.")) and "preprocess.method" in meta
    if current and "optimizer.velocity" not in extras:
        extras["optimizer.velocity"] = torch.zeros(sum(math.prod(s) for _, _, _, kind, s in DSL_NAMES if kind == "parameter"))
    meta["format"] = "dsl-checkpoint-2" if current else "dsl-checkpoint-1"
    meta.update(metadata or {})
    meta["network"], meta["spec_hash"], meta["layers"] = NETWORK, SPEC_HASH, SPEC_LAYERS
    everything = {**tensors, **{k: v.contiguous() for k, v in extras.items()}}
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.tmp-{os.getpid()}")
    try:
        save_file(everything, temporary, metadata=meta)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise

"""#
