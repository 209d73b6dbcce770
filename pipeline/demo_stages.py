"""Stamps and a manifest for `rtdl demo`, so that a rerun reuses what is still valid.

The demo folder holds, next to its outputs, a state folder `.demo/` with
- `manifest.json`: the workdir-relative names the demo claimed, written *before* the stage
  that makes them starts, so that even an interrupted stage's half-written outputs are known
  to be the demo's own. An output owns its siblings named after it (`features.h5.lock`,
  `features.h5.parts`, `.preds_test.json.tmp-<pid>`: the lock, parts and temporary files the
  writers keep next to it), and a folder the demo created is its own with everything in it.
- `<stage>.json`: the stage's stamp, `{"stage", "complete", "settings", "rtdl_version"}`.
  It is written with `complete: false` when the stage starts and rewritten with
  `complete: true` when it ends, so an interrupted stage is recognisable and its settings
  are known.

Rules (`DemoFolder.open` applies the first two before any work starts):
- An entry of the workdir that the manifest does not list was not written by the demo: the
  run stops with `DemoFolderError`, whatever the options (even `fresh` removes only what the
  manifest lists, so the foreign entry would stay).
- A stamp whose settings differ from this run's stops the run with `DemoFolderError` naming
  the fields, unless `fresh`, which first removes everything the manifest lists.
- A stage is *reused* when every earlier stage was reused, its stamp is complete and its
  outputs are all there; *resumed* when every earlier stage was reused and it was
  interrupted and it can pick up where it stopped (feature extraction, training); otherwise
  it *runs* from a clean slate (its earlier outputs removed first).

Stamps compare settings, not code: after changing the code, start over with `fresh`.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from data.atomic import write_atomic

STATE_DIR = ".demo"
MANIFEST = "manifest.json"

REUSED, RESUMED, RAN = "reused", "resumed", "ran"


class DemoFolderError(ValueError):
    """The demo folder cannot be used as it is; the message says what to do."""


@dataclass(frozen=True)
class Stage:
    name: str  # also the stamp's file name
    outputs: tuple[str, ...]  # workdir-relative names this stage writes
    settings: dict  # what produced the outputs, as plain JSON types
    complete: Callable[[], bool]  # cheap check that the outputs are all on disk
    resumable: bool = False  # an interrupted run can continue instead of starting over


def plain_json(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), for comparing with stamps."""
    return json.loads(json.dumps(value))


def _write_json(path: Path, value: Any) -> None:
    """Write atomically, so a kill never leaves half a stamp."""
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def _read_json(path: Path, advice: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DemoFolderError(f"{path}: unreadable ({err}); {advice}") from None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def settings_changes(old: dict, new: dict) -> list[str]:
    """`field old -> new` for every field that differs (missing on one side: `None`)."""
    a, b = _flatten(old), _flatten(new)
    return [f"{key} {json.dumps(a.get(key))} -> {json.dumps(b.get(key))}"
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def _owned(name: str, claimed: set[str]) -> bool:
    """`name` (directly in the workdir) is a claimed output or one of its siblings."""
    bare = name[1:] if name.startswith(".") else name
    return name in claimed or any(bare.startswith(c + ".") for c in claimed)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _remove_output(workdir: Path, output: str) -> None:
    """Remove a claimed output and its siblings (see the module docstring)."""
    path = workdir / output
    _remove(path)
    if path.parent.is_dir():
        for sibling in path.parent.iterdir():
            if _owned(sibling.name, {path.name}):
                _remove(sibling)


class DemoFolder:
    """The demo's workdir: what it wrote, what is still valid, and what each stage does."""

    def __init__(self, workdir: Path, stages: list[Stage]):
        self.workdir = workdir
        self.stages = {stage.name: stage for stage in stages}
        self.order = [stage.name for stage in stages]
        self.state = workdir / STATE_DIR
        self.decisions: dict[str, str] = {}  # stage -> REUSED / RESUMED / RAN, as decided
        self.removed: list[str] = []  # what `fresh` removed

    @classmethod
    def open(cls, workdir: str | Path, stages: list[Stage], fresh: bool = False) -> "DemoFolder":
        """Check the folder (raises DemoFolderError before anything is written); with
        `fresh`, remove what an earlier demo wrote there."""
        folder = cls(Path(workdir), stages)
        folder._check_foreign()
        if fresh:
            folder._remove_own_outputs()
        else:
            folder._check_settings()
        folder.state.mkdir(parents=True, exist_ok=True)
        return folder

    # -- checks before any work
    def manifest(self) -> list[str]:
        path = self.state / MANIFEST
        if not path.is_file():
            return []
        # without the manifest even --fresh cannot tell the demo's files from others
        advice = f"remove {self.workdir} or pick another --workdir"
        names = _read_json(path, advice)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DemoFolderError(f"{path}: expected a JSON list of names; {advice}")
        return names

    def _check_foreign(self) -> None:
        if self.workdir.exists() and not self.workdir.is_dir():
            raise DemoFolderError(f"--workdir {self.workdir} is a file, not a folder; pick "
                                  f"another --workdir")
        if not self.workdir.is_dir():
            return
        claimed = set(self.manifest())
        foreign = sorted(p.name for p in self.workdir.iterdir()
                         if p.name != STATE_DIR and not _owned(p.name, claimed))
        if foreign:
            shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
            record = self.state / MANIFEST
            if record.is_file():
                raise DemoFolderError(
                    f"{self.workdir} holds {shown}, which the demo did not write (its record "
                    f"{record} does not list them); move them out or pick another --workdir")
            # also what a demo folder of an rtdl without these records looks like
            raise DemoFolderError(
                f"{self.workdir} holds {shown}, which the demo did not write (there is no "
                f"record {record}); move them out (or remove {self.workdir} if an older rtdl "
                f"made it) or pick another --workdir")

    def stamp(self, name: str) -> dict | None:
        path = self.state / f"{name}.json"
        if not path.is_file():
            return None
        advice = "rerun with --fresh to start over in this folder"
        stamp = _read_json(path, advice)
        if not isinstance(stamp, dict) or "settings" not in stamp:
            raise DemoFolderError(f"{path}: field 'settings' is missing; {advice}")
        return stamp

    def _check_settings(self) -> None:
        changes: dict[str, list[str]] = {}  # change -> stages it concerns
        for name in self.order:
            stamp = self.stamp(name)
            if stamp is None:
                continue
            for change in settings_changes(stamp["settings"], plain_json(self.stages[name].settings)):
                changes.setdefault(change, []).append(name)
        if changes:
            listed = "; ".join(f"{change} ({', '.join(names)})" for change, names in changes.items())
            raise DemoFolderError(
                f"{self.workdir} was made with other settings ({listed}); rerun with --fresh to "
                f"start over there with these settings, or pick another --workdir")

    def _remove_own_outputs(self) -> None:
        for name in self.manifest():
            if (self.workdir / name).exists():
                self.removed.append(name)
            _remove_output(self.workdir, name)
        if self.state.is_dir():
            shutil.rmtree(self.state)

    # -- per stage
    def decide(self, name: str) -> str:
        """REUSED, RESUMED or RAN for stage `name`; stages must be decided in order. A stage
        that will run from a clean slate has its earlier outputs removed here."""
        stage = self.stages[name]
        earlier = self.order[:self.order.index(name)]
        if any(n not in self.decisions for n in earlier):
            raise RuntimeError(f"demo stage {name!r} decided before {earlier}")
        inputs_kept = all(self.decisions[n] == REUSED for n in earlier)
        stamp = self.stamp(name)
        same = stamp is not None and stamp["settings"] == plain_json(stage.settings)
        if inputs_kept and same and stamp.get("complete") and stage.complete():
            decision = REUSED
        elif inputs_kept and same and not stamp.get("complete") and stage.resumable:
            decision = RESUMED
        else:
            decision = RAN
            self._clear(stage)
        self.decisions[name] = decision
        return decision

    def restart(self, name: str) -> None:
        """A stage decided RESUMED cannot resume after all: clear it, it runs from scratch."""
        self._clear(self.stages[name])
        self.decisions[name] = RAN

    def _clear(self, stage: Stage) -> None:
        for output in stage.outputs:
            _remove_output(self.workdir, output)

    def start(self, name: str) -> None:
        """Claim the stage's outputs in the manifest and stamp it as started."""
        stage = self.stages[name]
        claimed = self.manifest()
        missing = [o for o in stage.outputs if o not in claimed]
        if missing:
            _write_json(self.state / MANIFEST, sorted(claimed + missing))
        self._write_stamp(stage, complete=False)

    def finish(self, name: str) -> None:
        self._write_stamp(self.stages[name], complete=True)

    def _write_stamp(self, stage: Stage, complete: bool) -> None:
        from data.version import __version__

        _write_json(self.state / f"{stage.name}.json",
                    {"stage": stage.name, "complete": complete,
                     "settings": plain_json(stage.settings), "rtdl_version": __version__})
