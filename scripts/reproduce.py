#!/usr/bin/env python
"""`vsl reproduce` from a checkout: the command lives in vsl/commands/reproduce.py (`--help` lists its options)."""

import sys

from vsl.commands.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
