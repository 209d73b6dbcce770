"""TSN RGB stream: torchvision ResNet-50 without its classifier, 2048-d per frame.

Follows the feature convention of published LAV-DF / AV-Deepfake1M work: every frame,
short side resized to 256,
centre crop 256x256, ImageNet mean/std, global average pool -> 2048-d. All configurable.

Choices:
- `imagenet` means torchvision's `ResNet50_Weights.IMAGENET1K_V1` (file
  `resnet50-0676ba61.pth`), not the newer `IMAGENET1K_V2`. TSN (and mmaction2's TSN
  configs, which initialise from `torchvision://resnet50`) were trained from the V1 weights,
  so V1 features are the ones comparable with published feature sets. V2 is better on
  ImageNet but was trained with a different recipe (and evaluated at a smaller resize).
- Resizing runs in torch (bilinear with antialiasing, like PIL) on the frames as given,
  so it can run on the GPU. mmaction2's pipeline resized with OpenCV bilinear without
  antialiasing; that difference is small compared with codec noise.
- Weight files: a torchvision state dict (`conv1.weight`, ..., `fc.*` ignored) or an
  mmaction2 TSN checkpoint (`{"state_dict": {"backbone.conv1.conv.weight": ...,
  "cls_head.fc_cls.weight": ...}}`). mmaction2's ResNet wraps every conv+bn pair in a
  `ConvModule`, so its names map one-to-one onto torchvision's (see `MMACTION2_TO_TORCHVISION`),
  and its default "pytorch" style puts the stride on the 3x3 conv, as torchvision does.
  Files are read with `torch.load(weights_only=True)`; a checkpoint that pickles other
  objects is refused with a one-liner to extract its state dict (never unpickled blindly).
- `random` initialises with a fixed seed (recorded in the settings) so that a model built
  again from the cache's settings gives the same features. Random ResNet-50 features carry
  almost no signal; settings say `"pretrained": false` so every output can say so.
- Precision and batch size are execution choices and stay out of `.settings`
  (see `extractors/precision.py`).
- Inference folds every batch norm into the convolution before it (`fold_batchnorm`,
  `fold_bn=True`): BN in eval mode is a per-channel affine map, so the folded network
  computes the same function with one op fewer per conv (BENCHMARKS.md, "TSN inference
  choices"). `.model` keeps the network as loaded (its state dict has the torchvision
  names); `.inference_model` is the folded copy that runs (a constant ~50-100 MB of extra
  weights). Autocast stays, the same on CPU and CUDA; on the CPU the folded copy's conv
  weights are stored in bf16 once (`store_weights_for_autocast`), which gives autocast's
  numbers without its per-call weight casts.
- Backend (`extractors/precision.py: resolve_backend`): on CPUs without native bf16 the
  folded copy is exported to ONNX Runtime when it is installed
  (`extractors/onnxruntime_backend.py`; full extraction measured faster with it than with
  OpenVINO in paired runs), else to OpenVINO (`extractors/openvino_backend.py`, also the
  int8 runtime); both measured faster than every torch mode there (torch eager,
  TorchScript freezing, torch.compile; `benchmarks/bench_visual_backends.py`). Resizing
  and cropping stay in torch either way (one implementation of the convention); on either
  runtime the normalisation runs inside the exported network, fed channels-last 0..255
  frames, and a chunk is split into sub-batches that keep the runtime's streams busy while
  the next one is resized (`_runtime_features`).
- `--precision int8` calibrates its activation ranges on a fixed set of natural photographs
  (the colour photographs inside scikit-image's wheel, `calibration_frames`), preprocessed
  exactly as the frames are. A fixed set keeps int8 features independent of which video an
  extraction happens to start with, and the export cacheable; its fidelity to fp32 is
  measured in the benchmark and bounded in the tests.
"""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from extractors.frame_batches import as_frames, map_frame_batches
from extractors.precision import autocast, resolve_backend, resolve_precision, \
    store_weights_for_autocast
from extractors.threads import intra_op_threads
from extractors.weights import WeightsUnavailableError, list_keys, sha256_prefix

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = 2048
IMAGENET_WEIGHTS_ID = "torchvision:ResNet50_Weights.IMAGENET1K_V1"

# mmaction2 ResNet module name -> torchvision module name (a regex over the key prefix);
# the parameter suffix (weight, bias, running_mean, running_var, num_batches_tracked) is kept
MMACTION2_TO_TORCHVISION = (
    (r"^conv1\.conv\.", "conv1."),
    (r"^conv1\.bn\.", "bn1."),
    (r"^(layer\d+\.\d+)\.conv(\d)\.conv\.", r"\1.conv\2."),
    (r"^(layer\d+\.\d+)\.conv(\d)\.bn\.", r"\1.bn\2."),
    (r"^(layer\d+\.\d+)\.downsample\.conv\.", r"\1.downsample.0."),
    (r"^(layer\d+\.\d+)\.downsample\.bn\.", r"\1.downsample.1."),
)
# top-level parts of an mmaction2 recognizer that are not the backbone
_MMACTION2_IGNORED_PREFIXES = ("cls_head.", "data_preprocessor.", "neck.")


@dataclass(frozen=True)
class TSNPreprocess:
    resize_short: int = 256  # short side after resizing, pixels
    crop_size: int = 256  # side of the square centre crop, pixels (<= resize_short)
    mean: tuple[float, float, float] = IMAGENET_MEAN  # per-channel mean of [0,1] RGB
    std: tuple[float, float, float] = IMAGENET_STD  # per-channel std of [0,1] RGB

    def __post_init__(self) -> None:
        if self.crop_size > self.resize_short:
            raise ValueError(f"crop_size {self.crop_size} must not exceed resize_short "
                             f"{self.resize_short}")


def _resize_and_crop(x: torch.Tensor, cfg: TSNPreprocess) -> torch.Tensor:
    """float [N,3,H,W] -> [N,3,crop,crop]: antialiased bilinear resize of the short side, centre crop."""
    h, w = x.shape[-2:]
    scale = cfg.resize_short / min(h, w)
    new_h, new_w = max(cfg.resize_short, round(h * scale)), max(cfg.resize_short, round(w * scale))
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False,
                          antialias=True)  # [N,3,new_h,new_w]
    top = int(round((new_h - cfg.crop_size) / 2.0))
    left = int(round((new_w - cfg.crop_size) / 2.0))
    return x[:, :, top:top + cfg.crop_size, left:left + cfg.crop_size]  # [N,3,crop,crop]


def preprocess_frames(frames: torch.Tensor, cfg: TSNPreprocess) -> torch.Tensor:
    """uint8 RGB frames [N,H,W,3] -> normalised float32 [N,3,crop,crop] on frames' device."""
    x = _resize_and_crop(frames.permute(0, 3, 1, 2).float().div_(255.0), cfg)  # [0,1]
    mean = torch.tensor(cfg.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def resize_frames_channels_last(frames: torch.Tensor, cfg: TSNPreprocess) -> torch.Tensor:
    """uint8 RGB frames [N,H,W,3] -> float32 [N,crop,crop,3] in 0..255, resized and cropped
    as `preprocess_frames` does but not normalised (the OpenVINO backend normalises).

    Resizing is linear with weights summing to one, so resizing 0..255 and then scaling
    equals scaling and then resizing up to float rounding. The frames' NHWC memory is kept
    throughout: the permuted view has channels-last strides, `interpolate` keeps them, and
    the result is contiguous NHWC without a copy when no crop is needed.
    """
    x = _resize_and_crop(frames.permute(0, 3, 1, 2).float(), cfg)  # [N,3,crop,crop], NHWC strides
    return x.permute(0, 2, 3, 1).contiguous()  # [N,crop,crop,3]


def _fold_conv_bn(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> torch.nn.Conv2d:
    """A conv with bias computing bn(conv(x)) for a batch norm in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # [C_out]
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                            stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                            groups=conv.groups, bias=True, padding_mode=conv.padding_mode,
                            device=conv.weight.device)
    fused.weight = torch.nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
    fused.bias = torch.nn.Parameter((bias - bn.running_mean) * scale + bn.bias,
                                    requires_grad=False)
    return fused


@torch.no_grad()
def fold_batchnorm(model: torchvision.models.ResNet) -> torchvision.models.ResNet:
    """Copy of a torchvision ResNet (eval mode) with each BN folded into its conv.

    Every BN in torchvision's ResNet directly follows a conv: `conv1`/`bn1` at the stem,
    `convK`/`bnK` in each bottleneck block, `downsample[0]`/`downsample[1]` on the shortcut.
    The folded BN becomes `Identity`, so module names and the forward code stay torchvision's.
    """
    folded = copy.deepcopy(model).eval()
    blocks = [block for layer in (folded.layer1, folded.layer2, folded.layer3, folded.layer4)
              for block in layer]  # Bottleneck blocks
    pairs = [(folded, "conv1", "bn1")] + [(block, f"conv{i}", f"bn{i}")
                                          for block in blocks for i in (1, 2, 3)]
    for parent, conv_name, bn_name in pairs:
        setattr(parent, conv_name, _fold_conv_bn(getattr(parent, conv_name),
                                                 getattr(parent, bn_name)))
        setattr(parent, bn_name, torch.nn.Identity())
    for block in blocks:
        if block.downsample is not None:
            conv, bn = block.downsample
            block.downsample = torch.nn.Sequential(_fold_conv_bn(conv, bn), torch.nn.Identity())
    return folded


def mmaction2_to_torchvision_key(key: str) -> str:
    """Rename one mmaction2 ResNet backbone key (without `backbone.`) to torchvision's name."""
    for pattern, replacement in MMACTION2_TO_TORCHVISION:
        renamed, n = re.subn(pattern, replacement, key)
        if n:
            return renamed
    return key  # unknown names stay as they are and are reported as unexpected


def read_resnet_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Backbone state dict in torchvision names from a torchvision or mmaction2 file.

    Returns (state_dict without `fc.*`, format name "torchvision" or "mmaction2").
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"visual weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle errors come in many types
        raise ValueError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({err}). If it is an "
            "mmaction2 checkpoint that pickles extra objects and you trust it, save only its "
            "weights: python -c \"import torch; c = torch.load('IN', weights_only=False); "
            "torch.save(c['state_dict'], 'OUT')\" and pass OUT") from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (name -> tensor) or a checkpoint with "
                         "a 'state_dict' field")
    state = {k.removeprefix("module."): v for k, v in obj.items()}  # DataParallel saves

    if any(k.startswith("backbone.") for k in state):
        ignored = [k for k in state if k.startswith(_MMACTION2_IGNORED_PREFIXES)]
        strays = [k for k in state if not k.startswith("backbone.") and k not in ignored]
        if strays:
            raise ValueError(f"{path}: mmaction2 checkpoint has unexpected keys outside "
                             f"backbone./cls_head.: {list_keys(strays)}")
        mapped = {mmaction2_to_torchvision_key(k.removeprefix("backbone.")): v
                  for k, v in state.items() if k.startswith("backbone.")}
        return mapped, "mmaction2"
    return {k: v for k, v in state.items() if not k.startswith("fc.")}, "torchvision"


def _load_backbone_weights(model: torch.nn.Module, state: dict[str, torch.Tensor],
                           source: str) -> None:
    """Strict load that names every missing or unexpected key and shape mismatch."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {list_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {list_keys(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches: {list_keys(mismatched)}")
        raise ValueError(f"{source}: weights do not fit torchvision ResNet-50: "
                         + "; ".join(parts))
    # assign=True also materialises a model built on the meta device (no wasted random init)
    model.load_state_dict(state, strict=True, assign=True)


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet V1 weights from the torch hub cache, downloading if allowed."""
    weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # noqa: BLE001 - URLError, socket errors, hash errors
        raise WeightsUnavailableError(
            f"cannot load ImageNet ResNet-50 weights ({err}). Offline: download {weights.url} "
            f"on a machine with internet and put it at {target} (the torch hub cache; set "
            "TORCH_HOME to move it), or pass a local file with --visual-weights PATH, or use "
            "--visual-weights random / --visual-model lowlevel") from err


def build_resnet50_backbone(weights: str, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """ResNet-50 with `fc` replaced by identity (output = global-average-pooled 2048-d).

    Returns (model in eval mode on CPU, weight description for the settings).
    """
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # random init is part of the identity for "random"
            model = torchvision.models.resnet50(weights=None)
    else:
        with torch.device("meta"):  # shapes only: every tensor comes from the weights
            model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Identity()
    if weights == "random":
        info = {"weights": "random", "weights_id": f"random-init:seed={seed}",
                "weights_sha256": None, "weights_format": None, "pretrained": False,
                "seed": seed}
    elif weights == "imagenet":
        state = {k: v for k, v in _imagenet_state_dict().items() if not k.startswith("fc.")}
        _load_backbone_weights(model, state, IMAGENET_WEIGHTS_ID)
        info = {"weights": "imagenet", "weights_id": IMAGENET_WEIGHTS_ID,
                "weights_sha256": "0676ba61", "weights_format": "torchvision",
                "pretrained": True}
    else:
        path = Path(weights).expanduser().resolve()
        state, fmt = read_resnet_state_dict(path)
        _load_backbone_weights(model, state, str(path))
        digest = sha256_prefix(path)
        info = {"weights": str(path), "weights_id": f"file:{path.name}#sha256:{digest}",
                "weights_sha256": digest, "weights_format": fmt, "pretrained": True}
    return model.eval(), info


# colour photographs shipped inside scikit-image's wheel (no download): int8 calibration
CALIBRATION_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina")


def calibration_frames(n: int = 64, size: int = 320, seed: int = 0) -> np.ndarray:
    """uint8 RGB frames [n,size,size,3]: random square crops of scikit-image's photographs.

    Crops of random position and scale (40-100 % of the short side), so the set covers
    close-ups and wide shots; deterministic for a seed.
    """
    import skimage.data
    import skimage.transform

    rng = np.random.default_rng(seed)
    photos = [np.asarray(getattr(skimage.data, name)())[..., :3] for name in CALIBRATION_PHOTOS]
    frames = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = photo[top:top + side, left:left + side]
        frames[i] = (skimage.transform.resize(crop, (size, size), anti_aliasing=True,
                                              preserve_range=True)).round().astype(np.uint8)
    return frames


class TSNVisualExtractor:
    """Per-frame TSN RGB features: uint8 frames [N,H,W,3] -> float32 [N,2048]."""

    name = "tsn"
    dim = FEATURE_DIM

    def __init__(self, weights: str = "imagenet", device: str | torch.device = "cpu",
                 precision: str = "auto", batch_size: int = 32,
                 preprocess: TSNPreprocess = TSNPreprocess(), channels_last: bool = True,
                 seed: int = 0, fold_bn: bool = True, backend: str = "auto",
                 calibration_size: int = 64, streams: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size  # frames per forward pass
        self.preprocess = preprocess
        self.channels_last = channels_last  # NHWC convolutions: ~1.5x faster on CPU
        model, weight_info = build_resnet50_backbone(weights, seed=seed)
        self.model = model.to(self.device)  # the network as loaded (torchvision names)
        self.fold_bn = fold_bn  # run a BN-folded copy: same function, fewer ops
        self.inference_model = fold_batchnorm(self.model) if fold_bn else self.model
        if channels_last:
            self.inference_model = self.inference_model.to(memory_format=torch.channels_last)
        self.backend = resolve_backend(backend, self.precision, self.device)
        self._runtime = None  # the OpenVINO or ONNX Runtime model, when not torch
        self.resize_threads: int | None = None  # torch threads of the resize next to the runtime
        if self.backend == "openvino":
            self._runtime = self._export_openvino(calibration_size, streams)
        elif self.backend == "onnxruntime":
            from extractors.onnxruntime_backend import ORTModel

            crop = self.preprocess.crop_size
            self._runtime = ORTModel(self.inference_model, (3, crop, crop), streams=streams,
                                     input_norm=self._input_norm())
        elif fold_bn:  # the folded copy is ours: bf16 conv weights once instead of per call
            store_weights_for_autocast(self.inference_model, self.precision, self.device)
        self.settings = {
            "kind": "tsn", "name": self.name, "stream": "rgb", "arch": "resnet50",
            "dim": self.dim, **weight_info,
            "resize_short": preprocess.resize_short, "crop_size": preprocess.crop_size,
            "mean": list(preprocess.mean), "std": list(preprocess.std),
        }
        log.info("TSN ResNet-50 (%s) on %s, %s backend, precision %s, batch %d",
                 weight_info["weights_id"], self.device, self.backend, self.precision, batch_size)

    def _input_norm(self):
        """The normalisation for 0..255 channels-last frames, run inside OpenVINO / ONNX Runtime."""
        from extractors.openvino_backend import InputNorm

        cfg = self.preprocess
        return InputNorm(mean=tuple(255.0 * m for m in cfg.mean),
                         std=tuple(255.0 * s for s in cfg.std))

    def _export_openvino(self, calibration_size: int, streams: int | None):
        from extractors.openvino_backend import OpenVINOModel

        cfg = self.preprocess
        calibration_id = None
        if self.precision == "int8":
            calibration_id = (f"skimage-photos:n={calibration_size}:seed=0:resize={cfg.resize_short}:"
                              f"crop={cfg.crop_size}:mean={cfg.mean}:std={cfg.std}")

        def calibration() -> list[torch.Tensor]:
            frames = torch.from_numpy(calibration_frames(calibration_size))
            return [preprocess_frames(frames[i:i + 16], cfg)
                    for i in range(0, calibration_size, 16)]

        # the network is exported as it runs in torch (normalised NCHW input, so int8
        # calibration and the export cache are unchanged); OpenVINO normalises the 0..255
        # channels-last frames in front of it
        return OpenVINOModel(self.inference_model, (3, cfg.crop_size, cfg.crop_size),
                             precision=self.precision, calibration=calibration,
                             calibration_id=calibration_id, input_norm=self._input_norm(),
                             streams=streams)

    def start_video(self) -> None:
        """TSN features are per frame: no state to reset (kept for the extractor interface)."""

    def _batch_features(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames [b,H,W,3] (CPU) -> features [b,2048] on the extractor's device."""
        # move uint8 (4x smaller than float) to the device, preprocess there
        batch = batch.to(self.device, non_blocking=True)
        x = preprocess_frames(batch, self.preprocess)  # [b,3,crop,crop]
        # preprocessing permutes NHWC frames, so x already has channels-last strides;
        # without channels_last the model gets a truly contiguous NCHW tensor, else
        # PyTorch would silently pick channels-last kernels anyway
        x = x.contiguous(memory_format=torch.channels_last if self.channels_last
                         else torch.contiguous_format)
        with autocast(self.precision, self.device):
            return self.inference_model(x)  # [b,2048]

    def _runtime_features(self, frames: torch.Tensor) -> np.ndarray:
        """uint8 RGB frames [N,H,W,3] (CPU) -> float32 features [N,2048] (numpy) on OpenVINO
        or ONNX Runtime (the same interface: `streams`, `map`).

        The frames go in sub-batches, two per stream for each `batch_size` frames: while the
        streams run, this thread resizes the next sub-batch, so the preprocessing overlaps
        the network instead of adding to it, and the last sub-batches of a chunk still find
        every stream busy. Normalisation runs inside the runtime (`InputNorm`).
        """
        n = frames.shape[0]
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = max(1, -(-min(n, self.batch_size) // (2 * self._runtime.streams)))  # ceil
        inputs = (resize_frames_channels_last(frames[start:start + step], self.preprocess)
                  for start in range(0, n, step))  # [b,crop,crop,3] each
        with intra_op_threads(self.resize_threads, self.device):
            return self._runtime.map(inputs).numpy()  # [N,2048]

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 RGB frames [N,H,W,3] -> float32 features [N,2048] (numpy)."""
        if self._runtime is not None:
            return self._runtime_features(as_frames(frames, "TSN"))
        return map_frame_batches(frames, self.batch_size, self.dim, "TSN", self._batch_features)
