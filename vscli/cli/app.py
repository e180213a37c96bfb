"""The Typer app, its global options, and the CLI's single error boundary.

`VscliGroup.main` runs every command and turns whatever it raises into one `Error: ...` line on stderr
and an exit code from `vscli.errors.ExitCode` (tracebacks only with --debug).
"""


import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from typer._click import exceptions as click_errors
from typer._click.globals import get_current_context
from typer.core import TyperGroup

from vscli import __version__, notices
from vscli.errors import ExitCode, VscliError
from vscli.workspace import HOME_ENV, Workspace, user_dir

_debug = False

# The library's names of inputs (`VscliError.field`) -> the options a user of the CLI gives them with.
FLAGS = {"max_num_results": "-k", "mode": "--mode", "fusion": "--fusion", "min_score": "--min-score",
         "filters": "--filter", "expires_after_days": "--expires-after-days", "since": "--since",
         "uri": "--uri", "collection": "--collection"}


class VscliGroup(TyperGroup):
    """The root command: every error, whatever raised it, leaves through here."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,  # type: ignore[override]
             standalone_mode: bool = True, **extra: Any) -> Any:
        global _debug
        _debug = os.environ.get("VSCLI_DEBUG", "") not in ("", "0")
        try:
            with notices.listening(_announce):
                rv = super().main(args=args, prog_name=prog_name or "vscli", complete_var=complete_var,
                                  standalone_mode=False, **extra)
        except VscliError as exc:
            _fail(exc.worded(FLAGS), exc.exit_code, exc)
        except click_errors.NoArgsIsHelpError as exc:
            sys.stdout.write(exc.ctx.get_help() + "\n")
            sys.exit(ExitCode.OK)
        except click_errors.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(exc.format_message().rstrip(".") + hint, ExitCode.USAGE, exc)
        except click_errors.ClickException as exc:
            _fail(exc.format_message(), ExitCode.USAGE, exc)
        except (typer.Abort, KeyboardInterrupt) as exc:
            if sys.stderr.isatty():
                sys.stderr.write("\n")  # off the line where the terminal echoed ^C
            _fail("interrupted", ExitCode.INTERRUPTED, exc)
        except BrokenPipeError:
            # The reader went away (`vscli ... | head`): not an error worth a message.
            _quiet_stdout()
            sys.exit(ExitCode.OK)
        except OSError as exc:
            _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""),
                  ExitCode.ERROR, exc)
        except Exception as exc:  # a bug: say so on one line, keep the traceback for --debug
            _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                  ExitCode.ERROR, exc)
        finally:
            if "vscli.sqlitedb" in sys.modules:  # let go of catalogs and the upload registry now
                sys.modules["vscli.sqlitedb"].close_all()
        sys.exit(rv if isinstance(rv, int) else ExitCode.OK)


def _announce(text: str) -> None:
    """Slow set-up the user would otherwise wait through in silence: said on a terminal only."""
    if sys.stderr.isatty():
        sys.stderr.write(f"{text} …\n")
        sys.stderr.flush()


def _fail(message: str, code: int, exc: BaseException) -> NoReturn:
    if _debug:
        traceback.print_exception(exc)
    first = " ".join(message.strip().splitlines()) or type(exc).__name__
    sys.stderr.write(f"Error: {first}\n")
    sys.stderr.flush()
    sys.exit(int(code))


def _quiet_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


app = typer.Typer(
    cls=VscliGroup,
    name="vscli",
    help="A local vector store: upload files, search them in natural language, ask a chat model about "
    "them. Offline; OpenAI-shaped objects.\n\n\b\nExample: vscli create docs && vscli upload notes/*.md "
    "--store docs && vscli query docs \"what is data mining?\"",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich's Markdown renderer costs 140 ms per --help
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"vscli {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[Optional[Path], typer.Option(
        "--home", envvar=HOME_ENV, show_envvar=True, metavar="PATH",
        help="Workspace directory (default: the platform's user data dir for vscli).")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", envvar="VSCLI_DEBUG", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    global _debug
    _debug = _debug or debug
    ctx.obj = Workspace(user_dir(home))


def workspace() -> Workspace:
    """The workspace chosen by --home / $VSCLI_HOME / the default, for the running command."""
    return get_current_context().find_root().obj
