"""Check that deployment files invoke the real `retouch` CLI and set only real settings."""

from __future__ import annotations

import argparse

import pytest

# Every RETOUCH_* variable is a field of a settings area (worker.settings.AREAS); none is read elsewhere.
EXTRA_RETOUCH_VARIABLES: set[str] = set()


def parser() -> argparse.ArgumentParser:
    try:
        from worker.cli import build_parser

        return build_parser()
    except ImportError as error:  # the CLI imports engines' commands, written in parallel
        pytest.skip(f"worker.cli cannot build its parser yet: {error}")


def parse_command(argv: list[str]) -> argparse.Namespace:
    """Parse a container's command with the real parser; a typo'd subcommand or flag fails the test."""
    try:
        return parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`retouch {' '.join(argv)}` is not a valid retouch command line")


def known_variables() -> set[str]:
    from worker.settings import AREAS

    return {f"RETOUCH_{name.upper()}" for area in AREAS.values() for name in area.model_fields} | (
        EXTRA_RETOUCH_VARIABLES
    )
