"""Which proposal settings a prediction uses, and the YAML files that carry them.

`resolve_proposal_config` decides, in this order: a `--proposals` file, else the settings
tuned on the validation split and stored in the checkpoint (pipeline/proposal_tuning.py),
else the ProposalConfig defaults; `--set key=value` overrides apply on top of whichever was
chosen. It also says where the settings came from, in words, for the outputs to record.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from data.atomic import write_atomic
from data.config import apply_overrides, from_dict, load_yaml, to_dict
from pipeline.proposals import ProposalConfig


def load_proposal_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> ProposalConfig:
    """ProposalConfig from an optional YAML file, then `key=value` overrides (unknown keys rejected)."""
    cfg = load_yaml(ProposalConfig, path) if path else ProposalConfig()
    return apply_overrides(cfg, list(overrides))


def write_proposals_yaml(cfg: ProposalConfig, path: str | Path, header: Sequence[str] = ()) -> Path:
    """Write `cfg` as YAML that `load_proposal_config` (`--proposals`) reads back, `header`
    lines as comments above it."""
    comments = "".join(f"# {line}\n" for line in header)
    return write_atomic(path, comments + yaml.safe_dump(to_dict(cfg), sort_keys=False))


def checkpoint_proposal_config(checkpoint, label: str) -> ProposalConfig | None:
    """The tuned settings a LoadedCheckpoint carries, or None."""
    if checkpoint.proposal_config is None:
        return None
    return from_dict(ProposalConfig, checkpoint.proposal_config, f"{label}: field 'proposal_config'")


def resolve_proposal_config(checkpoint, label: str, proposals_path: str | Path | None = None,
                            overrides: Sequence[str] = ()) -> tuple[ProposalConfig, str]:
    """(settings, where they came from): a --proposals file, else the checkpoint's tuned
    settings, else the defaults; `overrides` (`key=value`) on top of whichever."""
    if proposals_path is not None:
        base, source = load_yaml(ProposalConfig, proposals_path), f"file {proposals_path}"
    else:
        base = checkpoint_proposal_config(checkpoint, label)
        if base is not None:
            tuning = checkpoint.proposal_tuning or {}
            source = (f"checkpoint {label} (tuned on split {tuning.get('split', '?')!r}, "
                      f"{tuning.get('protocol', '?')} protocol)")
        else:
            base, source = ProposalConfig(), (f"defaults (checkpoint {label} holds no tuned settings; "
                                               "`rtdl tune --write-checkpoint` chooses them on dev)")
    if overrides:
        base = apply_overrides(base, list(overrides))
        source += " with --set " + " ".join(overrides)
    return base, source
