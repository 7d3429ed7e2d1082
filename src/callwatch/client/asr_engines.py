"""Speech-recognition engines behind one small interface, all offline (models ship in wheels).

* :class:`AsrEngine` — one utterance of 16 kHz int16 PCM in, its text out. Implemented by
  :class:`~callwatch.client.asr_moonshine.MoonshineEngine` (accurate, the default for final
  text: moonshine base on onnxruntime with its weights unpacked once), :class:`MoonshineCppEngine`
  (the same model through libmoonshine's C API, ~6× slower; kept as a reference) and
  :class:`PocketsphinxEngine` (fast, much less accurate).
* :class:`StreamingAsrEngine` — opens an :class:`AsrStream` that takes audio as it arrives and
  offers a partial hypothesis at any time; :class:`PocketsphinxEngine` implements it.

Engines are blocking and not thread-safe: each instance belongs to one worker thread or
process, created there by calling a factory (the class itself is a factory). The transcriber
(:mod:`callwatch.client.transcribe`) decides where they run: moonshine's C call releases the
GIL, so it runs on a thread; pocketsphinx's ``process_raw`` holds the GIL for up to ~50 ms per
call, so its partials run in a child process.

Moonshine's C API: ``moonshine-cpp`` 0.1.4 bundles ``models/base-en`` and ``libmoonshine.so`` (over
its own ``libonnxruntime.so.1.22.1``). Its Python ``transcribe()`` wrapper is broken (it uses a
non-existent ``ctypes.c_float_p``) and importing its module pulls in download helpers, so this
module never imports it: it locates the installed package directory and calls the C API
(``moonshine_load_model``, ``moonshine_transcribe``, ``moonshine_free_text``,
``moonshine_free_model``) through ctypes. Two measured quirks shape :meth:`MoonshineCppEngine.
transcribe`: fewer than ~900 samples abort the whole process inside onnxruntime (so input is
zero-padded to :data:`MOONSHINE_MIN_SAMPLES`), and the first call on a model costs ~2.5 s (so the
engine warms up when it is built). Handles index a global ``std::vector`` of models that
``moonshine_load_model`` appends to, so a load may move it while another thread transcribes:
:data:`_MODELS_LOCK` lets transcriptions run together but loads and frees only alone.

Cost (measured, one core): ≈ 0.1 s per output token, nearly all of it spent re-expanding the
int8 weights for every token (see :mod:`~callwatch.client.asr_moonshine`, which avoids that).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

PcmArray = npt.NDArray[np.int16]
ASR_SAMPLE_RATE = 16000
"""Every engine takes 16 kHz mono int16 PCM."""

MOONSHINE_PACKAGE = "moonshine_cpp"
MOONSHINE_ORT_LIBRARY = "libonnxruntime.so.1.22.1"
MOONSHINE_LIBRARY = "libmoonshine.so"
MOONSHINE_MIN_SAMPLES = ASR_SAMPLE_RATE // 2
"""Shorter input is zero-padded: under ~900 samples onnxruntime aborts the process."""
MOONSHINE_MAX_SAMPLES = 30 * ASR_SAMPLE_RATE
"""Longer input is transcribed in pieces of this size (the model was trained on ≤ 30 s)."""
_MODEL_TYPES = {"tiny": 0, "base": 1}


class _SharedExclusiveLock:
    """Many holders in shared mode, or one in exclusive mode (writers wait for readers)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: self._readers == 0)
            yield


_MODELS_LOCK = _SharedExclusiveLock()
"""Guards libmoonshine's process-global model table (see the module docstring)."""


class AsrError(RuntimeError):
    """An engine could not be loaded or failed on some audio."""


class AsrEngine(Protocol):
    """Transcribes one whole utterance at a time."""

    @property
    def name(self) -> str:
        """Short engine name for logs and segments (``"moonshine"``)."""
        ...

    def transcribe(self, pcm16k: PcmArray) -> str:
        """Text of ``pcm16k`` (16 kHz mono int16); ``""`` when nothing was recognised."""
        ...

    def close(self) -> None:
        """Release the model; the engine is unusable afterwards."""
        ...


class AsrStream(Protocol):
    """One utterance being recognised incrementally."""

    def accept(self, pcm16k: PcmArray) -> None:
        """Feed the next piece of audio (any length)."""
        ...

    def partial(self) -> str:
        """Best hypothesis for the audio so far (cheap enough to call a few times a second)."""
        ...

    def finish(self) -> str:
        """End the utterance and return the final hypothesis of this engine."""
        ...


class StreamingAsrEngine(Protocol):
    """An engine that can follow an utterance while it is spoken."""

    @property
    def name(self) -> str:
        """Short engine name."""
        ...

    def open_stream(self) -> AsrStream:
        """Start an utterance; one stream at a time per engine."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


def moonshine_package_dir() -> Path:
    """Directory of the installed ``moonshine_cpp`` package (located without importing it).

    Raises:
        AsrError: the package is not installed.
    """
    spec = importlib.util.find_spec(MOONSHINE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AsrError("moonshine-cpp is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _moonshine_library(package_dir: Path) -> ctypes.CDLL:
    """Load (once per process, as the dynamic loader would) and declare the C API."""
    # libmoonshine.so NEEDs libonnxruntime.so.1: loading the bundled copy first satisfies it.
    ctypes.CDLL(str(package_dir / MOONSHINE_ORT_LIBRARY))
    lib = ctypes.CDLL(str(package_dir / MOONSHINE_LIBRARY))
    lib.moonshine_load_model.argtypes = (ctypes.c_char_p,) * 3 + (ctypes.c_int32,)
    lib.moonshine_load_model.restype = ctypes.c_int
    lib.moonshine_transcribe.argtypes = (
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_void_p),
    )
    lib.moonshine_transcribe.restype = ctypes.c_int
    lib.moonshine_free_text.argtypes = (ctypes.c_void_p,)
    lib.moonshine_free_text.restype = None
    lib.moonshine_free_model.argtypes = (ctypes.c_int,)
    lib.moonshine_free_model.restype = None
    return lib


def warm_up_signal() -> PcmArray:
    """One second of a quiet gliding tone: exercises the model without any real words."""
    t = np.arange(ASR_SAMPLE_RATE) / ASR_SAMPLE_RATE
    return (2000 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.int16)


class MoonshineCppEngine:
    """Moonshine (``moonshine-cpp``) through its C API: the accurate engine for final text.

    Args:
        model_dir: directory with ``encoder_model.ort``, ``decoder_model_merged.ort`` and
            ``tokenizer.bin``; defaults to the ``models/base-en`` bundled in the wheel.
        model_type: architecture of the model in ``model_dir``.
        warm_up: run one throw-away transcription now (the first call is ~10× slower).

    Raises:
        AsrError: the package, its libraries or the model files are missing or fail to load.
    """

    name = "moonshine"

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        model_type: Literal["tiny", "base"] = "base",
        warm_up: bool = True,
    ) -> None:
        package_dir = moonshine_package_dir()
        model_dir = model_dir or package_dir / "models" / "base-en"
        files = [model_dir / f for f in ("encoder_model.ort", "decoder_model_merged.ort")]
        files.append(model_dir / "tokenizer.bin")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise AsrError(f"moonshine model files missing: {missing}")
        try:
            self._lib = _moonshine_library(package_dir)
        except OSError as exc:
            raise AsrError(f"cannot load moonshine libraries: {exc}") from exc
        paths = [str(f).encode() for f in files]
        self._handle: int | None = self._lib.moonshine_load_model(*paths, _MODEL_TYPES[model_type])
        if self._handle is None or self._handle < 0:
            raise AsrError(f"moonshine_load_model failed for {model_dir}")
        logger.debug("= moonshine model %s loaded as handle %d", model_dir, self._handle)
        if warm_up:
            self.transcribe(warm_up_signal())

    def transcribe(self, pcm16k: PcmArray) -> str:
        """Text of one utterance (16 kHz mono int16); blocks for ~0.2 s per second of audio.

        Raises:
            AsrError: the engine is closed or moonshine reported an error.
        """
        if pcm16k.shape[0] > MOONSHINE_MAX_SAMPLES:
            pieces = range(0, pcm16k.shape[0], MOONSHINE_MAX_SAMPLES)
            texts = (self.transcribe(pcm16k[i : i + MOONSHINE_MAX_SAMPLES]) for i in pieces)
            return " ".join(text for text in texts if text)
        audio = np.zeros(max(pcm16k.shape[0], MOONSHINE_MIN_SAMPLES), dtype=np.float32)
        audio[: pcm16k.shape[0]] = pcm16k.astype(np.float32) * (1.0 / 32768.0)
        return self._call(audio)

    def _call(self, audio: npt.NDArray[np.float32]) -> str:
        if self._handle is None:
            raise AsrError("moonshine engine is closed")
        text = ctypes.c_void_p()
        data = audio.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        with _MODELS_LOCK.shared():
            status = self._lib.moonshine_transcribe(
                self._handle, data, audio.shape[0], ctypes.byref(text)
            )
        if status != 0:
            raise AsrError(f"moonshine_transcribe failed with status {status}")
        if not text.value:
            return ""
        try:
            return ctypes.string_at(text.value).decode("utf-8", errors="replace").strip()
        finally:
            self._lib.moonshine_free_text(text)

    def close(self) -> None:
        """Free the model (idempotent)."""
        if self._handle is not None:
            with _MODELS_LOCK.exclusive():
                self._lib.moonshine_free_model(self._handle)
            self._handle = None


class _PocketsphinxStream:
    """An utterance on a pocketsphinx decoder (``start_utt`` … ``end_utt``)."""

    def __init__(self, engine: PocketsphinxEngine) -> None:
        self._engine = engine
        self._open = True

    def accept(self, pcm16k: PcmArray) -> None:
        if self._open:
            self._engine.process(pcm16k, full_utt=False)

    def partial(self) -> str:
        return self._engine.hypothesis() if self._open else ""

    def finish(self) -> str:
        if not self._open:
            return ""
        self._open = False
        return self._engine.end_utterance()


class PocketsphinxEngine:
    """CMU pocketsphinx 5 with its bundled en-us model: streaming partials, or whole utterances.

    One decoder (≈ 90 MB resident) per engine, so one open utterance at a time.

    Args:
        log_level: pocketsphinx's own log level (it logs to stderr by default).

    Raises:
        AsrError: the decoder cannot be built.
    """

    name = "pocketsphinx"

    def __init__(self, *, log_level: str = "FATAL") -> None:
        import pocketsphinx  # type: ignore[import-untyped]

        try:
            self._decoder = pocketsphinx.Decoder(samprate=ASR_SAMPLE_RATE, loglevel=log_level)
        except (RuntimeError, ValueError) as exc:
            raise AsrError(f"cannot build the pocketsphinx decoder: {exc}") from exc
        self._in_utterance = False
        self._closed = False

    def transcribe(self, pcm16k: PcmArray) -> str:
        """Decode a whole utterance (``full_utt=True`` normalises over all of it)."""
        self._start_utterance()
        try:
            self.process(pcm16k, full_utt=True)
        finally:
            text = self.end_utterance()
        return text

    def open_stream(self) -> AsrStream:
        """Start a streaming utterance on this engine's decoder.

        Raises:
            AsrError: the engine is closed or another utterance is open.
        """
        self._start_utterance()
        return _PocketsphinxStream(self)

    def process(self, pcm16k: PcmArray, *, full_utt: bool) -> None:
        """Feed audio to the open utterance (used by the stream)."""
        self._decoder.process_raw(pcm16k.astype("<i2").tobytes(), False, full_utt)

    def hypothesis(self) -> str:
        """Current best hypothesis of the open (or last) utterance."""
        hyp = self._decoder.hyp()
        return str(hyp.hypstr).strip() if hyp is not None else ""

    def end_utterance(self) -> str:
        """Close the open utterance and return its final hypothesis."""
        self._decoder.end_utt()
        self._in_utterance = False
        return self.hypothesis()

    def _start_utterance(self) -> None:
        if self._closed or self._in_utterance:
            raise AsrError("pocketsphinx engine is closed or already has an utterance open")
        self._decoder.start_utt()
        self._in_utterance = True

    def close(self) -> None:
        """Refuse further use (the decoder's memory goes with the engine)."""
        self._closed = True


__all__ = [
    "ASR_SAMPLE_RATE",
    "AsrEngine",
    "AsrError",
    "AsrStream",
    "MoonshineCppEngine",
    "PocketsphinxEngine",
    "StreamingAsrEngine",
    "moonshine_package_dir",
]
