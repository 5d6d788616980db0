"""The ``voxspec`` command: build, validate, verify, inspect, schema.

Exit codes: 0 success, 1 ``verify`` found a figure that no longer reproduces,
2 the user's input is wrong (every problem printed as one located line), 3 a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from voxspec import __version__
from voxspec.errors import Problem, UserError

EXIT_OK, EXIT_CHANGED, EXIT_USER, EXIT_BUG = 0, 1, 2, 3
FORMATS = ("png", "pdf", "svg", "tiff")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments like every other user error (exit 2, one line)."""

    def error(self, message):
        raise UserError(Problem(message, ("arguments",), self.prog))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="voxspec", description="Reproducible figures of 3D volumetric data.")
    parser.add_argument("--version", action="version", version=f"voxspec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    build = commands.add_parser("build", help="build figures from specs")
    build.add_argument("specs", nargs="*", metavar="SPEC_OR_DIR")
    build.add_argument("-o", "--out", default="outputs", metavar="DIR")
    build.add_argument("--format", nargs="+", choices=FORMATS, dest="formats", metavar="FMT")
    build.add_argument("-j", "--jobs", type=_positive_int, default=1, metavar="N")
    build.add_argument("--force", action="store_true", help="rebuild figures that are up to date")
    build.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    build.add_argument(
        "--preflight", action="store_true", help="check each figure for print problems"
    )
    build.add_argument(
        "--strict",
        action="store_true",
        help="with --preflight: print problems are errors (exit 2, nothing written)",
    )

    validate = commands.add_parser("validate", help="check specs without building")
    validate.add_argument("specs", nargs="*", metavar="SPEC_OR_DIR")

    verify = commands.add_parser(
        "verify", help="rebuild in a temporary folder and compare with the manifests"
    )
    verify.add_argument("specs", nargs="*", metavar="SPEC_OR_DIR")
    verify.add_argument("-o", "--out", default="outputs", metavar="DIR")

    inspect = commands.add_parser("inspect", help="print the provenance a figure file carries")
    inspect.add_argument("file", metavar="FIGURE_FILE")

    schema = commands.add_parser("schema", help="print the JSON Schema of the spec language")
    schema.add_argument("-o", "--out", metavar="FILE")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _build(args) -> int:
    from voxspec.build import build

    build(
        args.specs,
        args.out,
        args.formats,
        args.jobs,
        args.force,
        args.quiet,
        preflight=args.preflight,
        strict=args.strict,
    )
    return EXIT_OK


def _validate(args) -> int:
    from voxspec.build import find_specs, load_specs

    docs, problems = load_specs(find_specs(args.specs))
    for doc in docs:
        from voxspec.spec import display_path

        for vid, volume in doc.spec.volumes.items():
            source = volume.source
            if (source.url or source.path) and not source.sha256:
                file, line, column = doc.locate(("volumes", vid, "source"))
                print(
                    f"{file}:{line}:{column}: volumes.{vid}.source: warning: not pinned; "
                    "add 'sha256:' so the figure always uses the same bytes",
                    file=sys.stderr,
                )
        print(f"voxspec: {display_path(doc.path)}: valid", file=sys.stderr)
    if problems:
        raise UserError(problems)
    return EXIT_OK


def _verify(args) -> int:
    from voxspec.verify import verify

    verdicts, problems = verify(args.specs, args.out)
    for verdict in verdicts:
        print(verdict.line())
    if problems:
        raise UserError(problems)
    return EXIT_OK if all(v.reproduces for v in verdicts) else EXIT_CHANGED


def _inspect(args) -> int:
    from voxspec.provenance import read_provenance

    provenance = read_provenance(args.file)
    sys.stdout.write(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return EXIT_OK


def _schema(args) -> int:
    from voxspec.output import write_atomic
    from voxspec.spec import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if args.out:
        write_atomic(Path(args.out), text.encode())
    else:
        sys.stdout.write(text)
    return EXIT_OK


COMMANDS = {
    "build": _build,
    "validate": _validate,
    "verify": _verify,
    "inspect": _inspect,
    "schema": _schema,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as error:
        for problem in error.problems:
            print(problem.format(), file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("voxspec: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug in voxspec, not the user's input
        if os.environ.get("VOXSPEC_DEBUG"):
            raise
        print(
            f"voxspec: internal error (a bug in voxspec; please report it, and set "
            f"VOXSPEC_DEBUG=1 for the traceback): {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return EXIT_BUG
