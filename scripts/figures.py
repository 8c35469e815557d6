#!/usr/bin/env python
"""`vsl figures` from a checkout: the command lives in vsl/commands/figures.py (`--help` lists its options)."""

import sys

import _checkout  # noqa: F401  (this checkout's packages first)
from vsl.commands.figures import main

if __name__ == "__main__":
    sys.exit(main())
