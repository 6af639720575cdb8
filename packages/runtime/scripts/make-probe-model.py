"""Writes assets/probe.onnx: the smallest useful model (y = x * 2 + 1 on float32 [1, 4], opset 17).

`geo-dino doctor` creates a session on it with each execution provider to learn which ones really
work on a machine. Rerun: /path/to/venv/bin/python packages/runtime/scripts/make-probe-model.py
(needs the `onnx` package).
"""
from pathlib import Path

import onnx
from onnx import TensorProto, helper

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
graph = helper.make_graph(
    [helper.make_node("Mul", ["x", "two"], ["t"]), helper.make_node("Add", ["t", "one"], ["y"])],
    "geo_dino_probe",
    [x],
    [y],
    [two, one],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="geo-dino")
model.ir_version = 8
onnx.checker.check_model(model)
out = Path(__file__).resolve().parent.parent / "assets" / "probe.onnx"
out.write_bytes(model.SerializeToString())
print(out, out.stat().st_size, "bytes")
