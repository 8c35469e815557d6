#!/usr/bin/env python
"""`vsl compare` from a checkout: the command lives in vsl/commands/compare.py (`--help` lists its options)."""

import sys

import _checkout  # noqa: F401  (this checkout's packages first)
from vsl.commands.compare import main

if __name__ == "__main__":
    sys.exit(main())
