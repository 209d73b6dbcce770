"""Synthetic talking-head videos with planted forgeries and exact ground truth (`rtdl synth`).

Modules, bottom-up: `speaker` (who is talking and how they look), `speech` (speech-like
audio), `scene` (the talking-head frames), `forgeries` (named visual and audio
manipulations), `clip` (one video with its forged spans), `writer` (mp4 via ffmpeg).
`pipeline/synth.py` plans splits and classes and writes the dataset.
"""
