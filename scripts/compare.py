#!/usr/bin/env python
"""`vsl compare` from a checkout: the command lives in vsl/commands/compare.py (`--help` lists its options)."""

import sys

from vsl.commands.compare import main

if __name__ == "__main__":
    sys.exit(main())
