"""The commands of the ``vsl`` program (:mod:`vsl.cli`), one module each with a
``main(argv) -> exit status``; ``scripts/`` holds a thin wrapper of each for a checkout."""

from __future__ import annotations

import argparse


def add_run_folder_arguments(parser: argparse.ArgumentParser, default_out: str, resumable: str = "run") -> None:
    """The options every training command starts with: a settings file and the run folder to
    write, continue (``--resume``) or replace (``--overwrite``)."""
    parser.add_argument("--config", help="YAML/JSON file of settings")
    parser.add_argument("--out", help=f"output folder (default {default_out})")
    parser.add_argument("--resume", metavar="OUT", help=f"continue the {resumable} in OUT from its last.pt")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out (its files are removed first)")


def add_placement_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a training command runs and what it shows: device, CPU threads, progress bars."""
    parser.add_argument("--device")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_settings(parser: argparse.ArgumentParser, args, settings, family: str) -> tuple[object, bool]:
    """The run's settings and whether it resumes: the saved ones of ``args.resume`` (only
    ``threads`` and ``device`` may change), else ``settings`` (a :class:`~vsl.config.Settings`
    class) from the defaults, ``--config`` and the options given; conflicting or refused options
    end the command through ``parser.error``."""
    from vsl.errors import VslError

    if args.resume and args.overwrite:
        parser.error("--resume continues the run in OUT, --overwrite replaces it: give one")
    if not args.resume:
        return settings.from_command_line(args.config, args), False
    try:
        return settings.for_resume(args, family), True
    except VslError as err:
        parser.error(str(err))
