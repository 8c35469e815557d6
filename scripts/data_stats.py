#!/usr/bin/env python
"""`vsl data-stats` from a checkout: the command lives in vsl/commands/data_stats.py (`--help` lists its options)."""

import sys

import _checkout  # noqa: F401  (this checkout's packages first)
from vsl.commands.data_stats import main

if __name__ == "__main__":
    sys.exit(main())
