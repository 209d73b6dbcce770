"""The default backbones, named once: the paper's TSN ResNet-50 with ImageNet weights and
wav2vec 2.0 base fine-tuned on LibriSpeech 960 h (Sec. 4.2). A module of constants, so the
CLI, the extraction options and the demo can read them without importing torch."""

DEFAULT_VISUAL_MODEL = "tsn"
DEFAULT_VISUAL_WEIGHTS = "imagenet"
DEFAULT_AUDIO_MODEL = "facebook/wav2vec2-base-960h"
