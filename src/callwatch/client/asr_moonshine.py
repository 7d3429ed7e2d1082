"""Moonshine on onnxruntime, with its weights unpacked once: the fast engine for final text.

Theory of operation. The ``moonshine-cpp`` wheel ships moonshine base as two ORT-format
graphs (``encoder_model.ort``, ``decoder_model_merged.ort``: Hugging Face's merged decoder
with a key/value cache) whose weights are int8. The graphs turn every int8 weight back into
float32 (``Cast`` → ``Mul`` by its scale → ``Add``, and a ``Transpose`` of the tied embedding
for the output layer) *inside* the graph, so each decoded token re-expands all ~55 M weights:
profiled at 100 ms of a core per token, of which the matrix products are 13 ms. That is why a
ten-word sentence took ~2 s, whether through libmoonshine's C API or onnxruntime directly.

:func:`prepare_moonshine` removes that work before the first transcription. Onnxruntime loads
each ``.ort`` graph and writes it back as an ONNX protobuf (no optimisation applied, so the
file holds nothing specific to this CPU); every node whose inputs are all constants (the
dequantisation chain) is evaluated once with numpy and becomes a float32 initializer; the
If-branch subgraphs, left unnamed by the conversion, get names; the result is cached on disk
(:func:`cache_dir`), keyed by the source files, and written atomically, so concurrent
processes at worst both build it. Nothing is downloaded: the input is the installed wheel.
The unpacked decoder is ~220 MB (the wheel's is 42 MB) and decodes a token in ~15 ms.

:class:`MoonshineEngine` then runs greedy decoding: the encoder once per utterance, the
decoder once with an empty cache (which also computes the cross-attention keys/values), then
one token per call feeding back the self-attention cache and the first call's cross-attention
cache. Decoding stops at ``</s>``, after :data:`MAX_TOKENS_PER_SECOND` tokens per second of
audio (speech runs at 3–5 tokens a second), or when the output loops — the same few tokens
:data:`LOOP_REPEATS` times running, heard on narrowband audio ("ma'am, ma'am, ma'am, …") —
keeping that pattern once. Text comes from
``tokenizer.bin``: SentencePiece pieces in id order, each a length (one byte, or two when the
first has its high bit set: low 7 bits, then the next byte × 128) followed by its UTF-8 bytes,
with ``▁`` for a space; ids 3–258 are the byte-fallback pieces.

Onnxruntime releases the GIL while it runs, so engines on several threads use several cores;
each session is limited to one intra-op thread, so one engine costs at most one core.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from callwatch.client.asr_engines import (
    ASR_SAMPLE_RATE,
    MOONSHINE_MAX_SAMPLES,
    MOONSHINE_MIN_SAMPLES,
    AsrError,
    PcmArray,
    moonshine_package_dir,
    warm_up_signal,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bumped when :func:`prepare_moonshine`'s output changes, so stale caches are rebuilt."""
MAX_TOKENS_PER_SECOND = 6.5
MIN_MAX_TOKENS = 12
LOOP_REPEATS = 4
LOOP_MAX_PERIOD = 8
"""A pattern of up to this many tokens said :data:`LOOP_REPEATS` times running ends decoding,
and only its first occurrence is kept: greedy decoding on hard audio can loop on a word."""
BOS, EOS = 1, 2
FIRST_BYTE_PIECE = 3
"""Ids 3…258 stand for the bytes 0x00…0xff (SentencePiece byte fallback)."""
CACHE_ENV = "CALLWATCH_ASR_CACHE"
_FOLDABLE = frozenset({"Cast", "Mul", "Add", "Sub", "Transpose"})


def cache_dir() -> Path:
    """Where unpacked models live: ``$CALLWATCH_ASR_CACHE``, else ``$XDG_CACHE_HOME/callwatch``,
    else ``~/.cache/callwatch``."""
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callwatch"


@dataclass(frozen=True, slots=True)
class MoonshineFiles:
    """An unpacked model, ready for :class:`MoonshineEngine`."""

    encoder: Path
    decoder: Path
    tokenizer: Path


def prepare_moonshine(model_dir: Path | None = None, cache: Path | None = None) -> MoonshineFiles:
    """Unpack the bundled moonshine model (or the one in ``model_dir``) into ``cache``.

    Returns at once when the cache already holds it; otherwise takes ~5 s of a core.

    Raises:
        AsrError: the model files are missing or cannot be converted.
    """
    model_dir = model_dir or moonshine_package_dir() / "models" / "base-en"
    sources = {
        name: model_dir / f"{name}.ort" for name in ("encoder_model", "decoder_model_merged")
    }
    tokenizer = model_dir / "tokenizer.bin"
    missing = [str(p) for p in [*sources.values(), tokenizer] if not p.is_file()]
    if missing:
        raise AsrError(f"moonshine model files missing: {missing}")
    target = (cache or cache_dir()) / f"moonshine-{_fingerprint(sources.values())}"
    unpacked = {name: target / f"{name}.onnx" for name in sources}
    for name, source in sources.items():
        if not unpacked[name].is_file():
            _unpack(source, unpacked[name])
    return MoonshineFiles(unpacked["encoder_model"], unpacked["decoder_model_merged"], tokenizer)


def _fingerprint(paths: Iterator[Path] | Sequence[Path] | Any) -> str:
    digest = hashlib.sha256(f"v{FORMAT_VERSION}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}".encode())
        with path.open("rb") as f:  # the head and tail of each file: cheap, and enough
            digest.update(f.read(1 << 20))
            f.seek(max(0, stat.st_size - (1 << 20)))
            digest.update(f.read())
    return digest.hexdigest()[:16]


def _unpack(source: Path, target: Path) -> None:
    import onnx
    import onnxruntime as ort  # type: ignore[import-untyped]

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        exported = Path(work) / "exported.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.optimized_model_filepath = str(exported)
        try:
            ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
            model = onnx.load(str(exported))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise AsrError(f"cannot convert {source}: {exc}") from exc
        folded = fold_constants(model.graph)
        _name_subgraphs(model.graph)
        partial = Path(work) / "model.onnx"
        onnx.save(model, str(partial))
        os.replace(partial, target)
    logger.info("= unpacked %s → %s (%d constant nodes folded)", source.name, target, folded)


def fold_constants(graph: Any) -> int:
    """Evaluate every node of ``graph`` (and its subgraphs) whose inputs are all initializers
    and whose operator is in :data:`_FOLDABLE`; its output becomes an initializer of ``graph``.
    Initializers nothing reads any more are dropped. Returns the number of nodes folded."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    made: dict[str, npt.NDArray[Any]] = {}
    count = _fold(graph, constants, made)
    used = _inputs_used(graph)
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    graph.initializer.extend(
        numpy_helper.from_array(value, name) for name, value in made.items() if name in used
    )
    return count


def _fold(graph: Any, constants: dict[str, npt.NDArray[Any]], made: dict[str, Any]) -> int:
    import onnx

    count = 0
    kept = []
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                count += _fold(attribute.g, constants, made)
        if node.op_type in _FOLDABLE and node.input and all(i in constants for i in node.input):
            value = _evaluate(node, [constants[i] for i in node.input])
            constants[node.output[0]] = made[node.output[0]] = value
            count += 1
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return count


def _evaluate(node: Any, inputs: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    import onnx

    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    match node.op_type:
        case "Cast":
            return inputs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(attributes["to"]))
        case "Mul":
            return np.asarray(inputs[0] * inputs[1])
        case "Add":
            return np.asarray(inputs[0] + inputs[1])
        case "Sub":
            return np.asarray(inputs[0] - inputs[1])
        case "Transpose":
            return np.ascontiguousarray(np.transpose(inputs[0], attributes.get("perm")))
    raise AssertionError(node.op_type)  # pragma: no cover - guarded by _FOLDABLE


def _inputs_used(graph: Any) -> set[str]:
    import onnx

    used = {output.name for output in graph.output}
    for node in graph.node:
        used.update(node.input)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                used |= _inputs_used(attribute.g)
    return used


def _name_subgraphs(graph: Any, prefix: str = "g") -> None:
    import onnx

    for index, node in enumerate(graph.node):
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                if not attribute.g.name:
                    attribute.g.name = f"{prefix}_{index}_{attribute.name}"
                _name_subgraphs(attribute.g, attribute.g.name)


def _looping(tokens: list[int]) -> int | None:
    """The period of a pattern repeated :data:`LOOP_REPEATS` times at the end of ``tokens``
    (``"ma'am, ma'am, ma'am, ma'am"``: greedy decoding stuck in a loop), else ``None``."""
    for period in range(1, LOOP_MAX_PERIOD + 1):
        span = LOOP_REPEATS * period
        if len(tokens) > span:
            tail = tokens[-period:]
            if all(
                tokens[-k * period : len(tokens) - (k - 1) * period] == tail
                for k in range(2, LOOP_REPEATS + 1)
            ):
                return period
    return None


class Tokenizer:
    """Token ids → text, from moonshine's ``tokenizer.bin`` (format in the module docstring).

    Raises:
        AsrError: the file is truncated.
    """

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        pieces: list[bytes] = []
        i = 0
        while i < len(data):
            length = data[i]
            i += 1
            if length & 0x80:
                if i >= len(data):
                    raise AsrError(f"{path} is truncated")
                length = (length & 0x7F) | (data[i] << 7)
                i += 1
            if i + length > len(data):
                raise AsrError(f"{path} is truncated")
            pieces.append(data[i : i + length])
            i += length
        self._pieces = pieces

    def __len__(self) -> int:
        return len(self._pieces)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (special and unknown ids are skipped)."""
        out = bytearray()
        for token in ids:
            if FIRST_BYTE_PIECE <= token < FIRST_BYTE_PIECE + 256:
                out.append(token - FIRST_BYTE_PIECE)
            elif token > EOS and token < len(self._pieces):
                out += self._pieces[token]
        return out.decode("utf-8", errors="replace").replace("\u2581", " ").strip()


class MoonshineEngine:
    """Moonshine base on onnxruntime with unpacked weights (see the module docstring).

    Args:
        model_dir: a moonshine model directory (``*.ort`` and ``tokenizer.bin``); defaults to
            the ``models/base-en`` bundled in the ``moonshine-cpp`` wheel.
        cache: where the unpacked model is kept (:func:`cache_dir` by default).
        threads: onnxruntime intra-op threads (1: one engine uses at most one core).
        warm_up: run one throw-away transcription now (the first run is several times slower).

    Raises:
        AsrError: the model is missing or cannot be loaded.
    """

    name = "moonshine"

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        cache: Path | None = None,
        threads: int = 1,
        warm_up: bool = True,
    ) -> None:
        import onnxruntime as ort

        files = prepare_moonshine(model_dir, cache)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self._encoder = ort.InferenceSession(
                str(files.encoder), options, ["CPUExecutionProvider"]
            )
            self._decoder = ort.InferenceSession(
                str(files.decoder), options, ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise AsrError(f"cannot load the unpacked moonshine model: {exc}") from exc
        self._tokenizer = Tokenizer(files.tokenizer)
        self._outputs = [o.name for o in self._decoder.get_outputs()]
        self._empty_cache = {
            i.name: np.zeros((1, int(i.shape[1]), 0, int(i.shape[3])), dtype=np.float32)
            for i in self._decoder.get_inputs()
            if i.name.startswith("past_key_values.")
        }
        self._closed = False
        if warm_up:
            self.transcribe(warm_up_signal())

    def transcribe(self, pcm16k: PcmArray) -> str:
        """Text of one utterance (16 kHz mono int16): ~0.1 s plus ~15 ms per word piece.

        Raises:
            AsrError: the engine is closed or onnxruntime failed.
        """
        if self._closed:
            raise AsrError("moonshine engine is closed")
        if pcm16k.shape[0] > MOONSHINE_MAX_SAMPLES:
            pieces = range(0, pcm16k.shape[0], MOONSHINE_MAX_SAMPLES)
            texts = (self.transcribe(pcm16k[i : i + MOONSHINE_MAX_SAMPLES]) for i in pieces)
            return " ".join(text for text in texts if text)
        audio = np.zeros((1, max(pcm16k.shape[0], MOONSHINE_MIN_SAMPLES)), dtype=np.float32)
        audio[0, : pcm16k.shape[0]] = pcm16k.astype(np.float32) * (1.0 / 32768.0)
        limit = max(
            MIN_MAX_TOKENS, math.ceil(pcm16k.shape[0] / ASR_SAMPLE_RATE * MAX_TOKENS_PER_SECOND)
        )
        try:
            return self._tokenizer.decode(self._greedy(audio, limit))
        except AsrError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            raise AsrError(f"moonshine failed: {exc}") from exc

    def _greedy(self, audio: npt.NDArray[np.float32], limit: int) -> list[int]:
        (hidden,) = self._encoder.run(None, {"input_values": audio})
        cache: dict[str, npt.NDArray[np.float32]] = dict(self._empty_cache)
        tokens = [BOS]
        use_cache = np.array([False])
        for _ in range(limit):
            feed: dict[str, Any] = {
                "input_ids": np.array([[tokens[-1]]], dtype=np.int64),
                "encoder_hidden_states": hidden,
                "use_cache_branch": use_cache,
                **cache,
            }
            logits, *present = self._decoder.run(None, feed)
            token = int(np.argmax(logits[0, -1]))
            for name, value in zip(self._outputs[1:], present, strict=True):
                if not use_cache[0] or ".decoder." in name:  # cross-attention: first run only
                    cache[name.replace("present.", "past_key_values.", 1)] = value
            use_cache = np.array([True])
            if token == EOS:
                break
            tokens.append(token)
            if (period := _looping(tokens)) is not None:
                del tokens[len(tokens) - (LOOP_REPEATS - 1) * period :]
                break
        return tokens[1:]

    def close(self) -> None:
        """Drop the sessions (idempotent)."""
        self._closed = True
        self._encoder = self._decoder = None


__all__ = [
    "MoonshineEngine",
    "MoonshineFiles",
    "Tokenizer",
    "cache_dir",
    "fold_constants",
    "prepare_moonshine",
]
