"""The unpacked moonshine engine's parts: constant folding, the tokenizer, the model cache.

The folding test builds a small ONNX graph in the shape of moonshine's decoder (an int8
weight dequantised by ``Cast`` → ``Mul`` → ``Add`` in front of a ``MatMul``, and a
``Transpose`` inside an ``If`` branch), runs it on onnxruntime before and after
:func:`fold_constants`, and requires the same output from fewer nodes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
import pytest
from onnx import TensorProto, helper, numpy_helper

from callwatch.client.asr_engines import AsrError
from callwatch.client.asr_moonshine import (
    CACHE_ENV,
    Tokenizer,
    cache_dir,
    fold_constants,
    prepare_moonshine,
)


def _dequantising_model() -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    weight = rng.integers(-128, 127, size=(4, 3), dtype=np.int8)
    initializers = [
        numpy_helper.from_array(weight, "w_q"),
        numpy_helper.from_array(np.array([0.05], dtype=np.float32), "scale"),
        numpy_helper.from_array(np.array([0.5], dtype=np.float32), "shift"),
    ]
    nodes = [
        helper.make_node("Cast", ["w_q"], ["w_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["w_f", "scale"], ["w_s"]),
        helper.make_node("Add", ["w_s", "shift"], ["w"]),
        helper.make_node("MatMul", ["x", "w"], ["y0"]),
    ]
    transpose = helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0])
    then_branch = helper.make_graph(
        [transpose, helper.make_node("MatMul", ["y0", "wt"], ["y_then"])],
        "then",
        [],
        [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, [1, 4])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y_else"])],
        "else",
        [],
        [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, [1, 4])],
    )
    nodes.append(
        helper.make_node("If", ["flag"], ["y"], then_branch=then_branch, else_branch=else_branch)
    )
    graph = helper.make_graph(
        nodes,
        "dequantising",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def _run(model: onnx.ModelProto, feed: dict[str, Any]) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def test_folding_keeps_the_result_and_removes_the_dequantisation() -> None:
    model = _dequantising_model()
    x = np.array([[1.0, -2.0, 0.5, 3.0]], dtype=np.float32)
    before = {flag: _run(model, {"x": x, "flag": np.array([flag])}) for flag in (True, False)}

    assert fold_constants(model.graph) == 4  # Cast, Mul, Add and the branch's Transpose
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["MatMul", "If"]
    branches = {a.name: a.g for a in model.graph.node[1].attribute}
    assert [n.op_type for n in branches["then_branch"].node] == ["MatMul"]
    names = {init.name: init for init in model.graph.initializer}
    assert set(names) == {"w", "wt"}  # the int8 source and the scales are gone
    assert names["w"].data_type == TensorProto.FLOAT
    for flag in (True, False):
        after = _run(model, {"x": x, "flag": np.array([flag])})
        np.testing.assert_allclose(after, before[flag], rtol=1e-6)


def test_tokenizer_reads_pieces_and_byte_fallback(tmp_path: Path) -> None:
    pieces = [b"<unk>", b"<s>", b"</s>", *(bytes([b]) for b in range(256))]
    pieces += ["\u2581hello".encode(), b"x" * 200, "\u2581w\u00f6rld".encode()]
    data = bytearray()
    for piece in pieces:
        n = len(piece)
        data += bytes([n]) if n < 128 else bytes([0x80 | (n & 0x7F), n >> 7])
        data += piece
    path = tmp_path / "tokenizer.bin"
    path.write_bytes(bytes(data))
    tokenizer = Tokenizer(path)
    assert len(tokenizer) == len(pieces)
    hello, long, world = 259, 260, 261
    assert tokenizer.decode([hello, world]) == "hello w\u00f6rld"
    assert tokenizer.decode([hello, long]) == "hello" + "x" * 200
    # "é" as two byte-fallback ids, then </s> and an out-of-range id, both skipped
    assert tokenizer.decode([hello, 3 + 0xC3, 3 + 0xA9, 2, 99999]) == "hello\u00e9"
    path.write_bytes(bytes(data[:-3]))
    with pytest.raises(AsrError, match="truncated"):
        Tokenizer(path)


def test_bundled_tokenizer_has_the_model_vocabulary() -> None:
    files = prepare_moonshine()
    tokenizer = Tokenizer(files.tokenizer)
    assert len(tokenizer) >= 32000
    assert tokenizer.decode([1, 2]) == ""


def test_the_unpacked_model_is_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_dir() == tmp_path
    first = prepare_moonshine()
    assert first.encoder.parent.parent == tmp_path
    stamps = {p: os.stat(p).st_mtime_ns for p in (first.encoder, first.decoder)}
    again = prepare_moonshine()
    assert again == first
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps  # not rebuilt
    decoder = onnx.load(str(first.decoder), load_external_data=False)
    assert "Cast" not in {n.op_type for n in decoder.graph.node}
    assert not list(tmp_path.glob("*/tmp*"))  # no half-written leftovers


def test_missing_model_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(AsrError, match="missing"):
        prepare_moonshine(tmp_path, tmp_path / "cache")


def test_a_looping_decode_is_cut_to_one_occurrence() -> None:
    from callwatch.client.asr_moonshine import LOOP_REPEATS, _looping

    maam = [501, 7]  # "▁ma'am" ","
    assert _looping([9, 10, *maam * (LOOP_REPEATS - 1)]) is None  # "no, no, no" stays
    assert _looping([9, 10, *maam * LOOP_REPEATS]) == 2
    assert _looping([9, *[44] * LOOP_REPEATS]) == 1
    assert _looping([1, 2, 3, 4, 1, 2, 3, 4]) is None
    assert _looping(list(range(40))) is None
