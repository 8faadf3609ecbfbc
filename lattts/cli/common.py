"""What every command shares: error reporting, the consoles, JSON output, progress bars, and the
checks of flags that several commands take (--gpu / --device, --html PATH). A bad command line itself
(unknown flag, a number out of range) is ``lattts.cli.parsing``'s."""

from __future__ import annotations

import functools
from contextlib import contextmanager
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import typer
from rich.console import Console

from lattts.errors import LatttsError, UserError

PIPED_WIDTH = 200  # columns of output that is not a terminal's (rich would wrap it at 80)


def _console(stream: Any, **kwargs: Any) -> Console:
    """A console that fits a terminal; written to a pipe or a file, its lines are whole (not wrapped)
    and its tables PIPED_WIDTH wide, or COLUMNS wide when that is set."""
    is_tty = getattr(stream, "isatty", None)
    if is_tty and is_tty():
        return Console(**kwargs)
    return Console(width=None if os.environ.get("COLUMNS") else PIPED_WIDTH, soft_wrap=True, **kwargs)


console = _console(sys.stdout)
err_console = _console(sys.stderr, stderr=True)


_CTX = "lattts_context"  # the parameter handle_errors adds, through which typer hands over its context


def handle_errors(func: Callable) -> Callable:
    """Report LatttsError as one line (exit 2 for bad input, 1 otherwise); tracebacks only with --debug.

    The wrapper asks typer for the command's context (an extra parameter in its signature) and reads
    --debug from the root command's parameters, so no module holds state between invocations."""
    sig = inspect.signature(func)
    ctx_param = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.pop(_CTX)

        def debugging() -> bool:
            return bool(ctx.find_root().params.get("debug"))

        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except LatttsError as exc:
            if debugging():
                raise
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: one line unless --debug
            if debugging():
                raise
            err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} "
                              f"(rerun with `lattts --debug ...` for the traceback)", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), ctx_param])
    return wrapper


def print_json(obj: Any) -> None:
    """One JSON object on stdout, nothing else."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_default) + "\n")


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def torch_device(gpu: int | None, device: str | None) -> str:
    """'cpu' or 'cuda:N' from the --gpu N / --device cpu pair that calibrate and validate take."""
    if gpu is not None and device is not None:
        raise UserError("give either --gpu N or --device cpu, not both")
    if device not in (None, "cpu"):
        raise UserError(f"--device {device!r}: use --device cpu, or --gpu N for a CUDA GPU")
    return f"cuda:{gpu}" if gpu is not None else "cpu"


def progress_bar(*, time_left: bool = False, transient: bool = True):
    """A rich progress bar on stderr (so --json output stays clean)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if time_left:
        columns += [TextColumn("left"), TimeRemainingColumn()]
    return Progress(*columns, console=err_console, transient=transient)


def reject_old_flag(value: Any, old: str, new: str, why: str) -> None:
    """One line for a renamed flag (hidden options keep the old spelling only to say this)."""
    if value is not None:
        raise UserError(f"{old} is now {new} ({why})")


@contextmanager
def request_flags(flags: dict[str, str]):
    """Word a backend's RequestError (which names a request field) as the command's flag."""
    from lattts.backend import RequestError

    try:
        yield
    except RequestError as exc:
        raise UserError(f"{flags.get(exc.field_name, exc.field_name)} {exc.value}: {exc.problem}") from None


def check_output_file(path: Path | None, flag: str = "--html") -> Path | None:
    """``path``, once it is sure to be writable as a new or replaced file: checked before the command
    does any work, so a bad path costs nothing and no folder is created on the user's behalf."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give a file name in it, e.g. {flag} {path / 'chart.html'}")
    if path.suffix.lower() not in (".html", ".htm"):
        # also catches `--html out/` for a folder not yet made: the path arrives without its slash
        raise UserError(f"{flag} {path}: not an .html file name; give one, e.g. {flag} {path.with_suffix('.html')} "
                        f"or {flag} {path / 'chart.html'} in an existing folder")
    parent = path.parent
    if not parent.exists():
        raise UserError(f"{flag} {path}: folder {parent} does not exist; create it first (mkdir -p {parent}) "
                        f"or give a path in an existing folder")
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: {parent} is a file, not a folder; give a path in an existing folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: folder {parent} is not writable; give a path in a folder you can write to")
    return path
