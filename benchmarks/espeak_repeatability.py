"""How repeatable are `--speech espeak` clips? Hash 10 clips' audio and frames in this process.

Run it several times (each run a fresh process) and compare the printed hashes; the
formant speech gives the same lines in every run.
"""
import dataclasses
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.synth.clip import make_clip  # noqa: E402
from pipeline.synth import SynthConfig, plan_dataset  # noqa: E402

speech = sys.argv[1] if len(sys.argv) > 1 else "espeak"
clips = plan_dataset(SynthConfig(num_videos=16, seed=5, duration_s=(2.0, 2.0), size=32))
for clip in clips[:10]:
    made = make_clip(dataclasses.replace(clip.spec, speech=speech))
    print(clip.file, hashlib.md5(made.audio.tobytes()).hexdigest()[:8],
          hashlib.md5(made.frames.tobytes()).hexdigest()[:8])
