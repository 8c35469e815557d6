"""The commands of the ``vsl`` program (:mod:`vsl.cli`), one module each with a
``main(argv) -> exit status``; ``scripts/`` holds a thin wrapper of each for a checkout."""

from __future__ import annotations

import argparse

from vsl.config import Settings
from vsl.errors import VslError
from vsl.run_folder import resume_settings

#: What a resumed run may change: where it runs, not what it computes.
RESUME_OVERRIDES = ("threads", "device")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` with the description as written and, after each option's help, its default
    where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.option_strings and action.nargs != 0 and action.default not in (None, argparse.SUPPRESS) \
                and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def show_setting_defaults(parser: argparse.ArgumentParser, settings: type[Settings]) -> None:
    """Append to the help of each flag that sets one of ``settings`` its default there (the
    flags themselves default to None, so that a --config file can set what they leave unset)."""
    defaults = settings().to_dict()
    for action in parser._actions:
        value = defaults.get(action.dest)
        if action.option_strings and action.nargs != 0 and value not in (None, []):
            action.help = f"{action.help or ''} (default: {str(value).replace('%', '%%')})".lstrip()


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


def run_settings(parser: argparse.ArgumentParser, args, settings: type[Settings], family: str) -> tuple[Settings, bool]:
    """The run's settings and whether it resumes. With ``--resume OUT``: the saved settings of
    the ``family`` run in OUT, of which only ``--threads`` and ``--device`` may change. Else the
    defaults of ``settings``, then the ``--config`` file, then every option given that names a
    setting. Conflicting or refused options end the command through ``parser.error``."""
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in OUT, --overwrite replaces it: give one")
    if not args.resume:
        base = settings.load(args.config) if args.config else settings()
        return base.replace(**{name: getattr(args, name) for name in settings.field_names() if hasattr(args, name)}), False
    given = [name for name in settings.field_names()
             if getattr(args, name, None) is not None and name not in RESUME_OVERRIDES]
    if given or args.config or args.out:
        parser.error("--resume takes the run's saved settings; only --threads and --device may change")
    try:
        saved = resume_settings(args.resume, settings, family)
    except VslError as err:
        parser.error(str(err))
    return saved.replace(**{name: getattr(args, name, None) for name in RESUME_OVERRIDES}), True
