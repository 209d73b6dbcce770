"""The `rtdl` command line. Thin: each command parses options and calls one function in
`pipeline/`; heavy imports happen inside the commands so `rtdl --help` stays fast."""
from __future__ import annotations

import logging

import click

from pipeline import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rtdl")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """rtdl: weakly-supervised multimodal deepfake temporal localization (RT-DeepLoc)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


# Commands are added below, one block each, in pipeline order.
