"""`rtdl synth`: write a synthetic forged-video benchmark with exact ground truth.

Output (LAV-DF layout): `<out>/{train,dev,test,test_unseen}/NNNNNN.mp4` (H.264 yuv420p +
AAC mono 16 kHz), `<out>/metadata.json` (a JSON list of LAV-DF records) and
`<out>/synth_config.json` (the settings and package version that made it).

Each record has the LAV-DF fields (`file`, `split`, `duration`, `video_frames`, `n_fakes`,
`fake_periods`, `modify_video`, `modify_audio`, `audio_channels`, `audio_frames`,
`original`) plus `fps`, `visual_fake_periods`, `audio_fake_periods`,
`visual_forgery_types` / `audio_forgery_types` (the forgery name of each period, in the
same order) and `forgery_types` (sorted distinct names in the clip).

Choices:
- Times are exact frame boundaries: a span of frames [a, b) is written as [a/fps, b/fps].
  `fake_periods` is the union of the visual and audio periods (overlapping or touching
  periods merged), as LAV-DF gives one list per video.
- Held-out forgery types (default `face_blur` and `time_stretch`: a quality/blending
  artefact and a tempo artefact, unlike every seen type: re-rendered content
  (`mouth_resync`, `face_swap`), stalled frames (`frozen_frames`), another voice
  (`revoice`, `splice`) or a lost spectral detail (`spectral_smooth`)) appear only in
  `test_unseen`; train/dev/test use only the others. Each modality must keep at least one
  seen and one held-out type, so every split can hold all four classes.
- Validation types (`validation_types`, none by default): types held out of train, test
  and test_unseen that appear only in dev, in a share of its fake clips
  (`validation_share`, default half; in such a clip every forged modality that has
  validation types draws from them, the other from the seen types). Without them dev holds
  only seen types, so whatever is chosen on dev (best epoch, proposal settings) is chosen
  for seen forgeries and can never value generalisation; with them dev measures it
  honestly without touching test_unseen's types. The intended pair is `face_recolour` and
  `pitch_shift`, added for this: a colour cast is a kind of artefact none of the other
  types is (`face_swap` moves towards another real person's skin, texture and eyes;
  a recolour keeps everything but the colour and leaves the skin tones), and a pitch shift
  changes pitch and timbre while the words and tempo stay (`revoice` and `splice` bring
  another voice or other words, `time_stretch` another tempo). They are opt-in
  (`OPT_IN_TYPES`): a type appears only where named in `unseen_types` or
  `validation_types`, so with the defaults the seen types, the plan and every file of a
  seed are what they were before these types existed (tested). The validation coin is
  drawn from a generator of its own per clip, and only when there are validation types,
  so they change the forgery names of a plan, never its clip lengths or span positions.
  Measured on the 2,100-clip benchmark (BENCHMARKS.md, "The FDN trained on authentic clips
  inside the model"): the visual learned deviation, trained on face swaps, marks a
  recolour (frame AUC 0.75), so in practice the two share a kind of artefact, and a dev
  with these types chose no better localizers for test_unseen's types.
- Split sizes come from `split_fractions` (default 60/10/15/15 % for train/dev/test/
  test_unseen) with at least 4 clips per split, and classes are balanced within each split
  (round robin over the four classes, then shuffled), so `num_videos >= 16`.
- Forged spans are 0.2-2 s, up to 3 per forged modality (`segment_s`, `max_segments`): on
  4-6 s clips that forges more than half of the modality in about 29 % of the fake clips,
  more than the public benchmarks do (AV-Deepfake1M describes small manipulated segments
  embedded in real videos). Where most of a clip is forged, "how this clip usually looks"
  is the forgery, and clip-relative evidence points at the authentic frames
  (BENCHMARKS.md, "Why held-out blur came out inverted"). Shorter spans (`--segment 0.2,1.2`
  with `max_segments=2`) were measured on the demo and kept out of the default for now:
  AP at high IoU falls on short spans (BENCHMARKS.md, same section).
- Speech (`speech`): "formant" (default) is the built-in speech described below;
  "espeak" has every clip's words, random common English
  words in phrases, spoken by eSpeak NG with a voice of its own (accent, variant, pitch,
  range, rate; `data/synth/tts.py`); a re-voiced span is the same text by another voice at
  the same pace, a splice another voice's other words. eSpeak's samples vary slightly
  from run to run (data/synth/tts.py), so with "espeak" a seed fixes words, voices, spans
  and labels but not every audio sample; "formant", the default for that reason, is
  random vowel syllables (`data/synth/speech.py`), with no words for an
  autoencoder to predict from context (BENCHMARKS.md, "Real words in the synth").
  In both the rendered mouth opens with the clip's own speech (its loudness; for "formant"
  also the vowel).
- `original` is null: fakes are not made from a separate real clip of the set.
- Clip lengths are drawn uniformly in `duration_s` and rounded to whole frames, so
  `duration = video_frames / fps` exactly; `audio_frames = round(duration * sample_rate)`.
- Deterministic (with the default "formant" speech): the plan comes from `seed`, each clip
  from (seed, index); the encoder runs
  with one thread and bitexact flags; nothing time-dependent is written. Workers only
  change the speed, not the files (checked: 1 and 2 workers give identical folders).
- Writing into a folder that already holds a dataset overwrites its files and metadata;
  clips of an earlier, larger run stay on disk but are not listed in the new metadata.

Speed (defaults: 4-6 s clips, 96x96, 25 fps): rendering takes about 0.46 s of Python CPU
per 5 s clip (0.30 s before the photographic backgrounds, camera zoom and moving objects;
`time.process_time` over 10 clips) plus ~0.1 s of ffmpeg CPU, so 100 clips take about a
minute of one core (wall time grows when other jobs share the cores).
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data.atomic import write_atomic
from data.config import from_dict, to_dict
from data.labels import LABELS, is_modified
from data.synth.clip import SPEECH_ENGINES, ClipSpec, make_clip, plan_spans
from data.synth.forgeries import AUDIO_FORGERIES, VISUAL_FORGERIES
from data.synth.tts import engine
from data.synth.writer import write_mp4
from data.version import __version__

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test", "test_unseen")
UNSEEN_SPLIT = "test_unseen"
VALIDATION_SPLIT = "dev"
MIN_PER_SPLIT = len(LABELS)  # one clip of each class
# types added after seeds were published: they take part only where named in unseen_types or
# validation_types, so that a seed's dataset (which draws among the seen types) stays the same
OPT_IN_TYPES = ("face_recolour", "pitch_shift")
# frame sizes decord 0.6 cannot read back (its frame copy fails: "from_size == to_size");
# measured by encoding and decoding every even size from 32 to 168 with write_mp4
DECORD_UNREADABLE_SIZES = (48, 72)


@dataclass(frozen=True)
class SynthConfig:
    num_videos: int = 100  # clips over all splits
    seed: int = 0  # the whole dataset is a function of this seed
    duration_s: tuple[float, float] = (4.0, 6.0)  # clip length range, seconds (min == max: fixed)
    fps: float = 25.0  # video frame rate
    size: int = 96  # frame height = width, pixels (even)
    sample_rate: int = 16000  # audio sample rate, Hz
    split_fractions: tuple[float, ...] = (0.6, 0.1, 0.15, 0.15)  # train, dev, test, test_unseen
    unseen_types: tuple[str, ...] = ("face_blur", "time_stretch")  # only in test_unseen
    # only in dev, in a share of its fake clips: generalisation measured without test_unseen
    validation_types: tuple[str, ...] = ()
    validation_share: float = 0.5  # chance that a dev fake clip is a validation clip
    segment_s: tuple[float, float] = (0.2, 2.0)  # forged span length range, seconds
    max_segments: int = 3  # forged spans per forged modality, at most
    # who speaks: "formant" (random vowel syllables; bit-exact for a seed) or "espeak" (eSpeak NG
    # text-to-speech: real words and prosody, data/synth/tts.py; not bit-exact, see there)
    speech: str = "formant"
    crf: int = 28  # x264 quality (lower = better, 0 = lossless); 28: visible blocking, as in
    # re-encoded web video, so the weight-free evidence must survive compression

    def seen_of(self, registry: dict) -> tuple[str, ...]:
        """Types of train, test and dev's other clips, in registry order (which `rng.choice`
        draws by, so the order is part of what a seed means)."""
        held = set(self.unseen_types) | set(self.validation_types) | set(OPT_IN_TYPES)
        return tuple(k for k in registry if k not in held)

    @property
    def seen_visual(self) -> tuple[str, ...]:
        return self.seen_of(VISUAL_FORGERIES)

    @property
    def seen_audio(self) -> tuple[str, ...]:
        return self.seen_of(AUDIO_FORGERIES)

    @property
    def unseen_visual(self) -> tuple[str, ...]:
        return tuple(k for k in VISUAL_FORGERIES if k in self.unseen_types)

    @property
    def unseen_audio(self) -> tuple[str, ...]:
        return tuple(k for k in AUDIO_FORGERIES if k in self.unseen_types)

    @property
    def validation_visual(self) -> tuple[str, ...]:
        return tuple(k for k in VISUAL_FORGERIES if k in self.validation_types)

    @property
    def validation_audio(self) -> tuple[str, ...]:
        return tuple(k for k in AUDIO_FORGERIES if k in self.validation_types)


def validate_config(cfg: SynthConfig) -> None:
    """Raise ValueError naming the field for settings that cannot give a valid dataset."""
    _validate_types(cfg)
    if len(cfg.split_fractions) != len(SPLITS) or min(cfg.split_fractions) < 0 \
            or sum(cfg.split_fractions) <= 0:
        raise ValueError(f"split_fractions: expected {len(SPLITS)} non-negative numbers "
                         f"({', '.join(SPLITS)}), got {list(cfg.split_fractions)}")
    if cfg.num_videos < MIN_PER_SPLIT * len(SPLITS):
        raise ValueError(f"num_videos: {cfg.num_videos} is too few; every split needs one "
                         f"clip per class, so at least {MIN_PER_SPLIT * len(SPLITS)}")
    low, high = cfg.duration_s
    if not 0 < low <= high:
        raise ValueError(f"duration_s: expected 0 < min <= max, got {list(cfg.duration_s)}")
    if cfg.fps <= 0:
        raise ValueError(f"fps: must be positive, got {cfg.fps}")
    if low * cfg.fps < 2 + cfg.segment_s[0] * cfg.fps + 2:
        raise ValueError(f"duration_s: {low} s is too short for a {cfg.segment_s[0]} s "
                         f"forged span at {cfg.fps} fps")
    if cfg.size < 32 or cfg.size % 2:
        raise ValueError(f"size: must be an even number of pixels >= 32, got {cfg.size}")
    if cfg.size in DECORD_UNREADABLE_SIZES:
        raise ValueError(f"size: decord cannot decode {cfg.size}x{cfg.size} videos; choose "
                         f"another even size (not {list(DECORD_UNREADABLE_SIZES)})")
    if not 0 < cfg.segment_s[0] <= cfg.segment_s[1]:
        raise ValueError(f"segment_s: expected 0 < min <= max, got {list(cfg.segment_s)}")
    if cfg.max_segments < 1:
        raise ValueError(f"max_segments: must be >= 1, got {cfg.max_segments}")
    if cfg.speech not in SPEECH_ENGINES:
        raise ValueError(f"speech: expected one of {list(SPEECH_ENGINES)}, got {cfg.speech!r}")
    if cfg.speech == "espeak":
        engine()  # fails here, before any clip, with how to install it


def _validate_types(cfg: SynthConfig) -> None:
    """The forgery-type settings: known names, held-out sets disjoint, seen types left."""
    known = set(VISUAL_FORGERIES) | set(AUDIO_FORGERIES)
    for field in ("unseen_types", "validation_types"):
        unknown = sorted(set(getattr(cfg, field)) - known)
        if unknown:
            raise ValueError(f"{field}: unknown forgery type(s) {unknown}; known: visual "
                             f"{sorted(VISUAL_FORGERIES)}, audio {sorted(AUDIO_FORGERIES)}")
    both = sorted(set(cfg.unseen_types) & set(cfg.validation_types))
    if both:
        raise ValueError(f"validation_types: {both} also in unseen_types; a type is held out "
                         f"for dev validation or for test_unseen, not both")
    for name, kinds in (("visual", cfg.unseen_visual), ("audio", cfg.unseen_audio)):
        if not kinds:
            raise ValueError(f"unseen_types: needs at least one {name} type so test_unseen "
                             f"has all four classes")
    for name, registry in (("visual", VISUAL_FORGERIES), ("audio", AUDIO_FORGERIES)):
        if cfg.seen_of(registry):
            continue
        # name validation_types when it took part; otherwise unseen_types alone did it
        field = "validation_types" if set(cfg.validation_types) & set(registry) else "unseen_types"
        candidates = [k for k in registry if k not in OPT_IN_TYPES]
        raise ValueError(f"{field}: unseen_types and validation_types hold out every {name} "
                         f"type that can be seen ({', '.join(candidates)}); at least one must "
                         f"stay for train/dev/test")
    if not 0 <= cfg.validation_share <= 1:
        raise ValueError(f"validation_share: must be in [0, 1], got {cfg.validation_share}")


def split_sizes(num_videos: int, fractions: tuple[float, ...]) -> list[int]:
    """Clips per split: proportional (largest remainder), at least MIN_PER_SPLIT each."""
    weights = np.asarray(fractions, dtype=np.float64) / sum(fractions)
    spare = num_videos - MIN_PER_SPLIT * len(weights)
    exact = weights * spare
    sizes = np.floor(exact).astype(int)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[:spare - sizes.sum()]] += 1
    return [int(s) + MIN_PER_SPLIT for s in sizes]


@dataclass(frozen=True)
class PlannedClip:
    file: str  # "train/000000.mp4"
    split: str
    label: int  # index into LABELS
    spec: ClipSpec


def is_validation_clip(cfg: SynthConfig, split: str, label: int, index: int) -> bool:
    """Whether clip `index` draws its forgery types from the validation types: a fake dev
    clip, with chance `validation_share`. The coin comes from a generator of its own,
    seeded by (seed, index, 3), and is only drawn when there are validation types, so the
    draws of every plan without them, and each clip's length and span positions with
    them, stay as they were; only the forgery names change."""
    if not cfg.validation_types or split != VALIDATION_SPLIT or LABELS[label] == "real":
        return False
    return bool(np.random.default_rng([cfg.seed, index, 3]).random() < cfg.validation_share)


def plan_dataset(cfg: SynthConfig) -> list[PlannedClip]:
    """Every clip's split, class, length and forged spans; cheap, done before rendering."""
    validate_config(cfg)
    rng = np.random.default_rng(cfg.seed)
    clips: list[PlannedClip] = []
    index = 0
    for split, size in zip(SPLITS, split_sizes(cfg.num_videos, cfg.split_fractions)):
        labels = np.arange(size) % len(LABELS)
        rng.shuffle(labels)
        unseen = split == UNSEEN_SPLIT
        for label in labels:
            if unseen:
                visual_kinds, audio_kinds = cfg.unseen_visual, cfg.unseen_audio
            elif is_validation_clip(cfg, split, int(label), index):
                # a modality without validation types of its own keeps the seen ones
                visual_kinds = cfg.validation_visual or cfg.seen_visual
                audio_kinds = cfg.validation_audio or cfg.seen_audio
            else:
                visual_kinds, audio_kinds = cfg.seen_visual, cfg.seen_audio
            clip_rng = np.random.default_rng([cfg.seed, index, 1])
            n_frames = int(round(clip_rng.uniform(*cfg.duration_s) * cfg.fps))
            spans = plan_spans(n_frames, cfg.fps, visual=bool(is_modified(label, "visual")),
                               audio=bool(is_modified(label, "audio")),
                               visual_kinds=visual_kinds, audio_kinds=audio_kinds, rng=clip_rng,
                               segment_s=cfg.segment_s, max_segments=cfg.max_segments)
            spec = ClipSpec(seed=(cfg.seed, index, 2), n_frames=n_frames, fps=cfg.fps,
                            size=cfg.size, sample_rate=cfg.sample_rate, spans=spans,
                            speech=cfg.speech)
            clips.append(PlannedClip(f"{split}/{index:06d}.mp4", split, int(label), spec))
            index += 1
    return clips


def merge_periods(periods: list[tuple[float, float]]) -> list[list[float]]:
    """Union of [start, end] intervals: overlapping or touching ones merged, sorted."""
    merged: list[list[float]] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def metadata_record(clip: PlannedClip) -> dict:
    """The LAV-DF record (plus rtdl synth's extra fields) of one planned clip."""
    spec = clip.spec
    visual = sorted((s for s in spec.spans if s.modality == "visual"), key=lambda s: s.start_frame)
    audio = sorted((s for s in spec.spans if s.modality == "audio"), key=lambda s: s.start_frame)
    visual_periods = [list(s.seconds(spec.fps)) for s in visual]
    audio_periods = [list(s.seconds(spec.fps)) for s in audio]
    fake_periods = merge_periods([tuple(p) for p in visual_periods + audio_periods])
    return {
        "file": clip.file,
        "split": clip.split,
        "duration": spec.n_frames / spec.fps,
        "video_frames": spec.n_frames,
        "fps": spec.fps,
        "n_fakes": len(fake_periods),
        "fake_periods": fake_periods,
        "modify_video": bool(visual),
        "modify_audio": bool(audio),
        "audio_channels": 1,
        "audio_frames": spec.n_samples,
        "original": None,
        "visual_fake_periods": visual_periods,
        "audio_fake_periods": audio_periods,
        "visual_forgery_types": [s.kind for s in visual],
        "audio_forgery_types": [s.kind for s in audio],
        "forgery_types": sorted({s.kind for s in spec.spans}),
    }


def describe_validation(cfg: SynthConfig) -> str:
    """'; dev validation: a, b (50% of dev fakes)' for log lines; '' without validation types."""
    if not cfg.validation_types:
        return ""
    return (f"; dev validation: {', '.join(cfg.validation_types)} "
            f"({cfg.validation_share:.0%} of dev fakes)")


def render_clip(job: tuple[PlannedClip, str, int]) -> str:
    """Make one clip and write its mp4 (a top-level function so worker processes can run it)."""
    clip, out_dir, crf = job
    made = make_clip(clip.spec)
    write_mp4(Path(out_dir) / clip.file, made.frames, clip.spec.fps, made.audio,
              clip.spec.sample_rate, crf=crf)
    return clip.file


def synth_dataset(out_dir: str | Path, num_videos: int, seed: int, *, workers: int = 1,
                  progress: bool = True, **options) -> Path:
    """Write the benchmark into `out_dir`; return the path of its `metadata.json`.

    `options` are `SynthConfig` fields (`duration_s`, `fps`, `size`, `unseen_types`, ...);
    unknown names raise ValueError. `workers` > 1 renders clips in that many processes
    (same files as with one).
    """
    cfg = from_dict(SynthConfig, {"num_videos": num_videos, "seed": seed, **options},
                    "synth options")
    clips = plan_dataset(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / "metadata.json"
    if meta_path.exists():
        log.warning("%s exists; overwriting the dataset in %s", meta_path, out_dir)
    log.info("synth: %d clips into %s (seed %d, %s-%s s, %g fps, %d px, held out: %s%s)",
             len(clips), out_dir, cfg.seed, *cfg.duration_s, cfg.fps, cfg.size,
             ", ".join(cfg.unseen_types), describe_validation(cfg))
    jobs = [(clip, str(out_dir), cfg.crf) for clip in clips]
    bar = tqdm(total=len(jobs), desc="synth", unit="clip", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(render_clip, jobs, chunksize=2):
                bar.update()
    else:
        for job in jobs:
            render_clip(job)
            bar.update()
    bar.close()
    records = [metadata_record(clip) for clip in clips]
    _write_json(meta_path, records)
    _write_json(out_dir / "synth_config.json", {"rtdl_version": __version__,
                                                "config": to_dict(cfg)})
    return meta_path


def _write_json(path: Path, value) -> None:
    """Write atomically (temp file then rename), so a crash leaves no half-written file.
    A list is written one element per line: compact like LAV-DF's file, still diffable."""
    if isinstance(value, list):
        text = "[\n" + ",\n".join(json.dumps(item) for item in value) + "\n]\n"
    else:
        text = json.dumps(value, indent=1) + "\n"
    write_atomic(path, text)
