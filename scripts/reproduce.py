#!/usr/bin/env python
"""`vsl reproduce` from a checkout: the command lives in vsl/commands/reproduce.py (`--help` lists its options)."""

import sys

import _checkout  # noqa: F401  (this checkout's packages first)
from vsl.commands.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
