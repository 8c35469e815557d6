"""The ``vsl`` command that pip installs: ``vsl <command> [options]``, ``vsl <command> --help``.

Each command is a module of :mod:`vsl.commands` with a ``main(argv) -> exit status``; the
scripts in ``scripts/`` call the same functions.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("run_vsl", "train and score a BiGRU baseline or a VSL model"),
    "induce": ("run_hmm", "train an HMM or neural HMM for tag induction and score its states"),
    "tag": ("tag", "tag new text with a trained run folder"),
    "evaluate": ("evaluate", "score a trained run folder on a dataset split"),
    "reproduce": ("reproduce", "run a table of configs/tables over seeds and write it up"),
    "compare": ("compare", "the head-to-head of VSL and the neural HMM on one dataset"),
    "figures": ("figures", "the paper's figures from finished runs"),
    "fetch-data": ("fetch_data", "download the freely licensed datasets"),
    "data-stats": ("data_stats", "counts of a dataset's splits and of its vocabulary"),
    "bench": ("bench", "speed and memory benchmarks, JSON out"),
    "demo": ("demo", "baseline and VSL-GG-Hier on Twitter POS, a few minutes on a CPU"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return "usage: vsl <command> [options]   (vsl <command> --help for its options)\n\ncommands:\n" + "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from vsl import __version__
        print(f"vsl {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"{usage()}\n\nerror: unknown command {argv[0]!r}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"vsl.commands.{COMMANDS[argv[0]][0]}")
    sys.argv[0] = f"vsl {argv[0]}"  # what argparse shows as the program in usage lines
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
