"""A dsl checkpoint through the exported PyTorch module and back (run by PyTorchRoundTripTests.swift).

usage: pytorch_roundtrip.py TRAIN_PY CKPT DATA OUT OTHER_CKPT

Imports TRAIN_PY (dsl export --to pytorch-train: the module and the data loaders), loads the dsl
checkpoint CKPT into the module, evaluates it on DATA's test set with the checkpoint's
preprocessing (dsl_loss in float64, dsl_predict), saves it back to OUT with
save_dsl_checkpoint(like=...), reads OUT back and compares every tensor and metadata entry with
CKPT's, and tries to load OTHER_CKPT (another network's checkpoint), which must be refused.
Prints one JSON object: loss, accuracy, images, identical (bool), differences, refused (the message).
"""

import importlib.util
import json
import sys

import torch


def main():
    train_py, checkpoint_path, data, out, other = sys.argv[1:6]
    spec = importlib.util.spec_from_file_location("exported", train_py)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)

    model = m.Model()
    checkpoint = m.load_dsl_checkpoint(model, checkpoint_path)
    _, test = m.load_dataset(data, "cifar10", "fine")
    x = checkpoint.preprocessor.apply(test.images)
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for first in range(0, len(test), 100):
            logits = model(x[first:first + 100]).double()
            labels = test.labels[first:first + 100]
            loss_sum += float(m.dsl_loss(logits, labels)) * len(labels)
            correct += int((m.dsl_predict(logits) == labels).sum())

    m.save_dsl_checkpoint(model, out, like=checkpoint)
    again = m.read_dsl_checkpoint(out)
    differences = []
    for name in sorted(set(checkpoint.tensors) | set(again.tensors) | set(checkpoint.extras) | set(again.extras)):
        a = checkpoint.tensors.get(name, checkpoint.extras.get(name))
        b = again.tensors.get(name, again.extras.get(name))
        if a is None or b is None or a.dtype != b.dtype or a.shape != b.shape or not torch.equal(a, b):
            differences.append(name)
    for key in sorted(set(checkpoint.metadata) | set(again.metadata)):
        if checkpoint.metadata.get(key) != again.metadata.get(key):
            differences.append(f"metadata {key}: {checkpoint.metadata.get(key)!r} -> {again.metadata.get(key)!r}")

    refused = None
    try:
        m.load_dsl_checkpoint(m.Model(), other)
    except m.DSLCheckpointError as error:
        refused = str(error)
    print(json.dumps({"loss": loss_sum / len(test), "accuracy": correct / len(test), "images": len(test),
                      "identical": not differences, "differences": differences, "refused": refused}))


if __name__ == "__main__":
    main()
