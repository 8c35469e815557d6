#!/usr/bin/env python
"""`vsl bench` from a checkout: the command lives in vsl/commands/bench.py (`--help` lists its options)."""

import sys

from vsl.commands.bench import main

if __name__ == "__main__":
    sys.exit(main())
