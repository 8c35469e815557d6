#!/usr/bin/env python
"""`vsl train` from a checkout: the command lives in vsl/commands/run_vsl.py (`--help` lists its options)."""

import sys

import _checkout  # noqa: F401  (this checkout's packages first)
from vsl.commands.run_vsl import main

if __name__ == "__main__":
    sys.exit(main())
