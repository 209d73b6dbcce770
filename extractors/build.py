"""Build feature extractors by name, or rebuild them from the settings a cache recorded.

Visual names: `tsn` (ResNet-50, weights `imagenet|random|PATH`) and `lowlevel`
(weight-free). Audio names: a Hugging Face id or local directory of a wav2vec 2.0 model
(default `DEFAULT_AUDIO_MODEL`, extractors/defaults.py), `random` (random-initialised wav2vec 2.0), and
`logmel` (weight-free), `logmel_voice` (the same plus voice descriptors). An explicit
if/else, no registry.

Every extractor's `.settings` is a plain-JSON dict with a `kind` (`tsn`, `lowlevel`,
`wav2vec2`, `logmel`), its `dim`, a `pretrained` flag and every value that changes what the
features are (weights identifier, preprocessing sizes, layer, windowing). `extractor_settings`
combines the two into the dict a cache stores, and `build_extractors_from_settings` turns it
back into extractors (how `rtdl localize` extracts a new clip exactly as the training cache
was made). Execution choices (device, precision, backend, batch size) are not part of the
settings. `--precision int8` quantises the visual backbone only: the audio backbone is built
with `auto` then (wav2vec 2.0 is ~5 % of the compute; extractors/precision.py).
"""
from __future__ import annotations

import logging
from pathlib import Path

from data.feature_settings import WEIGHT_FREE_KINDS, FeatureSettings
from extractors.defaults import DEFAULT_AUDIO_MODEL, DEFAULT_VISUAL_WEIGHTS
from extractors.weights import WeightsUnavailableError, sha256_prefix

log = logging.getLogger(__name__)

VISUAL_NAMES = ("tsn", "lowlevel")

__all__ = ["build_visual_extractor", "build_audio_extractor", "build_extractors_from_settings",
           "extractor_settings", "WeightsUnavailableError", "DEFAULT_AUDIO_MODEL",
           "VISUAL_NAMES", "pretrained_weights_on_disk"]


def build_visual_extractor(name: str = "tsn", weights: str = DEFAULT_VISUAL_WEIGHTS,
                           device: str = "cpu", precision: str = "auto", batch_size: int = 32,
                           **options):
    """Visual extractor `name` (`tsn` or `lowlevel`).

    `weights` (tsn only): `imagenet`, `random` or a path to a torchvision / mmaction2 file.
    `options` go to the extractor: tsn `resize_short`, `crop_size`, `mean`, `std`,
    `channels_last`, `fold_bn`, `seed`, `backend` (auto/torch/openvino/onnxruntime),
    `calibration_size`, `streams` (OpenVINO / ONNX Runtime runs in parallel; default one per
    thread);
    lowlevel `size`, `grid`.
    """
    if name == "tsn":
        from extractors.visual_tsn import IMAGENET_MEAN, IMAGENET_STD, TSNPreprocess, \
            TSNVisualExtractor

        preprocess = TSNPreprocess(
            resize_short=int(options.pop("resize_short", 256)),
            crop_size=int(options.pop("crop_size", 256)),
            mean=tuple(options.pop("mean", IMAGENET_MEAN)),
            std=tuple(options.pop("std", IMAGENET_STD)))
        _reject_unknown(options, "tsn", ("resize_short", "crop_size", "mean", "std",
                                         "channels_last", "fold_bn", "seed", "backend",
                                         "calibration_size", "streams"))
        return TSNVisualExtractor(weights=weights, device=device, precision=precision,
                                  batch_size=batch_size, preprocess=preprocess, **options)
    if name == "lowlevel":
        from extractors.lowlevel_visual import LowLevelVisualExtractor

        _reject_unknown(options, "lowlevel", ("size", "grid"))
        return LowLevelVisualExtractor(device=device, batch_size=batch_size, **options)
    raise ValueError(f"visual extractor {name!r}: expected one of {list(VISUAL_NAMES)}")


def build_audio_extractor(name: str = DEFAULT_AUDIO_MODEL, device: str = "cpu",
                          precision: str = "auto", layer: int = -1, **options):
    """Audio extractor: `logmel`, `random` (wav2vec 2.0), or a wav2vec 2.0 HF id / directory.

    `options`: logmel `n_mels`, `win_ms`, `hop_ms`, `f_min`, `f_max`, `voice`; wav2vec 2.0
    `window_s`, `overlap_s`, `batch_size`, `random_config` (`base`/`tiny`), `seed`, `backend`
    (auto/torch/openvino; onnxruntime means torch here: only the TSN runs on it).
    """
    if name in ("logmel", "logmel_voice"):
        from extractors.logmel import LogMelAudioExtractor

        if name == "logmel_voice":
            options = {"voice": True, **options}

        _reject_unknown(options, "logmel", ("n_mels", "win_ms", "hop_ms", "f_min", "f_max", "voice"))
        return LogMelAudioExtractor(device=device, **options)
    from extractors.audio_wav2vec import Wav2Vec2AudioExtractor

    if precision == "int8":  # int8 is the visual backbone's (see the module doc)
        precision = "auto"

    _reject_unknown(options, "wav2vec2", ("window_s", "overlap_s", "batch_size",
                                          "random_config", "seed", "backend"))
    return Wav2Vec2AudioExtractor(model=name, device=device, precision=precision, layer=layer,
                                  **options)


def extractor_settings(visual, audio) -> dict:
    """The settings dict a cache records for this pair of extractors (plain JSON types)."""
    return FeatureSettings.of_extractors(visual, audio).as_dict()


def build_extractors_from_settings(settings: dict, device: str = "cpu",
                                   precision: str = "auto", visual_weights: str | None = None,
                                   backend: str = "auto"):
    """Rebuild (visual, audio) extractors exactly as `settings` (a cache's `.settings`) describe.

    `settings` holds `visual` and `audio` sub-dicts, each an extractor's `.settings`.
    `visual_weights` overrides where a TSN weight file is found (the settings keep the
    path it had at extraction time); its sha256 must still match the recorded one.
    `backend`: the runtime of the TSN and of wav2vec 2.0 (auto/torch/openvino/onnxruntime;
    auto puts only the TSN on ONNX Runtime or OpenVINO, onnxruntime only the TSN), an
    execution choice like precision.
    """
    for part in ("visual", "audio"):
        if not isinstance(settings.get(part), dict) or "kind" not in settings[part]:
            raise ValueError(f"extractor settings: field {part!r} missing or has no 'kind' "
                             f"(got keys {sorted(settings)}); was the cache written by rtdl?")
    return (_visual_from_settings(settings["visual"], device, precision, visual_weights, backend),
            _audio_from_settings(settings["audio"], device, precision, backend))


def pretrained_weights_on_disk(visual_weights: str = DEFAULT_VISUAL_WEIGHTS,
                               audio_model: str = DEFAULT_AUDIO_MODEL) -> tuple[bool, bool]:
    """(TSN weights, wav2vec 2.0 model) available without the network, checked quickly.

    For callers such as `rtdl demo` that fall back to the weight-free extractors: a failed
    download attempt costs tens of seconds of retries, this check costs none. `random`,
    `lowlevel` and `logmel` count as not pretrained (False).
    """
    if visual_weights == "imagenet":
        import torch
        import torchvision

        url = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
        visual = (Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name).is_file()
    else:
        visual = visual_weights != "random" and Path(visual_weights).expanduser().is_file()
    if audio_model in ("random", "logmel_voice", *WEIGHT_FREE_KINDS):  # logmel: name = kind
        audio = False
    else:
        from extractors.audio_wav2vec import available_locally

        audio = available_locally(audio_model)
    return visual, audio


def _visual_from_settings(s: dict, device: str, precision: str, weights_override: str | None,
                          backend: str = "auto"):
    kind = s["kind"]
    if kind == "lowlevel":
        from extractors.lowlevel_visual import VERSION

        if s.get("version") != VERSION:
            raise ValueError(f"extractor settings: visual lowlevel version {s.get('version')!r}"
                             f" is not the one this rtdl computes ({VERSION})")
        extractor = build_visual_extractor("lowlevel", device=device, size=s["size"],
                                           grid=s["grid"])
    elif kind == "tsn":
        weights = s["weights"]
        if weights not in ("imagenet", "random"):
            weights = weights_override or weights
            if not Path(weights).is_file():
                raise WeightsUnavailableError(
                    f"the features were made with TSN weights {s.get('weights_id')} from "
                    f"{s['weights']}, which is not there; pass the file's new location "
                    "(visual_weights / --visual-weights PATH)")
            digest = sha256_prefix(weights)  # before building: a wrong file fails fast
            if digest != s.get("weights_sha256"):
                raise ValueError(f"TSN weights {weights}: sha256 prefix {digest} differs from "
                                 f"the {s.get('weights_sha256')} recorded with the features")
        elif weights_override:
            raise ValueError(f"visual_weights given, but the features were made with "
                             f"{weights!r} weights, not a file")
        extractor = build_visual_extractor(
            "tsn", weights=weights, device=device, precision=precision,
            resize_short=s["resize_short"], crop_size=s["crop_size"], mean=s["mean"],
            std=s["std"], backend=backend, **({"seed": s["seed"]} if weights == "random" else {}))
    else:
        raise ValueError(f"extractor settings: unknown visual kind {kind!r}")
    _check_dim("visual", extractor, s)
    return extractor


def _audio_from_settings(s: dict, device: str, precision: str, backend: str = "auto"):
    kind = s["kind"]
    if kind == "logmel":
        extractor = build_audio_extractor(
            "logmel", device=device, n_mels=s.get("n_mels", s["dim"]), win_ms=s["win_ms"],
            hop_ms=s["hop_ms"], f_min=s["f_min"], f_max=s["f_max"],
            voice=s.get("voice", False))  # caches from before the voice descriptors lack both keys
    elif kind == "wav2vec2":
        extra = {"random_config": s["random_config"], "seed": s["seed"]} \
            if s["name"] == "random" else {}
        extractor = build_audio_extractor(
            s["name"], device=device, precision=precision, layer=s["layer"],
            window_s=s["window_s"], overlap_s=s["overlap_s"], backend=backend, **extra)
        if s.get("revision") and extractor.settings.get("revision") != s["revision"]:
            log.warning("wav2vec 2.0 %s: revision %s differs from the %s recorded with the "
                        "features", s["name"], extractor.settings.get("revision"), s["revision"])
    else:
        raise ValueError(f"extractor settings: unknown audio kind {kind!r}")
    _check_dim("audio", extractor, s)
    return extractor


def _check_dim(part: str, extractor, s: dict) -> None:
    if extractor.dim != s.get("dim"):
        raise ValueError(f"extractor settings: {part} dim {s.get('dim')} recorded, but the "
                         f"rebuilt {s['kind']} extractor gives {extractor.dim}")


def _reject_unknown(options: dict, kind: str, known: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{kind} extractor: unknown option(s) {unknown}; known: {list(known)}")
