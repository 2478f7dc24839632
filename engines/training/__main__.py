"""`python -m engines.training train|eval ...`: the same commands as `retouch train|eval`."""

from __future__ import annotations

import argparse
import sys

from engines.training.commands import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.training")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
