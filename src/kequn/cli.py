"""The `kequn` console command: Kequn's own commands plus every Django management command."""

from __future__ import annotations

import os
import sys

USAGE = """usage: kequn COMMAND [options]

Main commands:
  demo        set up the database, an admin account and demo data, then serve the UI
  serve       serve the back office and API (production server)
  worker      run background jobs and the schedules (daily analytics refresh)
  token       create, list or revoke API tokens
  analyze     score a transactions file (RFM, CLV, churn, cohorts) without a database
  migrate     create or update the database tables

Every Django management command works too (kequn help lists them).
Settings come from KEQUN_* environment variables; see README.md.
"""


def fail(message: str, code: int = 2) -> int:
    """Print a one-line error on stderr and return the exit code."""
    print(f"kequn: error: {message}", file=sys.stderr)
    return code


def run_command(name: str, args: list[str]) -> int:
    """Run a Django management command, turning bad input into a one-line error."""
    import django
    from django.core.management import CommandError, get_commands, load_command_class

    django.setup()
    commands = get_commands()
    if name not in commands:
        return fail(f"unknown command {name!r} (see `kequn --help`)")
    command = load_command_class(commands[name], name)
    # Without _called_from_command_line the parser raises CommandError instead of printing usage.
    parser = command.create_parser("kequn", name)
    try:
        options = vars(parser.parse_args(args))
        positional = options.pop("args", ())
        command.execute(*positional, **options)
    except CommandError as exc:
        message = str(exc).removeprefix("Error: ")
        return fail(f"{name}: {message}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch `kequn COMMAND ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE, end="")
        return 0
    name, args = argv[0], argv[1:]
    if name in {"--version", "version"}:
        from kequn import __version__

        print(f"kequn {__version__}")
        return 0
    if name == "analyze":
        # Analysing a file needs no database and no Django.
        from kequn.analytics.cli import main as analyze

        return analyze(args)

    from kequn.conf import ConfigError, ensure_data_dir

    try:
        ensure_data_dir()
    except ConfigError as exc:
        return fail(str(exc))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")
    try:
        return run_command(name, args)
    except KeyboardInterrupt:
        print("kequn: interrupted", file=sys.stderr)
        return 130
    except ConfigError as exc:  # a setting out of range, found when the settings load
        return fail(str(exc))
    except Exception as exc:  # users get one line; KEQUN_DEBUG shows the traceback
        from kequn.conf import env_bool

        if env_bool("KEQUN_DEBUG", False):
            raise
        return fail(
            f"{name}: {type(exc).__name__}: {exc} (run with KEQUN_DEBUG=1 for details)", code=1
        )


if __name__ == "__main__":
    sys.exit(main())
