"""Compare rtdl's evaluator with the official AV-Deepfake1M evaluator on random data.

The official evaluator is the compiled `avdeepfake1m._evaluation` module of the PyPI
package `avdeepfake1m` (not a dependency of rtdl). Unpack its wheel somewhere outside the
repo (`pip download --no-deps avdeepfake1m==0.0.4`, then unzip) and pass the .so:

    python benchmarks/crosscheck_official.py /tmp/x/avdeepfake1m/_evaluation.cpython-311-x86_64-linux-gnu.so

Every video gets at least one proposal, since the official code panics on empty lists.
Half of the trials put times on the 25 fps grid and round scores to tenths, so IoU values
land exactly on thresholds and scores tie.
"""
import importlib.util, json, sys, tempfile, os
import numpy as np
from data.records import VideoRecord
from pipeline.metrics import evaluate_predictions, PROTOCOLS

spec = importlib.util.spec_from_file_location("avdeepfake1m._evaluation", sys.argv[1])
official = importlib.util.module_from_spec(spec); spec.loader.exec_module(official)

def make(rng, n_videos, max_props, quantize):
    meta, preds, records = [], {}, []
    for v in range(n_videos):
        dur = float(rng.integers(50, 300)) / 25
        n_seg = int(rng.choice([0, 0, 1, 1, 2, 3]))
        segs = []
        for _ in range(n_seg):
            a, b = sorted(rng.integers(0, int(dur * 25), 2) / 25)
            segs.append([float(a), float(b)])
        f = f"test/{v:06d}.mp4"
        meta.append({"file": f, "fake_segments": segs, "split": "test"})
        records.append(VideoRecord(file=f, split="test", duration=dur, fps=25., n_frames=int(dur*25),
                                   label=int(n_seg > 0), fake_segments=tuple(map(tuple, segs))))
        n_p = int(rng.integers(1, max_props + 1))  # official crashes on empty lists
        props = []
        for _ in range(n_p):
            if segs and rng.random() < 0.5:  # jitter a true segment
                a, b = segs[rng.integers(len(segs))]
                a += rng.normal(0, 0.2); b += rng.normal(0, 0.2)
                a, b = min(a, b), max(a, b)
            else:
                a, b = sorted(rng.uniform(0, dur, 2))
            if quantize:  # frame grid + coarse scores: many exact IoU values and score ties
                a, b = round(a * 25) / 25, round(b * 25) / 25
                s = round(rng.random(), 1)
            else:
                s = rng.random()
            props.append([float(s), float(a), float(b)])
        props.sort(key=lambda p: -p[0])
        preds[f] = props
    return meta, preds, records

worst = 0.0
for trial in range(12):
    rng = np.random.default_rng(trial)
    meta, preds, records = make(rng, 300 if trial < 10 else 3000, [5, 30, 120][trial % 3], trial % 2 == 1)
    with tempfile.TemporaryDirectory() as d:
        pp, mp = os.path.join(d, "p.json"), os.path.join(d, "m.json")
        json.dump(preds, open(pp, "w")); json.dump(meta, open(mp, "w"))
        for name, proto in PROTOCOLS.items():
            ref = official.ap_ar_1d(pp, mp, "file", "fake_segments", 1.0, list(proto.ap_iou), list(proto.ar_n), list(proto.ar_iou))
            ours = evaluate_predictions(preds, records, ap_iou=proto.ap_iou, ar_n=proto.ar_n, ar_iou=proto.ar_iou)
            for t in proto.ap_iou:
                worst = max(worst, abs(ref["ap"][float(np.float32(t))] - ours["ap"][f"{t:g}"]))
            for n in proto.ar_n:
                worst = max(worst, abs(ref["ar"][n] - ours["ar"][str(n)]))
    print(f"trial {trial}: worst abs diff so far {worst:.3g}", flush=True)
print("WORST", worst)
