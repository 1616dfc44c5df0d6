"""`parley`: the parser of every command, logging, and what each outcome means as an exit code.

The CLI decides what the user sees: results on stdout (or files), progress and errors on stderr,
exit code 0 on success, 1 when an input could not be processed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine.cli import models, transcribe
from engine.cli.args import ParleyArgumentParser
from engine.errors import ParleyError
from engine.logfile import attach_log_file, log_crash, log_path


def build_parser() -> argparse.ArgumentParser:
    parser = ParleyArgumentParser(prog="parley", description="Live speech transcription and translation.",
                                  epilog=f"log file (warnings, errors and their details):\n  {log_path()}",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    transcribe.add_parser(sub)
    from engine.cli import live

    live.add_parsers(sub)
    from engine.cli import translate

    translate.add_parser(sub)
    models.add_parser(sub)
    return parser


def _configure_logging(verbose: int) -> None:
    """Warnings (more with -v) on stderr, INFO and up in the log file."""
    root = logging.getLogger()
    level = logging.WARNING - 10 * verbose
    if not root.handlers:  # (under a test runner the runner's handlers stay as they are)
        terminal = logging.StreamHandler()
        terminal.setLevel(level)
        terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(terminal)
        root.setLevel(min(level, logging.INFO))
    attach_log_file(min(level, logging.INFO))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        if args.command == "transcribe":
            return transcribe.run(args)
        if args.command == "models":
            return models.run(args)
        if args.command == "translate":
            from engine.cli import translate

            return translate.run(args)
        if args.command in ("live", "devices"):
            from engine.cli import live

            return live.cmd_live(args) if args.command == "live" else live.cmd_devices(args)
    except ParleyError as e:
        print(f"parley: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("parley: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a file the user named (or a folder it lives in) could not be read or written
        log_crash("parley failed on a file")
        print(f"parley: error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line here, the traceback in the log file
        log_crash("parley failed unexpectedly")
        print(f"parley: error: unexpected {type(e).__name__}: {e} (a bug: please report it with the traceback "
              f"from {log_path()})", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
