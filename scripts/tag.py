#!/usr/bin/env python
"""`vsl tag` from a checkout: the command lives in vsl/commands/tag.py (`--help` lists its options)."""

import sys

import _checkout  # noqa: F401  (this checkout's packages first)
from vsl.commands.tag import main

if __name__ == "__main__":
    sys.exit(main())
