"""Tests for data/metadata.py: both dataset formats, every malformed case, splits."""
import copy
import json

import pytest

from data.metadata import load_metadata, metadata_files, records_for_split, summarize
from data.labels import LABEL_INDEX


def lavdf_records():
    """Four LAV-DF records, one per class; the last has the optional rtdl synth fields."""
    return [
        {"file": "test/000001.mp4", "n_fakes": 0, "fake_periods": [], "duration": 4.224,
         "original": None, "modify_video": False, "modify_audio": False, "split": "test",
         "video_frames": 103, "audio_channels": 1, "audio_frames": 65536,
         "timestamps": [["hello", 0.1, 0.4]], "transcript": "hello"},
        {"file": "test/000002.mp4", "n_fakes": 1, "fake_periods": [[1.0, 1.5]],
         "duration": 4.0, "modify_video": True, "modify_audio": False, "split": "test",
         "video_frames": 100},
        {"file": "train/000003.mp4", "n_fakes": 2, "fake_periods": [[0.0, 0.5], [2, 3]],
         "duration": 4.0, "modify_video": False, "modify_audio": True, "split": "train",
         "video_frames": 100},
        {"file": "dev/000004.mp4", "n_fakes": 2, "fake_periods": [[0.5, 1.0], [2.0, 2.5]],
         "duration": 3.0, "modify_video": True, "modify_audio": True, "split": "dev",
         "video_frames": 90, "fps": 30,
         "visual_fake_periods": [[0.5, 1.0]], "audio_fake_periods": [[2.0, 2.5]]},
    ]


def avdf1m_records():
    return [
        {"file": "val/id0/real.mp4", "original": None, "split": "val", "modify_type": "real",
         "audio_model": "", "fake_segments": [], "audio_fake_segments": [],
         "visual_fake_segments": [], "video_frames": 100, "audio_frames": 64000},
        {"file": "val/id0/v.mp4", "original": "val/id0/real.mp4", "split": "val",
         "modify_type": "visual_modified", "audio_model": "", "fake_segments": [[1.0, 1.4]],
         "audio_fake_segments": [], "visual_fake_segments": [[1.0, 1.4]],
         "video_frames": 100, "audio_frames": 64000, "video_model": "latentsync"},
        {"file": "val/id0/a.mp4", "original": "val/id0/real.mp4", "split": "val",
         "modify_type": "audio_modified", "audio_model": "vits",
         "fake_segments": [[0.2, 0.6]], "audio_fake_segments": [[0.2, 0.6]],
         "visual_fake_segments": [], "video_frames": 100, "audio_frames": 64000},
        {"file": "val/id0/b.mp4", "original": "val/id0/real.mp4", "split": "val",
         "modify_type": "both_modified", "audio_model": "vits",
         "fake_segments": [[2.0, 2.4], [3.0, 4.0]],
         "audio_fake_segments": [[2.0, 2.4], [3.0, 4.0]],
         "visual_fake_segments": [[2.0, 2.4], [3.0, 4.0]],
         "video_frames": 100, "audio_frames": 64000},
    ]


def write(path, entries):
    path.write_text(json.dumps(entries))
    return path


def test_lavdf_records(tmp_path):
    records = load_metadata(write(tmp_path / "metadata.json", lavdf_records()))
    assert [r.label for r in records] == [LABEL_INDEX[n] for n in
                                          ("real", "visual_only", "audio_only", "both")]
    real, visual, audio, both = records
    assert real.file == "test/000001.mp4" and real.split == "test"
    assert real.duration == pytest.approx(4.224) and real.n_frames == 103 and real.fps == 25.0
    assert real.fake_segments == () and real.visual_fake_segments is None
    assert audio.fake_segments == ((0.0, 0.5), (2.0, 3.0))  # ints become floats
    assert isinstance(audio.fake_segments[1][0], float)
    # optional synth fields fill the per-modality segments; fps overrides 25
    assert both.fps == 30.0
    assert both.visual_fake_segments == ((0.5, 1.0),)
    assert both.audio_fake_segments == ((2.0, 2.5),)
    assert visual.audio_fake_segments is None


def test_avdeepfake1m_records(tmp_path):
    records = load_metadata(write(tmp_path / "val_metadata.json", avdf1m_records()))
    assert [r.label_name for r in records] == ["real", "visual_only", "audio_only", "both"]
    both = records[3]
    assert both.fps == 25.0 and both.duration == pytest.approx(100 / 25)  # 4.0 s
    assert both.fake_segments == ((2.0, 2.4), (3.0, 4.0))
    assert records[1].visual_fake_segments == ((1.0, 1.4),)
    assert records[1].audio_fake_segments == ()
    assert records[0].split == "val"


def test_avdeepfake1m_split_from_file_name(tmp_path):
    entries = avdf1m_records()
    for entry in entries:
        del entry["split"]
    records = load_metadata(write(tmp_path / "train_metadata.json", entries))
    assert {r.split for r in records} == {"train"}
    with pytest.raises(ValueError, match=r"record 0 \(file 'val/id0/real.mp4'\): field "
                                         r"'split': missing"):
        load_metadata(write(tmp_path / "labels.json", entries))


def test_dataset_root_folders(tmp_path):
    lavdf = tmp_path / "lavdf"
    lavdf.mkdir()
    write(lavdf / "metadata.min.json", lavdf_records())
    assert metadata_files(lavdf) == [lavdf / "metadata.min.json"]
    assert len(load_metadata(lavdf)) == 4
    avdf = tmp_path / "avdf"
    avdf.mkdir()
    train = avdf1m_records()
    for entry in train:
        entry["file"] = entry["file"].replace("val/", "train/")
        entry["split"] = "train"
    write(avdf / "train_metadata.json", train)
    write(avdf / "val_metadata.json", avdf1m_records())
    records = load_metadata(avdf)
    assert [r.split for r in records] == ["train"] * 4 + ["val"] * 4
    # the same file in two metadata files is a duplicate too
    write(avdf / "val_metadata.json", avdf1m_records() + [train[0]])
    with pytest.raises(ValueError, match="val_metadata.json: record 4 .*duplicate.*"
                                         "train_metadata.json record 0"):
        load_metadata(avdf)


def test_frame_tolerance_at_the_end(tmp_path):
    entries = lavdf_records()
    entries[1]["fake_periods"] = [[3.5, 4.0 + 0.9 / 25]]  # under one frame past 4.0 s: fine
    assert load_metadata(write(tmp_path / "m.json", entries))[1].fake_segments[0][1] > 4.0


def _mutate(records, index, change):
    records = copy.deepcopy(records)
    change(records[index])
    return records


def _set(key, value):
    return lambda entry: entry.__setitem__(key, value)


def _delete(key):
    return lambda entry: entry.__delitem__(key)


LAVDF_BAD = [
    # (record index, change, field named, words in the message)
    (1, _delete("duration"), "duration", "missing"),
    (1, _delete("fake_periods"), "fake_periods", "missing"),
    (1, _delete("split"), "split", "missing"),
    (1, _delete("modify_audio"), "modify_audio", "missing"),
    (1, _set("modify_video", "yes"), "modify_video", "true or false"),
    (1, _set("duration", "4.0"), "duration", "positive number"),
    (1, _set("duration", 0), "duration", "positive number"),
    (1, _set("video_frames", 10.5), "video_frames", "non-negative integer"),
    (1, _set("split", 3), "split", "non-empty string"),
    (1, _set("fake_periods", "1.0-1.5"), "fake_periods", "list of"),
    (1, _set("fake_periods", [[1.0]]), "fake_periods", "segment 0"),
    (1, _set("fake_periods", [["1.0", 1.5]]), "fake_periods", "segment 0"),
    (1, _set("fake_periods", [[1.5, 1.0]]), "fake_periods", "before start"),
    (1, _set("fake_periods", [[3.5, 4.0 + 2 / 25]]), "fake_periods", "outside the video"),
    (1, _set("fake_periods", [[-0.1, 1.0]]), "fake_periods", "outside the video"),
    (1, _set("n_fakes", 2), "n_fakes", "has 1 segment"),
    (0, lambda e: e.update(n_fakes=1, fake_periods=[[1, 2]]), "fake_periods",
     "not modified"),
    (1, lambda e: e.update(n_fakes=0, fake_periods=[]), "fake_periods", "empty"),
    (3, _set("visual_fake_periods", []), "visual_fake_periods", "empty"),
    (1, _set("audio_fake_periods", [[1.0, 1.5]]), "audio_fake_periods", "not modified"),
    (3, _set("fps", -1), "fps", "positive number"),
    # json.load reads NaN / Infinity: a NaN end made every comparison false and slipped through
    (1, _set("fake_periods", [[0.1, float("nan")]]), "fake_periods", "finite times"),
    (1, _set("fake_periods", [[float("-inf"), 1.0]]), "fake_periods", "finite times"),
    (1, _set("duration", float("inf")), "duration", "finite positive number"),
    (1, _set("duration", float("nan")), "duration", "finite positive number"),
    (3, _set("fps", float("inf")), "fps", "finite positive number"),
]


@pytest.mark.parametrize("index,change,field,words", LAVDF_BAD)
def test_lavdf_malformed_names_file_record_field(tmp_path, index, change, field, words):
    entries = _mutate(lavdf_records(), index, change)
    path = write(tmp_path / "metadata.json", entries)
    with pytest.raises(ValueError) as err:
        load_metadata(path)
    message = str(err.value)
    assert str(path) in message
    assert f"record {index} (file {entries[index]['file']!r})" in message
    assert f"field {field!r}" in message
    assert words in message


AVDF1M_BAD = [
    (3, _set("modify_type", "both-modified"), "modify_type", "unknown value"),
    (1, _set("modify_type", None), "modify_type", "unknown value"),
    (1, _delete("visual_fake_segments"), "visual_fake_segments", "missing"),
    (1, _delete("video_frames"), "video_frames", "missing"),
    (1, _set("video_frames", 0), "video_frames", "> 0"),
    (1, _set("audio_fake_segments", [[1.0, 1.4]]), "audio_fake_segments", "not modified"),
    (2, _set("audio_fake_segments", []), "audio_fake_segments", "empty"),
    (3, _set("fake_segments", [[2.0, 2.4], [3.0, 4.1]]), "fake_segments",
     "outside the video"),
    (0, _set("fake_segments", [[1.0, 1.4]]), "fake_segments", "not modified"),
    (2, _set("fake_segments", [[0.6, 0.2]]), "fake_segments", "before start"),
    (2, _set("visual_fake_segments", [[0.2, float("nan")]]), "visual_fake_segments",
     "finite times"),
]


@pytest.mark.parametrize("index,change,field,words", AVDF1M_BAD)
def test_avdeepfake1m_malformed_names_file_record_field(tmp_path, index, change, field, words):
    entries = _mutate(avdf1m_records(), index, change)
    path = write(tmp_path / "val_metadata.json", entries)
    with pytest.raises(ValueError) as err:
        load_metadata(path)
    message = str(err.value)
    assert str(path) in message
    assert f"record {index} (file {entries[index]['file']!r})" in message
    assert f"field {field!r}" in message
    assert words in message


def test_duplicate_files(tmp_path):
    entries = lavdf_records()
    entries.append(copy.deepcopy(entries[1]))
    path = write(tmp_path / "metadata.json", entries)
    with pytest.raises(ValueError, match=r"record 4 \(file 'test/000002.mp4'\): field 'file': "
                                         r"duplicate, already given by .* record 1"):
        load_metadata(path)


def test_missing_file_key_names_record_index(tmp_path):
    entries = _mutate(lavdf_records(), 2, _delete("file"))
    with pytest.raises(ValueError, match=r"m.json: record 2: field 'file': missing"):
        load_metadata(write(tmp_path / "m.json", entries))


@pytest.mark.parametrize("content,words", [
    ("{not json", "not valid JSON"),
    ('{"file": "a.mp4"}', "expected a JSON list"),
    ("[]", "empty"),
    ('[{"file": "a.mp4", "label": 1}]', "cannot tell the dataset format"),
    ('["a.mp4"]', "record 0: expected a JSON object"),
])
def test_malformed_files(tmp_path, content, words):
    path = tmp_path / "metadata.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=words) as err:
        load_metadata(path)
    assert str(path) in str(err.value)


def test_non_object_record_after_the_first(tmp_path):
    entries = lavdf_records() + [["not", "a", "record"]]
    with pytest.raises(ValueError, match=r"record 4: field '<record>': expected a JSON object"):
        load_metadata(write(tmp_path / "metadata.json", entries))


def test_missing_path(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_metadata(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="no metadata.json"):
        load_metadata(tmp_path)


def test_records_for_split(tmp_path):
    records = load_metadata(write(tmp_path / "metadata.json", lavdf_records()))
    assert [r.file for r in records_for_split(records, "test")] == ["test/000001.mp4",
                                                                    "test/000002.mp4"]
    with pytest.raises(ValueError, match=r"no records in split 'val'; available splits: "
                                         r"dev \(1\), test \(2\), train \(1\)"):
        records_for_split(records, "val")


def test_summarize(tmp_path):
    summary = summarize(load_metadata(write(tmp_path / "metadata.json", lavdf_records())))
    assert summary["videos"] == 4 and summary["fake_segments"] == 5
    assert summary["labels"] == {"real": 1, "visual_only": 1, "audio_only": 1, "both": 1}
