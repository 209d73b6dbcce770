"""Add dev clips with validation forgery types to an existing `rtdl synth` set.

`rtdl synth --validation-types` makes a new set whose dev split holds them; a set made
before that option (the 2,100-clip benchmark of BENCHMARKS.md) can get them without
re-rendering or re-extracting its clips: this renders a small set whose dev clips all use
the validation types (validation share 1), copies its dev clips into
`<media>/dev_validation/`, and appends them to `<media>/metadata.json` as split "dev". The
metadata as it was is kept once as `metadata_seen_dev.json`, and the added records alone
go to `metadata_validation_only.json`, the list to extract:

    python benchmarks/add_validation_clips.py --media W/media --num-videos 220 --seed 4321 \
        --speech espeak
    rtdl extract --metadata W/media/metadata_validation_only.json --root W/media \
        --out W/features_val.h5 --visual-model lowlevel --audio-model logmel
    # then read both caches: --cache "W/features*.h5"

Run again, it replaces the clips it added before. The new set is rendered into
`--workdir` (default: next to the media folder).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FOLDER = "dev_validation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, required=True, help="the set's folder (metadata.json)")
    parser.add_argument("--num-videos", type=int, default=220, help="94 %% of them become dev clips")
    parser.add_argument("--seed", type=int, default=4321, help="not the set's own seed")
    parser.add_argument("--validation-types", default="face_recolour,pitch_shift")
    parser.add_argument("--speech", default="formant", choices=("formant", "espeak"))
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()

    from pipeline.synth import synth_dataset

    metadata_path = args.media / "metadata.json"
    original = json.loads(metadata_path.read_text())
    kept = args.media / "metadata_seen_dev.json"
    if not kept.exists():
        kept.write_text(json.dumps(original))
    config = json.loads((args.media / "synth_config.json").read_text())["config"]
    workdir = args.workdir or args.media.parent / f"{args.media.name}_validation_set"
    synth_dataset(workdir, args.num_videos, args.seed, speech=args.speech,
                  duration_s=tuple(config["duration_s"]), fps=config["fps"], size=config["size"],
                  unseen_types=tuple(config["unseen_types"]),
                  split_fractions=(0.02, 0.94, 0.02, 0.02),
                  validation_types=tuple(args.validation_types.split(",")), validation_share=1.0)
    (args.media / FOLDER).mkdir(exist_ok=True)
    added = []
    for record in json.loads((workdir / "metadata.json").read_text()):
        if record["split"] != "dev":
            continue
        name = f"{FOLDER}/{Path(record['file']).name}"
        shutil.copy(workdir / record["file"], args.media / name)
        added.append({**record, "file": name})
    merged = [r for r in original if not r["file"].startswith(f"{FOLDER}/")] + added
    metadata_path.write_text(json.dumps(merged))
    (args.media / "metadata_validation_only.json").write_text(json.dumps(added))
    print(f"{len(added)} dev clips with validation types added ({sum(r['n_fakes'] > 0 for r in added)} "
          f"fake) to {metadata_path}")


if __name__ == "__main__":
    main()
