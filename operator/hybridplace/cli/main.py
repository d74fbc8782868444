"""`hybridplace` entry point: one subcommand per module, each registering its own parser.

Exit codes: 0 success, 1 an unexpected error, 2 bad input (a file, an object, a flag), with one
message that names the file, object and field; never a traceback for something a user did.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import explain as explain_command
from . import loadgen as loadgen_command
from . import profile as profile_command
from . import recommend as recommend_command
from . import report as report_command
from . import run as run_command
from .errors import UsageError

# Each module has register(subparsers), which sets `handler` on its parser.
SUBCOMMANDS = [run_command, recommend_command, explain_command, loadgen_command, profile_command, report_command]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridplace",
        description="Place inference services on the cheapest hardware that meets their latency SLO.",
    )
    parser.add_argument("--version", action="version", version=f"hybridplace {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UsageError as err:
        one_line = " ".join(str(err).split("\n"))
        command = " ".join(x for x in (args.command, getattr(args, "verb", None)) if x)
        print(f"hybridplace {command}: {one_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
