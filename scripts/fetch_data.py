#!/usr/bin/env python
"""`vsl fetch-data` from a checkout: the command lives in vsl/commands/fetch_data.py (`--help` lists its options)."""

import sys

import _checkout  # noqa: F401  (this checkout's packages first)
from vsl.commands.fetch_data import main

if __name__ == "__main__":
    sys.exit(main())
