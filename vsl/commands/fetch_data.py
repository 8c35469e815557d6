"""Download the freely licensed datasets (UD, Twitter POS, raw tweets), verifying md5 sums.

The files land under ``--dest`` with the layout of ``shared/data``; reruns skip files that are
already present and correct. CoNLL-2003 and WSJ are licensed: the script prints how to supply
them. The logic lives in :mod:`vsl.data.fetch`.

Example::

    python scripts/fetch_data.py --dest ./data --only ud twitter
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vsl.commands import HelpFormatter
from vsl.data import fetch
from vsl.errors import VslError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--dest", type=Path, default=Path("data"),
                        help="data root to fill (default: ./data)")
    parser.add_argument("--only", nargs="+", choices=fetch.GROUPS, metavar="GROUP",
                        help=f"dataset groups to fetch, among {', '.join(fetch.GROUPS)} "
                             "(default: all)")
    parser.add_argument("--base-url", "--base-url-override", dest="base_url",
                        default=fetch.DEFAULT_BASE_URL,
                        help="prefix replacing %(default)s, e.g. a mirror or a file:// folder "
                             "laid out as <owner>/<repo>/<commit>/<path>")
    parser.add_argument("--timeout", type=float, default=fetch.TIMEOUT_S,
                        help="seconds before a stalled connection fails (default: %(default)s)")
    parser.add_argument("--retries", type=int, default=fetch.RETRIES,
                        help="extra attempts after a transient network error "
                             "(default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fetch the selected groups, print a summary and the licensed-data instructions."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = fetch.fetch_all(args.dest, args.only, base_url=args.base_url,
                                  timeout=args.timeout, retries=args.retries)
    except VslError as exc:
        print(f"error: {exc}\n(files fetched so far are kept; rerun to resume)", file=sys.stderr)
        return 1
    print(fetch.format_summary(summary))
    print()
    print(fetch.licensed_data_help(args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
