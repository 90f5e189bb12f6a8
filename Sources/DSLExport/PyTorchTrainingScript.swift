// The trainer of `dsl export --to pytorch-train`: appended to the module file, it reproduces
// `dsl train` (TrainCommand.swift, Trainer.swift, Optimizer.swift, Schedules.swift,
// Augmentation.swift, Preprocessing.swift, Datasets.swift, Metrics.swift, Recipe.swift) with
// DistributedDataParallel under torchrun: the same flags, dsl's order of the images and its
// augmentation draws (SplitMix64 from the seed, the epoch and the step, so one process sees
// exactly dsl's batches, and P processes share each of them), the same schedules, weight decay
// on weights only, the last partial batch dropped, checkpoints in dsl's format and the same
// metrics.jsonl lines. Batch norm normalises over each process's share of the batch (PyTorch's
// DistributedDataParallel semantics; SyncBatchNorm needs GPUs).

let pyTorchTrainingCode = #"""


# ----------------------------------------------------------------------------------------------
# Training: dsl train's recipe with DistributedDataParallel. Run with
#   torchrun --nproc_per_node=2 THIS_FILE --data DIR [dsl train's flags]
# or with plain python for one process. --batch is the global batch over all processes, as in
# dsl train: --batch 64 on 2 processes is 32 images per process and the same 64-image steps.

import argparse
import fcntl
import json
import signal
import sys
import time

import torch.distributed as dist


class TrainingFailure(Exception):
    """An error in the data, a checkpoint or the run directory: printed on one line, exit 1."""


class UsageFailure(Exception):
    """A command-line mistake: printed with the usage hint, exit 2."""


def _f32(value):
    return torch.tensor(float(value), dtype=torch.float32).item()


# dsl's random choices (Random.swift, Augmentation.swift, Trainer.swift): SplitMix64 on Python ints.

_GOLDEN = 0x9E3779B97F4A7C15


def _finalize(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & _MASK64

    def next(self):
        self.state = (self.state + _GOLDEN) & _MASK64
        return _finalize(self.state)

    def below(self, bound):
        return ((self.next() >> 32) * bound) >> 32

    def boolean(self):
        return self.next() >> 63 == 1


def mix(a, b, c):
    return _finalize((a + _GOLDEN * ((b + 1) & _MASK64) + 0xBF58476D1CE4E5B9 * ((c + 1) & _MASK64)) & _MASK64)


def epoch_order(count, seed, epoch):
    """dsl's permutation of the training images in an epoch (EpochShuffler: Fisher-Yates)."""
    order = list(range(count))
    r = SplitMix64(seed ^ ((epoch * 0xD1B54A32D192ED03) & _MASK64))
    r.next()
    for i in range(count - 1, 0, -1):
        j = r.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def augmentation_draws(seed, epoch, step, batch, flip, padding):
    """dsl's choices for the images of global batch `step`: (flip, dy, dx) each (Augmenter)."""
    r = SplitMix64(mix(seed, epoch, step + 0xA5A5))
    draws = []
    for _ in range(batch):
        flipped = flip and r.boolean()
        dy = r.below(2 * padding + 1) - padding if padding > 0 else 0
        dx = r.below(2 * padding + 1) - padding if padding > 0 else 0
        draws.append((flipped, dy, dx))
    return draws


def augment(images, draws):
    """Applies (flip, dy, dx) to NCHW images: output pixel (y, x) shows pixel (y + dy, x + dx) of
    the (flipped) image, zero where that lies outside (dsl's zero-pad-and-crop)."""
    out = images.clone()
    h, w = images.shape[2], images.shape[3]
    for i, (flipped, dy, dx) in enumerate(draws):
        if not flipped and dy == 0 and dx == 0:
            continue
        image = images[i].flip(2) if flipped else images[i]
        shifted = torch.zeros_like(image)
        rows = max(0, h - abs(dy))
        columns = max(0, w - abs(dx))
        if rows > 0 and columns > 0:
            y0, x0 = max(0, -dy), max(0, -dx)
            shifted[:, y0:y0 + rows, x0:x0 + columns] = image[:, y0 + dy:y0 + dy + rows, x0 + dx:x0 + dx + columns]
        out[i] = shifted
    return out


class DSLOrderSampler(torch.utils.data.distributed.DistributedSampler):
    """A DistributedSampler giving this process its share of dsl's batches: the images of epoch
    e come in dsl's order (epoch_order), cut into global batches of `batch` (the last partial
    batch dropped, as dsl does), and each global batch into num_replicas equal shares, this
    process taking share `rank`. So the processes together train on exactly dsl's batches."""

    def __init__(self, count, batch, seed, num_replicas, rank):
        super().__init__(range(count), num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=True)
        self.batch, self.share, self.steps = batch, batch // num_replicas, count // batch
        self.order_seed = mix(seed, 0, 0x53485546)
        self.num_samples, self.total_size = self.steps * self.share, self.steps * batch

    def __iter__(self):
        order = epoch_order(len(self.dataset), self.order_seed, self.epoch)
        for step in range(self.steps):
            first = step * self.batch + self.rank * self.share
            yield from order[first:first + self.share]

    def __len__(self):
        return self.num_samples


# Datasets (Datasets.swift): raw pixels 0..255 as uint8 (N, H, W, C) and int64 labels.

class Dataset:
    def __init__(self, images, labels, classes):
        self.images, self.labels, self.classes = images, labels, classes

    def __len__(self):
        return self.images.shape[0]

    def prefix(self, n):
        return Dataset(self.images[:n], self.labels[:n], self.classes) if n is not None else self


_CIFAR10_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
_MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise TrainingFailure(f"{path}: {error.strerror}") from None


def _mnist_path(directory, name):
    for candidate in (name, name.replace("-idx", ".idx")):
        if os.path.isfile(os.path.join(directory, candidate)):
            return os.path.join(directory, candidate)
    return None


def detect_format(directory):
    if not os.path.isdir(directory):
        raise TrainingFailure(f"{directory}: dataset directory not found" if not os.path.exists(directory) else f"{directory}: is a file, expected a dataset directory")
    found = []
    if any(os.path.isfile(os.path.join(directory, n)) for n in _CIFAR10_TRAIN + ["test_batch.bin"]):
        found.append("cifar10")
    if any(os.path.isfile(os.path.join(directory, n)) for n in ("train.bin", "test.bin")):
        found.append("cifar100")
    if any(_mnist_path(directory, n) or os.path.isfile(os.path.join(directory, n + ".gz")) for n in _MNIST_FILES):
        found.append("mnist")
    if len(found) == 1:
        return found[0]
    if found:
        raise TrainingFailure(f"{directory}: files of several dataset formats ({', '.join(found)}); choose one with --dataset")
    raise TrainingFailure(f"{directory}: no known dataset files found (CIFAR-10 data_batch_N.bin and test_batch.bin, "
                          "CIFAR-100 train.bin and test.bin, or MNIST train-images-idx3-ubyte, ...)")


def _decode_cifar(path, label_bytes, label_offset, classes):
    data = _read(path)
    record = label_bytes + 3072
    if not data:
        raise TrainingFailure(f"{path}: file is empty, expected {record}-byte records")
    if len(data) % record:
        raise TrainingFailure(f"{path}: size {len(data)} bytes is not a multiple of the {record}-byte record (truncated?)")
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(-1, record)
    labels = raw[:, label_offset].to(torch.int64)
    bad = (labels >= classes).nonzero()
    if len(bad):
        i = int(bad[0])
        raise TrainingFailure(f"{path}: record {i} has label {int(labels[i])}, expected 0...{classes - 1}")
    images = raw[:, label_bytes:].reshape(-1, 3, 32, 32).permute(0, 2, 3, 1).contiguous()
    return images, labels


def _big_endian(data, offset):
    return int.from_bytes(data[offset:offset + 4], "big")


def _read_idx(images_path, labels_path):
    data = _read(images_path)
    if len(data) < 16 or _big_endian(data, 0) != 0x803:
        raise TrainingFailure(f"{images_path}: not an IDX image file (magic number 0x00000803 expected)")
    count, rows, columns = _big_endian(data, 4), _big_endian(data, 8), _big_endian(data, 12)
    if len(data) != 16 + count * rows * columns or rows < 1 or columns < 1:
        raise TrainingFailure(f"{images_path}: header says {count} images of {rows}x{columns} but the file has {len(data)} bytes")
    labels = _read(labels_path)
    if len(labels) < 8 or _big_endian(labels, 0) != 0x801:
        raise TrainingFailure(f"{labels_path}: not an IDX label file (magic number 0x00000801 expected)")
    if _big_endian(labels, 4) != count or len(labels) != 8 + count:
        raise TrainingFailure(f"{labels_path}: {_big_endian(labels, 4)} labels but {images_path} has {count} images")
    y = torch.frombuffer(bytearray(labels[8:]), dtype=torch.uint8).to(torch.int64)
    if len(y) and int(y.max()) >= 10:
        raise TrainingFailure(f"{labels_path}: label {int((y >= 10).nonzero()[0])} is {int(y.max())}, expected 0...9")
    x = torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(count, rows, columns, 1)
    return x, y


def load_dataset(directory, fmt, labels):
    """The training and test sets of a dataset directory, as dsl reads them."""
    if not os.path.isdir(directory):
        detect_format(directory)
    if fmt == "cifar10":
        paths = [os.path.join(directory, n) for n in _CIFAR10_TRAIN if os.path.isfile(os.path.join(directory, n))]
        if not paths:
            raise TrainingFailure(f"{directory}: no CIFAR-10 training batch found, expected at least one of data_batch_1.bin ... data_batch_5.bin")
        test_path = os.path.join(directory, "test_batch.bin")
        if not os.path.isfile(test_path):
            raise TrainingFailure(f"{test_path}: file not found (the CIFAR-10 test batch)")
        parts = [_decode_cifar(p, 1, 0, 10) for p in paths]
        train = Dataset(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), 10)
        test = Dataset(*_decode_cifar(test_path, 1, 0, 10), 10)
        return train, test
    if fmt == "cifar100":
        classes = 100 if labels == "fine" else 20
        sets = []
        for name in ("train.bin", "test.bin"):
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                raise TrainingFailure(f"{path}: file not found (CIFAR-100 needs train.bin and test.bin)")
            sets.append(Dataset(*_decode_cifar(path, 2, 1 if labels == "fine" else 0, classes), classes))
        return sets[0], sets[1]
    paths = []
    for name in _MNIST_FILES:
        path = _mnist_path(directory, name)
        if path is None:
            if os.path.isfile(os.path.join(directory, name + ".gz")):
                raise TrainingFailure(f"{os.path.join(directory, name + '.gz')}: gzip-compressed MNIST files must be decompressed first")
            raise TrainingFailure(f"{os.path.join(directory, name)}: file not found")
        paths.append(path)
    train, test = _read_idx(paths[0], paths[1]), _read_idx(paths[2], paths[3])
    if train[0].shape[1:] != test[0].shape[1:]:
        raise TrainingFailure(f"{paths[2]}: test images are {tuple(test[0].shape[1:3])} but training images are {tuple(train[0].shape[1:3])}")
    return Dataset(*train, 10), Dataset(*test, 10)


def data_hash(data):
    """dsl's fingerprint of a dataset (DataFingerprint.hash): FNV-1a over 32-bit words, the
    dimensions, every pixel's float bit pattern and every label."""
    n, h, w, c = data.images.shape
    value = 0xCBF29CE484222325
    for word in (n, h, w, c, data.classes):
        value = ((value ^ (word & 0xFFFFFFFF)) * 0x100000001B3) & _MASK64
    table = [int(torch.tensor(float(v), dtype=torch.float32).view(torch.int32).item()) & 0xFFFFFFFF for v in range(256)]
    pixels = data.images.reshape(-1)
    prime, mask = 0x100000001B3, _MASK64
    for first in range(0, pixels.numel(), 1 << 20):  # (bytes of a tolist(): iterating a storage is 20 times slower)
        for byte in bytes(pixels[first:first + (1 << 20)].tolist()):
            value = ((value ^ table[byte]) * prime) & mask
    for label in data.labels.tolist():
        value = ((value ^ (label & 0xFFFFFFFF)) * 0x100000001B3) & _MASK64
    return format(value, "x")


# Preprocessing fits (Preprocessing.swift).

def fit_standardization(images):
    """Per-channel mean and 1 / std (population; std at least 1e-6) of raw pixels, as dsl: the
    sums are exact in float64, so the result is dsl's to the last bit."""
    c = images.shape[3]
    flat = images.reshape(-1, c)
    sums = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for first in range(0, flat.shape[0], 1 << 20):
        block = flat[first:first + (1 << 20)].to(torch.float64)
        sums += block.sum(0)
        squares += (block * block).sum(0)
    n = float(max(1, flat.shape[0]))
    mean = sums / n
    variance = torch.clamp(squares / n - mean * mean, min=0)
    inv_std = 1.0 / torch.clamp(torch.sqrt(variance), min=1e-6)
    return Preprocessor("standardize", images.shape[1:], mean=mean.float(), inv_std=inv_std.float())


def fit_gcn_zca(images, epsilon, scale=55.0):
    """Global contrast normalisation, then ZCA whitening W = U diag(1 / sqrt(lambda + epsilon)) U^T
    from the covariance of the normalised training images (float64 here, float32 sums in dsl:
    the matrices agree to about 1e-6)."""
    n = images.shape[0]
    d = images[0].numel()
    if n < 2:
        raise TrainingFailure(f"ZCA: needs at least 2 training images, got {n}")
    if d > 6144:
        raise TrainingFailure(f"ZCA: images of {d} features exceed the supported 6144; use --whiten standardize")
    pre = Preprocessor("gcn-zca", images.shape[1:], gcn_scale=scale, zca_epsilon=epsilon)
    flat = images.reshape(n, d)
    sums = torch.zeros(d, dtype=torch.float64)
    for first in range(0, n, 1024):
        sums += pre.contrast_normalize(flat[first:first + 1024].float()).double().sum(0)
    mean = (sums / n).float()
    covariance = torch.zeros(d, d, dtype=torch.float64)
    for first in range(0, n, 1024):
        centered = (pre.contrast_normalize(flat[first:first + 1024].float()) - mean).double()
        covariance += centered.t() @ centered
    covariance = 0.5 * (covariance + covariance.t()) / n
    values, vectors = torch.linalg.eigh(covariance)
    factors = 1.0 / torch.sqrt(torch.clamp(values, min=0) + float(_f32(epsilon)))
    pre.mean = mean
    pre.zca = ((vectors * factors) @ vectors.t()).float()
    return pre


# The learning-rate schedule (Schedules.swift).

def parse_schedule(text, base_rate, total_epochs):
    """dsl's schedule syntax: constant, cosine[:M], step:F@E1,E2,... and warmup:W, joined by '+'.
    Returns lr(step, steps_per_epoch), each rate rounded to float32 as dsl's."""
    def fail(why):
        return UsageFailure(f"--schedule: invalid learning-rate schedule '{text}': {why}. Expected e.g. 'constant', 'cosine', "
                            "'cosine:0.0001', 'step:0.1@200,250,300', 'warmup:5+cosine'")
    if not text.strip():
        raise fail("empty")
    warmup, decay = 0.0, None
    for part in (p.strip() for p in text.strip().split("+")):
        name, colon, argument = part.partition(":")
        name = name.lower()
        if name == "warmup":
            if warmup:
                raise fail("warm-up given twice")
            try:
                warmup = float(argument)
            except ValueError:
                warmup = -1.0
            if not colon or not (warmup > 0 and math.isfinite(warmup)):
                raise fail("warmup needs a positive number of epochs, as in warmup:5")
        elif name in ("constant", "cosine", "step"):
            if decay is not None:
                raise fail("more than one decay rule")
            if name == "constant":
                if colon:
                    raise fail("constant takes no argument")
                decay = ("constant",)
            elif name == "cosine":
                minimum = 0.0
                if colon:
                    try:
                        minimum = float(argument)
                    except ValueError:
                        minimum = -1.0
                    if not minimum >= 0:
                        raise fail("cosine:M needs a minimum rate M >= 0")
                if minimum >= base_rate:
                    raise fail(f"cosine minimum must be in 0..<{base_rate} (the base rate), got {minimum}")
                decay = ("cosine", minimum)
            else:
                factor_text, at, epochs_text = argument.partition("@")
                try:
                    factor = float(factor_text)
                except ValueError:
                    factor = -1.0
                if not colon or not at or not factor > 0:
                    raise fail("step needs FACTOR@EPOCHS, as in step:0.1@200,250,300")
                epochs = []
                for item in epochs_text.split(","):
                    if not item.strip().isdigit() or int(item) <= 0:
                        raise fail(f"step epoch '{item}' is not a positive integer")
                    epochs.append(int(item))
                if any(a >= b for a, b in zip(epochs, epochs[1:])):
                    raise fail("step epochs must be positive and strictly increasing")
                decay = ("step", factor, epochs)
        else:
            raise fail(f"unknown part '{part}'")
    decay = decay or ("constant",)

    def lr(step, steps_per_epoch):
        per_epoch = float(max(1, steps_per_epoch))
        position = max(0, step) / per_epoch
        warmup_steps = warmup * per_epoch
        if warmup_steps > 0 and step < warmup_steps:
            return _f32(base_rate * (max(0, step) + 1) / math.ceil(warmup_steps))
        if decay[0] == "constant":
            return _f32(base_rate)
        if decay[0] == "step":
            passed = sum(1 for e in decay[2] if e <= int(position))
            return _f32(base_rate * decay[1] ** passed)
        span = max(1e-9, total_epochs - warmup)
        progress = min(1.0, max(0.0, (position - warmup) / span))
        return _f32(decay[1] + (base_rate - decay[1]) * 0.5 * (1 + math.cos(math.pi * progress)))
    return lr


# The command line (TrainCommand.swift): dsl train's flags and defaults.

RECIPE_FLAGS = ["data", "dataset", "labels", "train_limit", "test_limit", "epochs", "batch", "lr", "momentum", "nesterov",
                "weight_decay", "schedule", "flip", "translate", "whiten", "zca_epsilon", "seed"]
# dsl train's recipe fields of issue 18 (--decoupled, --weight-decay-on, --bn-bias-lr, --label-smoothing,
# --lookahead) at the values that mean "not used"; this script implements none of them.
UNIMPLEMENTED_RECIPE_DEFAULTS = {"decoupled": "false", "weight_decay_on": "weights", "bn_bias_lr": "1.0", "label_smoothing": "0.0",
                                 "lookahead": "none"}


def argument_parser():
    p = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "train.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Trains the dsl network '{NETWORK}' with dsl train's recipe on PyTorch, one or more processes "
                    "(torchrun --nproc_per_node=P), each taking 1/P of every batch (DistributedDataParallel; gloo on "
                    "CPU, nccl on GPUs). Checkpoints are dsl's (dsl eval and dsl train --resume read them); "
                    "OUT/metrics.jsonl has dsl's lines.",
        epilog="Differences from dsl train: batch norm normalises over each process's share of the batch; dropout "
               "masks come from PyTorch's generator; no curves.svg. With one process and no dropout, a run follows "
               "dsl train's images, augmentation and initial weights exactly, up to floating-point rounding.")
    a = p.add_argument
    a("--data", metavar="DIR", help="dataset directory (required for a new run)")
    a("--dataset", choices=["cifar10", "cifar100", "mnist"], help="default: detected from the files")
    a("--labels", choices=["fine", "coarse"], default=None, help="CIFAR-100 labels (default fine)")
    a("--train-limit", type=int, metavar="N", help="use only the first N training images")
    a("--test-limit", type=int, metavar="N", help="use only the first N test images")
    a("--epochs", type=int, metavar="N", help="passes over the training set (default 10)")
    a("--batch", type=int, metavar="N", help="images per step over all processes, as dsl train's (default 64; a multiple of the processes: "
      "--batch 64 on 2 processes takes 32 images per process)")
    a("--lr", type=float, metavar="X", help=f"base learning rate (default {DSL_DEFAULT_LR}: dsl train's for this network, 0.05 "
      "with batch norm, 0.02 without)")
    a("--momentum", type=float, metavar="X", help="SGD momentum (default 0.9)")
    a("--nesterov", action="store_true", default=None, help="Nesterov momentum")
    a("--weight-decay", type=float, metavar="X", help="L2 weight decay on weights, not biases or batch norm (default 0.001)")
    a("--schedule", metavar="S", help=f"cosine, constant, step:F@E1,E2,...; +warmup:N (default {DSL_DEFAULT_SCHEDULE}: dsl train's "
      "for this network, cosine with batch norm, cosine+warmup:1 without)")
    a("--no-flip", action="store_true", default=None, help="no random horizontal flips")
    a("--translate", type=int, metavar="P", help="random translations up to P pixels (default 2; 0 turns off)")
    a("--whiten", choices=["standardize", "zca", "none"], help="input preprocessing (default standardize)")
    a("--zca-epsilon", type=float, metavar="X", help="ZCA regularisation (default 0.1)")
    a("--seed", type=int, metavar="S", help="seed for weights, order, augmentation (default 1)")
    a("--out", metavar="DIR", help=f"checkpoint and metrics directory (default runs/NETWORK; with --resume, the checkpoint's)")
    a("--resume", metavar="CKPT", help="continue the run of a dsl checkpoint (written by dsl train or by this script)")
    a("--overwrite", action="store_true", help="start a new run in an --out that holds one")
    a("--init", metavar="CKPT", default=WEIGHTS, help="start from a dsl checkpoint's weights instead of dsl's initialisation"
      + (f" (default {WEIGHTS})" if WEIGHTS else ""))
    a("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: a GPU per process when there are GPUs")
    a("--threads", type=int, metavar="T", help="PyTorch threads per process (default: torchrun's, 1)")
    a("--quiet", action="store_true", help="accepted for dsl train's command lines (this script prints no progress bar)")
    return p


def recipe_from_arguments(args, resuming=False):
    """The recipe as dsl's text fields (Recipe.swift), defaults for what is not given; checked as dsl train checks it."""
    def check(name, value, low, high):
        if value is not None and not low <= value <= high:
            raise UsageFailure(f"--{name.replace('_', '-')} must be from {low} to {high}, got {value}")
    check("epochs", args.epochs, 1, 100000)
    check("batch", args.batch, 1, 4096)
    check("lr", args.lr, 0, 10)
    check("momentum", args.momentum, 0, 0.999)
    check("weight_decay", args.weight_decay, 0, 1)
    check("translate", args.translate, 0, 16)
    check("zca_epsilon", args.zca_epsilon, 1e-6, 1e6)
    check("seed", args.seed, 0, (1 << 63) - 1)
    check("train_limit", args.train_limit, 1, (1 << 63) - 1)
    check("test_limit", args.test_limit, 1, (1 << 63) - 1)
    whiten = args.whiten or "standardize"
    if args.zca_epsilon is not None and whiten != "zca" and not resuming:
        raise UsageFailure("--zca-epsilon applies only with --whiten zca")
    momentum = args.momentum if args.momentum is not None else 0.9
    if args.nesterov and momentum == 0:
        raise UsageFailure("--nesterov needs --momentum above 0")
    return {
        "data": os.path.abspath(args.data) if args.data else "",
        "dataset": args.dataset or "",
        "labels": args.labels or "fine",
        "train_limit": str(args.train_limit) if args.train_limit else "none",
        "test_limit": str(args.test_limit) if args.test_limit else "none",
        "epochs": str(args.epochs if args.epochs is not None else 10),
        "batch": str(args.batch if args.batch is not None else 64),
        "lr": _float_text(args.lr if args.lr is not None else DSL_DEFAULT_LR),
        "momentum": _float_text(momentum),
        "nesterov": "true" if args.nesterov else "false",
        "weight_decay": _float_text(args.weight_decay if args.weight_decay is not None else 1e-3),
        "schedule": args.schedule if args.schedule is not None else DSL_DEFAULT_SCHEDULE,
        "flip": "false" if args.no_flip else "true",
        "translate": str(args.translate if args.translate is not None else 2),
        "whiten": whiten,
        "zca_epsilon": _float_text(args.zca_epsilon if args.zca_epsilon is not None else 0.1),
        "seed": str(args.seed if args.seed is not None else 1),
    }


def resumed_recipe(stored, args, given, path):
    """A resumed run keeps its recipe: flags given again must agree (--epochs and --data may change)."""
    recipe = dict(stored)
    missing = [k for k in RECIPE_FLAGS if k not in recipe]
    if missing:
        raise TrainingFailure(f"{path}: written without the training recipe (no recipe.{missing[0]}); it can be evaluated but not resumed")
    # dsl train's optimiser options this script does not implement: a run using them is refused.
    for name, default in UNIMPLEMENTED_RECIPE_DEFAULTS.items():
        if recipe.get(name, default) != default:
            raise TrainingFailure(f"{path}: the run uses --{name.replace('_', '-')} {recipe[name]} (recipe.{name}), which this script "
                                  "does not implement; continue it with dsl train --resume")
    if not recipe["epochs"].isdigit():
        raise TrainingFailure(f"{path}: the run has fractional --epochs {recipe['epochs']}, which this script does not implement; "
                              "continue it with dsl train --resume")
    for name in given:
        if name in ("epochs", "data"):
            continue
        mine, theirs = given[name], recipe[name]
        same = mine == theirs
        if not same:
            try:
                same = _f32(float(mine)) == _f32(float(theirs))
            except ValueError:
                pass
        if not same:
            flag = {"flip": "--no-flip"}.get(name, "--" + name.replace("_", "-"))
            raise UsageFailure(f"{flag} {mine} disagrees with the run in {path}, which has {theirs}; a resumed run keeps its recipe "
                               "(only --epochs may change): drop the flag, or start a new run")
    if "epochs" in given:
        recipe["epochs"] = given["epochs"]
    if "data" in given:
        recipe["data"] = given["data"]
    return recipe


def safe_name(name):
    s = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    if s.startswith("."):
        s = "_" + s.lstrip(".")
    return s or "network"


def metrics_line(epoch, step, lr, train_loss, train_acc, test_loss, test_acc, images_per_s, elapsed_s):
    """One metrics.jsonl line, as dsl writes it (Metrics.swift)."""
    def number(v):
        return "null" if v is None or not math.isfinite(v) else "%.9g" % v
    return (f'{{"epoch":{epoch},"step":{step},"lr":{number(lr)},"train_loss":{number(train_loss)},'
            f'"train_acc":{number(train_acc)},"test_loss":{number(test_loss)},"test_acc":{number(test_acc)},'
            f'"images_per_s":{number(images_per_s)},"elapsed_s":{number(elapsed_s)}}}')


class Run:
    """The processes of one run: rank, world size, device, and collective helpers that also
    work in a single process without torch.distributed."""

    def __init__(self, device_choice):
        self.distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
        self.rank = int(os.environ.get("RANK", 0)) if self.distributed else 0
        self.world = int(os.environ.get("WORLD_SIZE", 1)) if self.distributed else 1
        local = int(os.environ.get("LOCAL_RANK", 0))
        cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
        if cuda and not torch.cuda.is_available():
            raise UsageFailure("--device cuda: no GPU is available")
        self.device = torch.device(f"cuda:{local}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.distributed:
            dist.init_process_group("nccl" if cuda else "gloo")

    def log(self, text):
        if self.rank == 0:
            print(text, flush=True)

    def agree(self, error):
        """Rank 0's error (a message, or None) on every rank; raises it everywhere."""
        if self.distributed:
            box = [error]
            dist.broadcast_object_list(box, src=0)
            error = box[0]
        if error is not None:
            raise TrainingFailure(error)

    def broadcast(self, value):
        if self.distributed:
            box = [value]
            dist.broadcast_object_list(box, src=0)
            value = box[0]
        return value

    def sum(self, values):
        """Element-wise sums over the processes of a list of numbers (float64)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        if self.distributed:
            dist.all_reduce(t)
        return t.tolist()

    def close(self):
        if self.distributed:
            dist.destroy_process_group()


class RunDirectory:
    """OUT, locked for the run (flock on OUT/.lock holding the pid, like dsl train's)."""

    FILES = ["checkpoint.safetensors", "metrics.jsonl", "curves.svg"]

    def __init__(self, path):
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            raise TrainingFailure(f"--out {path}: cannot create the directory: {error.strerror}") from None
        if not os.path.isdir(path):
            raise TrainingFailure(f"--out {path}: is a file, not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise TrainingFailure(f"--out {path}: cannot write into the directory")
        lock = os.path.join(path, ".lock")
        self.lock = open(lock, "a+")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.lock.seek(0)
            holder = self.lock.read().strip() or "unknown"
            raise TrainingFailure(f"--out {path}: in use by another run (pid {holder}, lock {lock}); wait for it to finish, "
                                  "stop it, or choose another --out") from None
        self.lock.truncate(0)
        self.lock.write(f"{os.getpid()}\n")
        self.lock.flush()
        for entry in sorted(os.listdir(path)):
            if any(entry.startswith(f".{name}.tmp-") for name in self.FILES):
                os.unlink(os.path.join(path, entry))

    def file(self, name):
        return os.path.join(self.path, name)


def train(args, run):
    fresh = recipe_from_arguments(args, resuming=args.resume is not None)
    given = {name: fresh[name] for name in RECIPE_FLAGS if getattr(args, {"flip": "no_flip"}.get(name, name)) is not None}
    if args.threads is not None:
        if not 1 <= args.threads <= 256:
            raise UsageFailure(f"--threads must be from 1 to 256, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.resume is not None and args.overwrite:
        raise UsageFailure("--overwrite starts a new run and cannot be combined with --resume")
    if args.resume is None and not args.data:
        raise UsageFailure("missing --data DIR (a CIFAR-10, CIFAR-100 or MNIST directory), or --resume CKPT to continue a run")
    if args.resume is not None and args.init is not None and args.init != WEIGHTS:
        raise UsageFailure("--init starts a new run from a checkpoint's weights and cannot be combined with --resume")
    if not ENDS_IN_SOFTMAX:
        raise TrainingFailure(f"training needs a network that ends in 'softmax' (the loss is softmax cross-entropy)")

    resumed = None
    if args.resume is not None:
        if not os.path.isfile(args.resume):
            raise TrainingFailure(f"--resume {args.resume}: " + ("is a directory, expected a checkpoint file" if os.path.exists(args.resume) else "file not found"))
        resumed = read_dsl_checkpoint(args.resume)
        check_network(resumed)
        recipe = resumed_recipe(resumed.recipe, args, given, args.resume)
        if resumed.integer("train.epoch") >= int(recipe["epochs"]):
            raise TrainingFailure(f"{args.resume}: the run is complete ({resumed.integer('train.epoch')} of {recipe['epochs']} epochs); "
                                  "to train longer, pass --epochs N with N above that")
    else:
        recipe = fresh
    epochs, batch, seed = int(recipe["epochs"]), int(recipe["batch"]), int(recipe["seed"])
    base_rate = _f32(float(recipe["lr"]))
    schedule = parse_schedule(recipe["schedule"], base_rate, epochs)
    if batch % run.world:
        raise UsageFailure(f"--batch {batch} is not a multiple of the {run.world} processes (each takes an equal share of a batch)")

    # The run directory (rank 0 holds its lock).
    out = args.out or (os.path.dirname(os.path.abspath(args.resume)) if args.resume else os.path.join("runs", safe_name(NETWORK)))
    directory, error = None, None
    if run.rank == 0:
        try:
            directory = RunDirectory(out)
            held = [n for n in RunDirectory.FILES[:2] if os.path.exists(directory.file(n))]
            if resumed is None and held:
                if not args.overwrite:
                    raise TrainingFailure(f"--out {out}: already holds a run ({', '.join(held)}); continue it with --resume "
                                          f"{directory.file('checkpoint.safetensors')}, replace it with --overwrite, or choose another --out")
                for name in RunDirectory.FILES:
                    if os.path.exists(directory.file(name)):
                        os.unlink(directory.file(name))
                print(f"overwriting the run in {out}", flush=True)
        except TrainingFailure as failure:
            error = str(failure)
    run.agree(error)

    # Data.
    data_dir = recipe["data"]
    fmt = recipe["dataset"] or detect_format(data_dir)
    recipe["dataset"] = fmt
    train_set, test_set = load_dataset(data_dir, fmt, recipe["labels"])
    limit = lambda text: None if text == "none" else int(text)
    train_set, test_set = train_set.prefix(limit(recipe["train_limit"])), test_set.prefix(limit(recipe["test_limit"]))
    c, h, w = INPUT_SHAPE
    for role, data in (("training set", train_set), ("test set", test_set)):
        if tuple(data.images.shape[1:]) != (h, w, c):
            raise TrainingFailure(f"the network's input is {h}x{w}x{c} but the {role}'s images are {'x'.join(str(d) for d in data.images.shape[1:])}")
        if data.classes != OUTPUT_SHAPE[0]:
            raise TrainingFailure(f"the network outputs {OUTPUT_SHAPE[0]} classes but the {role} has {data.classes}")
    if len(train_set) < batch:
        raise TrainingFailure(f"the training set has {len(train_set)} images, fewer than one batch (--batch {batch}): use --batch {len(train_set)} or less, or more training images")
    steps = len(train_set) // batch

    # Preprocessing: the checkpoint's, or fitted on the training set (ZCA by rank 0, then shared).
    method = {"standardize": "standardize", "zca": "gcn-zca", "none": "none"}[recipe["whiten"]]
    if resumed is not None:
        preprocessor = resumed.preprocessor
        if preprocessor is None or preprocessor.method != method:
            raise TrainingFailure(f"{args.resume}: the checkpoint's preprocessing (preprocess.*) is missing or differs from recipe.whiten")
    elif method == "standardize":
        preprocessor = fit_standardization(train_set.images)
    elif method == "gcn-zca":
        preprocessor = fit_gcn_zca(train_set.images, float(recipe["zca_epsilon"])) if run.rank == 0 else None
        preprocessor = run.broadcast(preprocessor)
        if len(train_set) <= train_set.images[0].numel():
            run.log(f"warning: ZCA fitted on {len(train_set)} images of {train_set.images[0].numel()} features: test accuracy can stay "
                    "near chance; use more training images, a larger --zca-epsilon, or --whiten standardize")
    else:
        preprocessor = Preprocessor("none", train_set.images.shape[1:])
    train_x, test_x = preprocessor.apply(train_set.images), preprocessor.apply(test_set.images)

    # The images' fingerprint, stored in checkpoints (dsl train --resume compares it).
    fingerprint, error = None, None
    if run.rank == 0:
        fingerprint = {"train_images": str(len(train_set)), "test_images": str(len(test_set)), "classes": str(train_set.classes),
                       "train_hash": data_hash(train_set), "test_hash": data_hash(test_set)}
        if resumed is not None:
            stored = {k[len("data."):]: v for k, v in resumed.metadata.items() if k.startswith("data.")}
            if stored != fingerprint:
                error = (f"--data {data_dir}: its images differ from the ones the run in {args.resume} trained on "
                         f"({stored.get('train_images')} training images with hash {stored.get('train_hash')}; found "
                         f"{fingerprint['train_images']} with hash {fingerprint['train_hash']})")
    run.agree(error)

    # The model, the optimizer and where the run stands.
    torch.manual_seed(mix(seed, run.rank, 0xD0D0) & 0x7FFFFFFFFFFFFFFF)
    model = Model(seed=seed)
    if args.init is not None and resumed is None:
        load_dsl_checkpoint(model, args.init)
    model.to(run.device)
    optimizer = make_optimizer(model, base_rate, momentum=_f32(float(recipe["momentum"])),
                               weight_decay=_f32(float(recipe["weight_decay"])), nesterov=recipe["nesterov"] == "true")
    epoch, step, loss_sum, correct, elapsed_before = 0, 0, 0.0, 0, 0.0
    if resumed is not None:
        load_dsl_tensors(model, resumed.tensors, args.resume)
        if resumed.velocity is None:
            raise TrainingFailure(f"{args.resume}: the checkpoint has no optimizer state (optimizer.velocity); it cannot be resumed")
        set_dsl_velocity(optimizer, model, resumed.velocity, args.resume)
        epoch, step = resumed.integer("train.epoch"), resumed.integer("train.step")
        loss_sum, correct = resumed.real("train.epoch_loss_sum"), resumed.integer("train.epoch_correct")
        elapsed_before = resumed.real("train.elapsed_s")
        if step > steps:
            raise TrainingFailure(f"{args.resume}: train.step {step} is outside an epoch of {steps} steps")
    network = nn.parallel.DistributedDataParallel(model) if run.distributed else model
    sampler = DSLOrderSampler(len(train_set), batch, seed, run.world, run.rank)
    share = batch // run.world
    flip, padding = recipe["flip"] == "true", int(recipe["translate"])

    metrics_path = os.path.join(out, "metrics.jsonl")
    checkpoint_path = os.path.join(out, "checkpoint.safetensors")
    if resumed is not None and run.rank == 0 and os.path.exists(metrics_path):
        with open(metrics_path) as f:
            lines = f.read().splitlines()
        kept = [l for l in lines if l.strip() and _metrics_epoch(l) is not None and _metrics_epoch(l) <= epoch]
        if kept != [l for l in lines if l.strip()]:
            backup = metrics_path + ".bak"
            with open(backup, "w") as f:
                f.write("\n".join(lines) + "\n")
            with open(metrics_path, "w") as f:
                f.write("".join(l + "\n" for l in kept))
            print(f"warning: {metrics_path}: rewritten with the lines of epochs 1...{epoch}; the original is kept as {backup}", flush=True)

    run.log(f"training {NETWORK}: {len(train_set)} training and {len(test_set)} test images, batch {batch} "
            f"({run.world} process{'es' if run.world > 1 else ''} of {share}), {epochs} epochs, seed {seed}, device {run.device}")
    run.log(f"SGD lr {recipe['lr']}, momentum {recipe['momentum']}{' (Nesterov)' if recipe['nesterov'] == 'true' else ''}, "
            f"weight decay {recipe['weight_decay']}; schedule {recipe['schedule']}")
    run.log(f"augmentation: {'horizontal flips' if flip else 'no flips'}, {f'translations up to {padding} px' if padding else 'no translations'}; "
            f"preprocessing: {preprocessor.method}; {PARAMETERS} parameters")
    if resumed is not None:
        run.log(f"resuming from {args.resume} at epoch {epoch + 1} of {epochs}, step {step} of {steps} (data {data_dir}, output {out})")

    stop = {"signal": 0}

    def request_stop(number, frame):
        stop["signal"] = number
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    def save(position_epoch, position_step, sum_loss, sum_correct):
        if run.rank == 0:
            save_dsl_checkpoint(model, checkpoint_path, optimizer=optimizer, preprocessor=preprocessor,
                                recipe=recipe, data=fingerprint, epoch=position_epoch, step=position_step,
                                elapsed_s=elapsed_before + time.time() - started, epoch_loss_sum=sum_loss,
                                epoch_correct=sum_correct)

    started = time.time()
    while epoch < epochs:
        sampler.set_epoch(epoch)
        order = list(sampler)
        if step == 0:
            loss_sum, correct = 0.0, 0
        network.train()
        epoch_started, session_images = time.time(), 0
        while step < steps:
            indices = torch.tensor(order[step * share:(step + 1) * share])
            draws = augmentation_draws(seed, epoch, step, batch, flip, padding)[run.rank * share:(run.rank + 1) * share]
            images = augment(train_x[indices], draws).to(run.device)
            labels = train_set.labels[indices].to(run.device)
            rate = schedule(epoch * steps + step, steps)
            for group in optimizer.param_groups:
                group["lr"] = rate
            logits = network(images)
            loss = dsl_loss(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            batch_loss, batch_correct, stopping = run.sum([loss.item() * share, float((dsl_predict(logits.detach()) == labels).sum()),
                                                           float(stop["signal"])])
            if not math.isfinite(batch_loss):
                raise TrainingFailure(f"loss became {batch_loss / batch} at epoch {epoch + 1}, step {step + 1}; try a lower learning rate (now {rate})")
            loss_sum += batch_loss
            correct += int(batch_correct)
            session_images += batch
            step += 1
            if stopping:
                save(epoch, step, loss_sum, correct)
                run.log(f"interrupted: checkpoint written to {checkpoint_path} at epoch {epoch + 1}, step {step}; "
                        f"continue with: torchrun ... --resume {checkpoint_path}")
                return 128 + int(stop["signal"]) if stop["signal"] else 130
        train_time = time.time() - epoch_started
        test_loss, test_accuracy = evaluate(model, test_x, test_set.labels, batch, run)
        seen = steps * batch
        epoch += 1
        step = 0
        lr_used = schedule((epoch - 1) * steps + steps - 1, steps)
        elapsed = elapsed_before + time.time() - started
        images_per_s = session_images / max(train_time, 1e-9)
        run.log(f"epoch {epoch}/{epochs}: train loss {loss_sum / seen:.4f} acc {100 * correct / seen:.2f}% | test loss {test_loss:.4f} "
                f"acc {100 * test_accuracy:.2f}% | lr {lr_used:.5f} | {images_per_s:.1f} img/s | {elapsed:.0f} s")
        if run.rank == 0:
            with open(metrics_path, "a") as f:
                f.write(metrics_line(epoch, epoch * steps, lr_used, loss_sum / seen, correct / seen, test_loss, test_accuracy,
                                     images_per_s, elapsed) + "\n")
        save(epoch, 0, 0.0, 0)
        if stop["signal"]:
            return 128 + int(stop["signal"])
    run.log(f"done: checkpoint {checkpoint_path}, metrics {metrics_path}")
    return 0


def _metrics_epoch(line):
    try:
        value = json.loads(line).get("epoch")
        return int(value) if isinstance(value, (int, float)) else None
    except (ValueError, AttributeError):
        return None


def evaluate(model, images, labels, batch, run):
    """Mean loss and accuracy on a preprocessed test set, in inference mode, each process taking
    a contiguous share of the images (dsl_loss in float64, dsl_predict)."""
    model.eval()
    if run.distributed:
        for buffer in model.buffers():  # every process evaluates with rank 0's statistics (those saved)
            dist.broadcast(buffer, 0)
    n = images.shape[0]
    first, last = n * run.rank // run.world, n * (run.rank + 1) // run.world
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(first, last, batch):
            x = images[start:min(start + batch, last)].to(run.device)
            y = labels[start:min(start + batch, last)].to(run.device)
            logits = model(x).double()
            loss_sum += float(dsl_loss(logits, y)) * len(y)
            correct += int((dsl_predict(logits) == y).sum())
    total_loss, total_correct = run.sum([loss_sum, float(correct)])
    return total_loss / max(n, 1), total_correct / max(n, 1)


def main(argv=None):
    parser = argument_parser()
    args = parser.parse_args(argv)
    run = None
    try:
        run = Run(args.device)
        return train(args, run)
    except UsageFailure as failure:
        if run is None or run.rank == 0:
            parser.print_usage(sys.stderr)
            print(f"{parser.prog}: error: {failure}", file=sys.stderr, flush=True)
        return 2
    except (TrainingFailure, DSLCheckpointError) as failure:
        if run is None or run.rank == 0:
            print(f"{parser.prog}: {failure}", file=sys.stderr, flush=True)
        return 1
    finally:
        if run is not None:
            run.close()


if __name__ == "__main__":
    sys.exit(main())
"""#
