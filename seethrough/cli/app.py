"""The command group and its error handling.

A :class:`~seethrough.errors.SeethroughError` becomes one line on stderr and exit
status 2; warnings about skipped files become one ``warning:`` line each.
"""

from __future__ import annotations

import sys
import warnings

import click
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(package_name="seethrough")
@click.pass_context
def cli(ctx):
    """seethrough: train image classifiers and see why they decide."""
    if ctx.invoked_subcommand is None:  # bare `seethrough`: the help, and success
        click.echo(ctx.get_help())
    elif ctx.invoked_subcommand != "serve":  # serve gives memory back instead (web/budget.py)
        from ..allocator import keep_freed_memory

        keep_freed_memory()  # fewer page faults in CPU passes (allocator.py)


def examples(*lines: str) -> str:
    """A command's epilog: the examples that end its --help."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    err_console.print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False, soft_wrap=True)


def main(argv=None) -> int:
    from ..errors import SeethroughError

    warnings.showwarning = _show_warning
    try:
        cli.main(args=argv, prog_name="seethrough", standalone_mode=False)
    except SeethroughError as exc:
        err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        return 2
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted; files already written are kept")
        return 130
    return 0


def run():
    sys.exit(main())
