"""wav2vec 2.0 audio features: 768-d (base) or 1024-d (large) vectors at 50 Hz.

`Wav2Vec2Model` (transformers) from a Hugging Face id (default
`facebook/wav2vec2-base-960h`), a local directory, or `random` (random initialisation with
a fixed seed; the full base config by default, `random_config="tiny"` for tests).

Choices:
- Frame timing comes from the convolutional feature encoder: its receptive field is 400
  samples and its hop 320 samples at 16 kHz, so a wave of S >= 400 samples gives
  floor((S - 400) / 320) + 1 frames and frame j covers samples [320 j, 320 j + 400), centre
  (320 j + 200) / 16000 s. Waves shorter than 400 samples are zero-padded to 400 (1 frame).
- Input normalisation follows the checkpoint's feature extractor (`do_normalize` in its
  preprocessor_config.json; True when absent, as in every public wav2vec 2.0 checkpoint):
  zero mean, unit variance over the whole clip, computed once before windowing, which is
  what the feature extractor does when handed the clip; per-window statistics would make
  features depend on where the window borders fall.
- Long audio runs in overlapping windows (default 20 s with 1 s overlap) so memory does not
  grow with clip length. Windows start on the 320-sample frame grid, so window frames map
  to clip frames exactly; the last window is shifted back to end at the clip end so every
  window has full length (no padding, one batch shape). Each output frame is taken from the
  window where it lies furthest from a border: neighbouring windows split their overlap in
  the middle. Clips up to one window long run in a single pass.
- Attention mask: none for `feat_extract_norm == "group"` checkpoints (base models were
  trained without one: padding is zeros and no mask); layer-norm checkpoints (large / lv60)
  get a mask. Windows have equal length, so padding only happens when windows of different
  lengths share a batch, which the windowing above avoids; the mask code path is there for
  layer-norm models and keeps them correct if that ever changes.
- Layer: `layer=-1` (default) is the model output `last_hidden_state`; `0` is the
  transformer input (projected CNN features + positional conv) and `k` the output of
  transformer layer k (`output_hidden_states`). For stable-layer-norm models the intermediate
  layers come before the final layer norm, as transformers returns them.
- Precision (autocast), batch size and backend are execution choices and stay out of
  `.settings`.
- Backend: torch unless `backend="openvino"` (`--backend openvino`), then fp32 runs on
  OpenVINO (`extractors/openvino_backend.py`); `--backend onnxruntime` moves only the TSN. `auto` stays torch, unlike the TSN's: on the
  2-core AVX2 CPU OpenVINO ran the audio pass 3-16 % faster in paired runs (wav2vec 2.0 is
  ~6 % of a full extraction), too little to show in full extraction, while its first export
  traces the model for ~20-30 s (BENCHMARKS.md, "Extraction on an AVX2-only CPU"). The
  network that returns the chosen layer (`HiddenLayer`) is exported once per weights and
  layer and cached, with the batch and the wave length dynamic (a clip under one window is
  one pass over its own length: padding it would change the group-norm statistics, and a
  static shape per length would compile a model per clip). Everything above
  (normalisation, windows, which frames are kept) stays here in torch and numpy, so both
  backends compute the same features (within float rounding). OpenVINO runs one
  latency-hint request on every thread: the audio pass runs alone, before a video's frames.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from extractors.memory import release_freed_memory
from extractors.defaults import DEFAULT_AUDIO_MODEL
from extractors.precision import autocast, resolve_backend, resolve_precision, \
    store_weights_for_autocast
from extractors.weights import WeightsUnavailableError, sha256_prefix

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
RECEPTIVE_FIELD = 400  # samples seen by one output frame of the conv feature encoder
HOP = 320  # samples between output frames (product of the conv strides): 50 Hz

# small enough for tests (a few thousand parameters), same conv geometry as the real models
TINY_CONFIG = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=32, conv_dim=(8, 8, 8, 8, 8, 8, 8),
                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
RANDOM_CONFIGS = {"base": {}, "tiny": TINY_CONFIG}  # overrides of Wav2Vec2Config()


def n_frames_for(n_samples: int) -> int:
    """Output frames of the conv encoder for a wave of `n_samples` (>= 400) samples."""
    return (n_samples - RECEPTIVE_FIELD) // HOP + 1


def frame_centre_times(first_frame: int, n: int) -> np.ndarray:
    """Centre times in seconds, float64 [n], of frames first_frame .. first_frame + n - 1."""
    index = np.arange(first_frame, first_frame + n, dtype=np.float64)
    return (index * HOP + RECEPTIVE_FIELD / 2) / SAMPLE_RATE


def plan_windows(total_frames: int, window_frames: int, overlap_frames: int
                 ) -> list[tuple[int, int, int]]:
    """Windows covering `total_frames` frames: list of (window_start, keep_start, keep_end).

    Every window spans `window_frames` frames (the last one is shifted back to end at the
    clip end); the kept ranges tile [0, total_frames) without gaps or overlaps.
    """
    if total_frames <= window_frames:
        return [(0, 0, total_frames)]
    step = window_frames - overlap_frames
    starts = list(range(0, total_frames - window_frames, step)) + [total_frames - window_frames]
    plan = []
    keep_start = 0
    for i, start in enumerate(starts):
        if i + 1 < len(starts):  # split the overlap with the next window in the middle
            keep_end = (starts[i + 1] + start + window_frames) // 2
        else:
            keep_end = total_frames
        plan.append((start, keep_start, keep_end))
        keep_start = keep_end
    return plan


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False when HF_HUB_OFFLINE is set).

    Checked before a download is attempted: offline, huggingface_hub retries each file for
    about 30 s and logs every retry, burying the one message that says what to do.
    """
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _unavailable(name: str, reason: str) -> WeightsUnavailableError:
    hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return WeightsUnavailableError(
        f"cannot load wav2vec 2.0 model {name!r}: {reason}. On a machine with internet run "
        f"`huggingface-cli download {name} --local-dir DIR`, copy DIR here and pass "
        f"--audio-model DIR, or point HF_HOME (now {hf_home}) / HF_HUB_CACHE at a cache that "
        f"holds it; without weights use --audio-model logmel")


def _load_pretrained(name: str):
    """(model, do_normalize, revision-or-sha) for a Hugging Face id or a local directory.

    A hub id is looked up in the local cache first; the hub is asked only when the cache
    lacks it and the hub can be reached, so offline the failure is one message at once.
    """
    from transformers import Wav2Vec2Model

    local = Path(name).expanduser()
    source = str(local) if local.is_dir() else name
    # fp32 master weights whatever the file stores (transformers 5 defaults to the file's
    # dtype); lower precision comes from autocast, so `--precision fp32` means fp32
    local_only = True
    try:
        model = Wav2Vec2Model.from_pretrained(source, dtype=torch.float32, local_files_only=True)
    except OSError as err:
        if local.is_dir():
            raise _unavailable(name, f"the folder does not hold a loadable model "
                                     f"({str(err).strip().splitlines()[0]})") from err
        if not hub_reachable():
            raise _unavailable(name, "it is not in the Hugging Face cache and the hub cannot be "
                                     "reached (offline, or HF_HUB_OFFLINE is set)") from err
        local_only = False
        try:
            model = Wav2Vec2Model.from_pretrained(source, dtype=torch.float32)
        except OSError as download_err:
            first = str(download_err).strip().splitlines()[0] if str(download_err).strip() else ""
            raise _unavailable(name, f"it is not in the Hugging Face cache and the download "
                                     f"failed ({first})") from download_err
    do_normalize = True
    try:  # the feature extractor's own setting; missing file -> the public default (True)
        from transformers import Wav2Vec2FeatureExtractor

        fe = Wav2Vec2FeatureExtractor.from_pretrained(source, local_files_only=local_only)
        do_normalize = bool(fe.do_normalize)
    except OSError:
        log.warning("%s has no preprocessor_config.json; normalising input (do_normalize=True)",
                    name)
    if local.is_dir():
        files = sorted(p for p in local.iterdir()
                       if p.suffix in (".safetensors", ".bin") and p.is_file())
        revision = "sha256:" + sha256_prefix(files[0]) if files else None
    else:
        revision = getattr(model.config, "_commit_hash", None)
    return model, do_normalize, revision


def available_locally(name: str) -> bool:
    """True when model `name` (HF id or directory) loads without the network."""
    local = Path(name).expanduser()
    if local.is_dir():
        return (local / "config.json").is_file()
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> bool:
        return isinstance(try_to_load_from_cache(name, filename), str)

    return cached("config.json") and (cached("model.safetensors") or cached("pytorch_model.bin"))


def _build_random(config_name: str, seed: int):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    if config_name not in RANDOM_CONFIGS:
        raise ValueError(f"random_config {config_name!r}: expected one of {list(RANDOM_CONFIGS)}")
    config = Wav2Vec2Config(**RANDOM_CONFIGS[config_name])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # part of the identity: rebuilding gives the same model
        model = Wav2Vec2Model(config)
    return model


class HiddenLayer(torch.nn.Module):
    """wav2vec 2.0 with one output, what the OpenVINO export needs: waves [B,S] -> the hidden
    state [B,M,dim] at `layer` (0..num_layers; num_layers = last_hidden_state), as
    `Wav2Vec2AudioExtractor._forward` takes it from the torch model (no attention mask: the
    OpenVINO path never pads)."""

    def __init__(self, model: torch.nn.Module, layer: int):
        super().__init__()
        self.model = model
        self.layer = layer

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        if self.layer == self.model.config.num_hidden_layers:
            return self.model(waves).last_hidden_state
        return self.model(waves, output_hidden_states=True).hidden_states[self.layer]


class Wav2Vec2AudioExtractor:
    """wav2vec 2.0 features: float32 wave [S] at 16 kHz -> ([M,dim] float32, [M] float64 s)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, model: str = DEFAULT_AUDIO_MODEL, device: str | torch.device = "cpu",
                 precision: str = "auto", layer: int = -1, window_s: float = 20.0,
                 overlap_s: float = 1.0, batch_size: int = 4, random_config: str = "base",
                 seed: int = 0, backend: str = "auto"):
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size  # windows per forward pass
        self.window_frames = int(round(window_s * SAMPLE_RATE / HOP))  # 20 s -> 1000 frames
        self.overlap_frames = int(round(overlap_s * SAMPLE_RATE / HOP))
        if self.window_frames < 1 or not 0 <= self.overlap_frames < self.window_frames:
            raise ValueError(f"need window_s > 0 and 0 <= overlap_s < window_s, got "
                             f"window_s={window_s}, overlap_s={overlap_s}")
        if model == "random":
            net, do_normalize, revision = _build_random(random_config, seed), True, None
        else:
            net, do_normalize, revision = _load_pretrained(model)
        self.model = net.eval().to(self.device)
        store_weights_for_autocast(self.model, self.precision, self.device)  # no per-call casts
        config = self.model.config
        n_layers = config.num_hidden_layers
        if not -(n_layers + 1) <= layer <= n_layers:
            raise ValueError(f"layer {layer} out of range for {model!r}, which has {n_layers} "
                             f"transformer layers (valid: {-(n_layers + 1)}..{n_layers})")
        self.layer = layer % (n_layers + 1)  # 0..n_layers; n_layers = last_hidden_state
        # auto -> torch: OpenVINO's gain here did not show end to end (module doc);
        # onnxruntime is the TSN's runtime only, wav2vec 2.0 then stays on torch
        self.backend = resolve_backend("torch" if backend in ("auto", "onnxruntime") else backend,
                                       self.precision, self.device)
        self._openvino = None
        if self.backend == "openvino":
            from extractors.openvino_backend import OpenVINOModel

            # traced at 1 s of audio; batch and length stay dynamic
            self._openvino = OpenVINOModel(HiddenLayer(self.model, self.layer), (-1,),
                                           example_shape=(SAMPLE_RATE,), precision=self.precision,
                                           streams=1, variant=f"wav2vec2-layer{self.layer}")
        self.do_normalize = do_normalize
        self.use_attention_mask = config.feat_extract_norm == "layer"
        self.name = model
        self.dim = config.hidden_size
        self.settings = {
            "kind": "wav2vec2", "name": model, "dim": self.dim, "layer": layer,
            "num_layers": n_layers, "pretrained": model != "random", "revision": revision,
            "random_config": random_config if model == "random" else None,
            "seed": seed if model == "random" else None,
            "sample_rate": SAMPLE_RATE, "frame_rate_hz": SAMPLE_RATE / HOP,
            "do_normalize": do_normalize, "feat_extract_norm": config.feat_extract_norm,
            "window_s": window_s, "overlap_s": overlap_s,
        }
        log.info("wav2vec 2.0 %s (%d-d, layer %d) on %s, %s backend, precision %s", model,
                 self.dim, self.layer, self.device, self.backend, self.precision)

    def start_video(self) -> None:
        """Windows never span videos: no state to reset (kept for the extractor interface)."""

    def _forward(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """Run a batch of waves [S_i] -> list of features [M_i, dim] at the chosen layer."""
        lengths = [int(w.shape[0]) for w in waves]
        if self._openvino is not None:
            return self._openvino_forward(waves)
        batch = torch.zeros(len(waves), max(lengths), device=self.device)  # [B,S] zero pad
        for i, w in enumerate(waves):
            batch[i, :lengths[i]] = w
        mask = None
        if self.use_attention_mask:
            mask = torch.zeros(batch.shape, dtype=torch.long, device=self.device)  # 1 = valid
            for i, n in enumerate(lengths):
                mask[i, :n] = 1
        want_hidden = self.layer != self.model.config.num_hidden_layers
        with autocast(self.precision, self.device):
            out = self.model(batch, attention_mask=mask, output_hidden_states=want_hidden)
        hidden = out.hidden_states[self.layer] if want_hidden else out.last_hidden_state
        hidden = hidden.float()  # [B,M_max,dim]
        return [hidden[i, :n_frames_for(n)] for i, n in enumerate(lengths)]

    def _openvino_forward(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """`_forward` on OpenVINO. Windows of one clip have equal length (`plan_windows`), so
        they go as one batch without padding; should lengths ever differ, each length runs
        as a batch of its own instead of being padded (no mask in the export)."""
        out: list[torch.Tensor | None] = [None] * len(waves)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(waves):
            by_length.setdefault(int(w.shape[0]), []).append(i)
        for length, index in by_length.items():
            hidden = self._openvino(torch.stack([waves[i] for i in index]))  # [b,M,dim]
            for row, i in enumerate(index):
                out[i] = hidden[row, :n_frames_for(length)]
        return out

    @torch.inference_mode()
    def __call__(self, wave: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """float32 wave [S] at 16 kHz -> (features float32 [M,dim], centre times float64 [M])."""
        wave = torch.as_tensor(wave, dtype=torch.float32).to(self.device)
        if wave.ndim != 1:
            raise ValueError(f"wav2vec 2.0 expects a mono wave [S], got shape {tuple(wave.shape)}")
        if wave.shape[0] < RECEPTIVE_FIELD:
            wave = torch.nn.functional.pad(wave, (0, RECEPTIVE_FIELD - wave.shape[0]))
        if self.do_normalize:  # whole-clip statistics, as Wav2Vec2FeatureExtractor computes
            wave = (wave - wave.mean()) / torch.sqrt(wave.var(unbiased=False) + 1e-7)
        total = n_frames_for(wave.shape[0])
        plan = plan_windows(total, self.window_frames, self.overlap_frames)
        # a single window takes the whole wave: the trailing < 320 samples that end no frame
        # still enter the group-norm statistics of the first conv layer, as in a plain pass
        window_samples = wave.shape[0] if len(plan) == 1 else \
            (self.window_frames - 1) * HOP + RECEPTIVE_FIELD
        pieces = []
        for b in range(0, len(plan), self.batch_size):
            chunk = plan[b:b + self.batch_size]
            waves = [wave[start * HOP:start * HOP + window_samples] for start, _, _ in chunk]
            for (start, keep_start, keep_end), feats in zip(chunk, self._forward(waves)):
                # a copy, so the window's whole hidden state is not kept alive by a view
                pieces.append(feats[keep_start - start:keep_end - start].clone())  # [kept,dim]
            if len(plan) > 1:
                release_freed_memory()  # keeps peak memory at one window's, see extractors/memory.py
        features = torch.cat(pieces).cpu().numpy()  # [M,dim]
        return features, frame_centre_times(0, total)
