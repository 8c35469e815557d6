#!/usr/bin/env python
"""`vsl tag` from a checkout: the command lives in vsl/commands/tag.py (`--help` lists its options)."""

import sys

from vsl.commands.tag import main

if __name__ == "__main__":
    sys.exit(main())
