"""Checks dsl's ONNX export with the format's reference tools (onnx, onnxruntime, numpy).

Run by Tests/ExportTests/ONNXExportTests.swift with .build/venv's interpreter:

  check_onnx.py models MANIFEST.json
      MANIFEST: {"cases": [{"name": str, "model": path.onnx, "initializers": [str, ...],
                            "runs": [{"input": path.npy, "expected": path.npy}, ...]}]}
      For every case: onnx.load; onnx.checker.check_model(full_check=True); strict shape
      inference (onnx.shape_inference.infer_shapes(strict_mode=True), what a Netron-style
      reader needs to open the file and show shapes); the model's form (opset >= 17, producer
      "dsl", input "input" and output "output" with the dynamic batch dimension "N", every named
      initializer present); then onnxruntime on each run's input (NCHW float32) against the
      expected output of dsl's engine. Prints one JSON object per case, on one line:
      {"name", "ok", "errors": [...], "opset", "output_shapes", "max_abs_diff", "max_abs_expected",
       "relative"}; "relative" is max |ort - expected| / max |expected| over the case's runs.
      Judging the numbers is the caller's business; the exit status is 0 unless the script breaks.

  check_onnx.py decode KIND FILE
      Parses FILE (protobuf bytes) as onnx.KIND (ModelProto, TensorProto, AttributeProto, ...) with
      the onnx package and prints it as JSON (google.protobuf.json_format, field names as in
      onnx.proto; int64 values as strings), plus "array" (the tensor's values via
      onnx.numpy_helper; "array_error" when they do not match its dims) for a TensorProto. Exit status 1 if FILE does not parse.
"""

import json
import sys

import numpy as np
import onnx
import onnx.numpy_helper
from google.protobuf import json_format


def check_case(case):
    result = {"name": case["name"], "errors": []}
    errors = result["errors"]
    model = onnx.load(case["model"])
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the checker's message names what is wrong
        errors.append("check_model: %s" % e)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
        out = [o for o in inferred.graph.output if o.name == "output"]
        if out:
            result["inferred_output_shape"] = [d.dim_param or d.dim_value for d in out[0].type.tensor_type.shape.dim]
    except Exception as e:
        errors.append("infer_shapes(strict_mode=True): %s" % e)

    opsets = {o.domain: o.version for o in model.opset_import}
    result["opset"] = opsets.get("", opsets.get("ai.onnx"))
    if result["opset"] is None or result["opset"] < 17:
        errors.append("default opset %s, expected >= 17" % result["opset"])
    if model.producer_name != "dsl":
        errors.append("producer_name %r" % model.producer_name)
    graph = model.graph
    for what, values in (("input", graph.input), ("output", graph.output)):
        if [v.name for v in values] != [what]:
            errors.append("graph %ss are %s, expected ['%s']" % (what, [v.name for v in values], what))
            continue
        dims = values[0].type.tensor_type.shape.dim
        if not dims or dims[0].dim_param != "N":
            errors.append("%s's first dimension is not the dynamic batch 'N'" % what)
    names = {t.name for t in graph.initializer}
    missing = [n for n in case.get("initializers", []) if n not in names]
    if missing:
        errors.append("initializers missing: %s" % missing[:5])

    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        errors.append("onnxruntime: %s" % e)
        result["ok"] = False
        return result
    max_diff, max_expected, shapes = 0.0, 0.0, []
    for run in case["runs"]:
        x = np.load(run["input"])
        expected = np.load(run["expected"])
        (y,) = session.run(["output"], {"input": x})
        shapes.append(list(y.shape))
        if y.shape != expected.shape:
            errors.append("output shape %s, the engine's %s" % (list(y.shape), list(expected.shape)))
            continue
        max_diff = max(max_diff, float(np.max(np.abs(y.astype(np.float64) - expected))))
        max_expected = max(max_expected, float(np.max(np.abs(expected))))
    result.update(output_shapes=shapes, max_abs_diff=max_diff, max_abs_expected=max_expected,
                  relative=max_diff / max_expected if max_expected > 0 else max_diff)
    result["ok"] = not errors
    return result


def models(manifest_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    for case in manifest["cases"]:
        try:
            result = check_case(case)
        except Exception as e:
            result = {"name": case["name"], "ok": False, "errors": ["%s: %s" % (type(e).__name__, e)]}
        print(json.dumps(result), flush=True)


def decode(kind, path):
    message = getattr(onnx, kind)()
    with open(path, "rb") as f:
        data = f.read()
    try:
        message.ParseFromString(data)
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        sys.exit(1)
    out = json_format.MessageToDict(message, preserving_proto_field_name=True)
    if kind == "TensorProto":
        try:
            out["array"] = onnx.numpy_helper.to_array(message).reshape(-1).tolist()
        except Exception as e:  # a header without its data
            out["array_error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "models":
        models(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "decode":
        decode(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: check_onnx.py models MANIFEST.json | check_onnx.py decode KIND FILE")
