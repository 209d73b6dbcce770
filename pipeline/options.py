"""The options of the commands that run models, as frozen dataclasses in a module without
heavy imports: the library functions take them, and the CLI reads its defaults from them,
so every default is declared once."""
from __future__ import annotations

from dataclasses import dataclass

from extractors.defaults import DEFAULT_AUDIO_MODEL, DEFAULT_VISUAL_MODEL, DEFAULT_VISUAL_WEIGHTS


@dataclass(frozen=True)
class ExtractionOptions:
    visual_model: str = DEFAULT_VISUAL_MODEL  # tsn | lowlevel
    visual_weights: str = DEFAULT_VISUAL_WEIGHTS  # imagenet | random | PATH (tsn only)
    audio_model: str = DEFAULT_AUDIO_MODEL  # HF id | local dir | random | logmel
    audio_layer: int = -1  # wav2vec 2.0 hidden layer (-1 = last)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 | int8 (int8: visual backbone only)
    backend: str = "auto"  # auto | torch | openvino | onnxruntime: backbone runtime (auto: only the TSN, on ONNX Runtime or OpenVINO)
    chunk_frames: int = 64  # frames decoded and embedded per model call (bounds memory)
    prefetch_chunks: int = 4  # decoded chunks waiting per decode worker at most
    decode_threads: int = 1  # decord decoder threads per video (the models want the cores)
    decode_workers: int = 0  # videos decoded in parallel; 0 = auto (1 on CPU, 4 on a GPU)
    cache_dtype: str = "float16"  # storage dtype of the features
    flush_every: int = 16  # videos per sealed part file (work lost at most on a crash)


@dataclass(frozen=True)
class InferenceOptions:
    batch_size: int = 16  # videos (or windows) per forward pass
    max_frames: int = 4096  # longer videos are processed in windows of this many frames; 0: whole
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass(frozen=True)
class TuningOptions:
    max_videos: int = 1000  # validation videos proposal settings are chosen on at most (a fixed sample; 0: all)
    workers: int = 0  # processes scoring the candidates; 0: one per CPU core (at most 16) for large searches
    passes: int = 2  # passes of the two-stage search at most (pipeline/proposal_tuning.py); 1: the two stages once
