"""The `radassist` command line: every front-end is a module of this package, of the top layer.

Sub-commands live in their own modules (`radassist/cli/<command>.py`) and are imported only when used,
and each imports the layers below it inside `run`, so `radassist info` does not pay for Qt, onnxruntime
or torch. Each module exposes `add_arguments(parser)` and `run(args) -> int`; the work itself stays in
the layer it belongs to (a front-end parses, calls and prints). Errors the user can act on
(`RadAssistError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

# name -> (module, one-line help). Order is the order of `radassist --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("radassist.cli.info", "print an image's metadata as JSON"),
    "read": ("radassist.cli.read", "read one radiograph: findings, saliency, radiomics, report"),
    "segment": ("radassist.cli.segment", "write the lung mask of an image"),
    "report": ("radassist.cli.report", "draft report for an image"),
    "nlp": ("radassist.cli.nlp", "labels JSON for a report text"),
    "evaluate-nlp": ("radassist.cli.evaluate_nlp", "score the report NLP against MeSH tags"),
    "view": ("radassist.cli.view", "open the desktop viewer"),
    "demo": ("radassist.cli.demo", "open the viewer on the bundled samples"),
    "listen": ("radassist.cli.listen", "receive studies by C-STORE, pre-read them, send results to PACS"),
    "batch": ("radassist.cli.batch", "pre-read a folder of images with several workers"),
    "train": ("radassist.cli.train", "train the classifier ([train] extra)"),
    "train-chest-check": ("radassist.cli.train_chest_check", "train the input-QA chest check ([train] extra)"),
    "evaluate": ("radassist.cli.evaluate", "evaluate the shipped model on a labels.csv folder"),
    "export": ("radassist.cli.export", "export the de-identified feedback dataset"),
    "finetune": ("radassist.cli.finetune", "recalibrate/fine-tune on exported feedback"),
    "models": ("radassist.cli.models", "list, activate or roll back model versions"),
    "selftest": ("radassist.cli.selftest", "load the bundled models and read a bundled sample end to end"),
}

PROG = "radassist"
_ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def error_line(message: str) -> str:
    """The one-line error format other tools rely on (see DESIGN.md, CLI errors).

    Control characters (a newline in a file name) are escaped, so the message stays one line whatever it quotes.
    """
    from radassist.outputs import shown

    return f"{PROG}: error: {shown(message)}"


def _top_level_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Chest X-ray reading assistant (research use, not a medical device).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items()),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log detail on stderr (-vv: also third-party libraries' debug messages)")
    parser.add_argument("--log-file", metavar="PATH", help="also append the log to PATH (names and paths redacted)")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="see below")
    return parser


# Commands that open the viewer keep a rotating log in the user log folder (radassist.logs).
VIEWER_COMMANDS = frozenset({"view", "demo"})


def _global_options(argv: list[str]) -> tuple[int, str | None, list[str]]:
    """(verbosity, log file, the rest) from the options before the command: -v/-vv/--verbose, --log-file."""
    verbosity, log_file, rest = 0, None, list(argv)
    while rest and rest[0].startswith("-") and rest[0] not in ("-h", "--help", "--version", "--selftest"):
        option = rest.pop(0)
        if option == "--verbose" or (len(option) > 1 and option == "-" + "v" * (len(option) - 1)):
            verbosity += 1 if option == "--verbose" else len(option) - 1
        elif option == "--log-file" and rest:
            log_file = rest.pop(0)
        elif option.startswith("--log-file="):
            log_file = option.split("=", 1)[1]
        else:
            print(error_line(f"unknown option {option} (before the command: -v, -vv, --verbose, --log-file PATH)"),
                  file=sys.stderr)
            raise SystemExit(2)
    return verbosity, log_file, rest


def _version() -> str:
    from radassist import __version__

    return __version__


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with our one-line format instead of a usage dump on bad arguments."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, error_line(message) + "\n")


def main(argv: list[str] | None = None) -> int:
    verbosity, log_file, argv = _global_options(list(sys.argv[1:] if argv is None else argv))
    if argv[:1] == ["--selftest"]:  # the frozen bundle's smoke test calls it as a flag
        argv[0] = "selftest"
    if not argv or argv[0] not in COMMANDS:
        _top_level_parser().parse_args(argv[:1] or ["--help"])  # prints help / the error, exits
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_ = COMMANDS[name]
    from radassist.errors import RadAssistError

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(error_line(f"'{name}' is not available in this installation ({exc.name} is missing)"),
              file=sys.stderr)
        return 2
    parser = _Parser(prog=f"{PROG} {name}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        from radassist.environment import check_environment
        from radassist.logs import configure_logging

        check_environment()
        configure_logging(verbosity, log_file, viewer_log=name in VIEWER_COMMANDS)
        logging.getLogger("radassist.cli").debug("radassist %s, command %s, Python %s", _version(), name,
                                          sys.version.split()[0])
        return int(module.run(args) or 0)
    except RadAssistError as exc:
        print(error_line(str(exc)), file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise
        # No permission, a read-only or full disk: the user's to fix, wherever in the program it surfaced
        # (e.g. a read-only data folder, issue 20). Programming errors (other OSErrors) keep their traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(error_line(f"{where}{exc.strerror or exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(error_line("interrupted"), file=sys.stderr)
        return 130
