"""DemoFolder: which stages a rerun reuses, resumes or redoes, and which folders it refuses,
on three toy stages that each write one file (the real demo is in tests/test_demo.py)."""
from __future__ import annotations

import json

import pytest

from pipeline.demo_stages import RAN, RESUMED, REUSED, DemoFolder, DemoFolderError, Stage

NAMES = ("make", "cache", "report")


def toy_stages(workdir, settings=None) -> list[Stage]:
    settings = settings or {"seed": 0, "sizes": (1, 2)}  # a tuple, as in DemoConfig
    return [Stage(name, (f"{name}.txt",), settings, lambda n=name: (workdir / f"{n}.txt").is_file(),
                  resumable=name == "cache") for name in NAMES]


def run_stages(workdir, settings=None, fresh=False, stop_in=None) -> dict[str, str]:
    """Decide each stage; a stage with work writes its file (and a sibling lock file), then
    finishes, except `stop_in`, which is left started (as a killed run leaves it)."""
    folder = DemoFolder.open(workdir, toy_stages(workdir, settings), fresh=fresh)
    for name in NAMES:
        if folder.decide(name) == REUSED:
            continue
        folder.start(name)
        (workdir / f"{name}.txt").write_text("partial" if name == stop_in else "done")
        (workdir / f"{name}.txt.lock").touch()
        if name == stop_in:
            break
        folder.finish(name)
    return folder.decisions


def test_a_rerun_reuses_every_finished_stage(tmp_path):
    assert run_stages(tmp_path) == {n: RAN for n in NAMES}
    assert run_stages(tmp_path) == {n: REUSED for n in NAMES}


def test_a_missing_output_redoes_its_stage_and_every_later_one(tmp_path):
    run_stages(tmp_path)
    (tmp_path / "cache.txt").unlink()
    (tmp_path / "report.txt").write_text("kept?")
    assert run_stages(tmp_path) == {"make": REUSED, "cache": RAN, "report": RAN}
    assert (tmp_path / "report.txt").read_text() == "done"  # cleared, then written again


def test_an_interrupted_stage_resumes_when_it_can_and_restarts_when_it_cannot(tmp_path):
    run_stages(tmp_path, stop_in="cache")
    assert not (tmp_path / "report.txt").exists()
    assert run_stages(tmp_path) == {"make": REUSED, "cache": RESUMED, "report": RAN}

    run_stages(tmp_path / "b", stop_in="report")
    (tmp_path / "b" / "report.txt").write_text("half written")
    decisions = DemoFolder.open(tmp_path / "b", toy_stages(tmp_path / "b"))
    for name in NAMES:
        decisions.decide(name)
    assert decisions.decisions["report"] == RAN  # not resumable: its output was cleared
    assert not (tmp_path / "b" / "report.txt").exists()
    assert not (tmp_path / "b" / "report.txt.lock").exists()  # with its siblings


def test_restart_clears_a_stage_that_cannot_resume_after_all(tmp_path):
    run_stages(tmp_path, stop_in="cache")
    folder = DemoFolder.open(tmp_path, toy_stages(tmp_path))
    folder.decide("make")
    assert folder.decide("cache") == RESUMED
    folder.restart("cache")
    assert folder.decisions["cache"] == RAN and not (tmp_path / "cache.txt").exists()


def test_a_file_the_demo_did_not_write_is_refused_before_any_work(tmp_path):
    run_stages(tmp_path)
    (tmp_path / ".make.txt.tmp").touch()  # a writer's temporary file: the demo's own
    (tmp_path / "notes.txt").write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    for fresh in (False, True):  # --fresh would leave it there, so it is refused too
        with pytest.raises(DemoFolderError, match=r"holds notes\.txt, which the demo did not "
                                                  r"write.*move them out or pick another --workdir"):
            DemoFolder.open(tmp_path, toy_stages(tmp_path), fresh=fresh)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    (tmp_path / "make.txt").write_text("an older demo's output, or someone else's")
    with pytest.raises(DemoFolderError, match=r"make.txt, which the demo did not write \(there "
                                              r"is no record .*remove .* if an older rtdl made it"):
        DemoFolder.open(tmp_path, toy_stages(tmp_path))


def test_other_settings_are_refused_naming_each_field_once(tmp_path):
    run_stages(tmp_path, stop_in="report")
    with pytest.raises(DemoFolderError) as caught:
        run_stages(tmp_path, settings={"seed": 1, "sizes": (1, 2)})
    message = str(caught.value)
    assert "seed 0 -> 1 (make, cache, report)" in message  # the started stage too
    assert "sizes" not in message and "--fresh" in message and "\n" not in message


def test_fresh_removes_only_what_the_demo_wrote_and_starts_over(tmp_path):
    run_stages(tmp_path)
    decisions = run_stages(tmp_path, settings={"seed": 1}, fresh=True)
    assert decisions == {n: RAN for n in NAMES}
    assert run_stages(tmp_path, settings={"seed": 1}) == {n: REUSED for n in NAMES}
    manifest = json.loads((tmp_path / ".demo" / "manifest.json").read_text())
    assert manifest == sorted(f"{n}.txt" for n in NAMES)


def test_fresh_in_a_missing_folder_just_runs(tmp_path):
    assert run_stages(tmp_path / "new", fresh=True) == {n: RAN for n in NAMES}


def test_an_unreadable_manifest_says_to_remove_the_folder(tmp_path):
    run_stages(tmp_path)
    (tmp_path / ".demo" / "manifest.json").write_text("{not json")
    with pytest.raises(DemoFolderError, match=f"remove {tmp_path} or pick another --workdir"):
        DemoFolder.open(tmp_path, toy_stages(tmp_path), fresh=True)
