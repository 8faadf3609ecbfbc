"""The command line itself: numeric flags with a documented range, and one line (exit code 2) for
a command line click rejects, like every other bad input (``common.handle_errors``)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from lattts.cli.common import err_console
from lattts.limits import Range

# click's exception classes: typer >= 0.20 vendors click, older typers use it; BadParameter is in both
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OutOfRange(typer.BadParameter):
    """A numeric flag outside its range; the message is the whole line."""

    def format_message(self) -> str:
        return self.message


class OneLineErrors(TyperGroup):
    """The root command: a command line click rejects (unknown flag, not a number, out of range, missing
    option) is one line on stderr and exit code 2, like every other bad input, instead of typer's box."""

    def make_context(self, *args: Any, **kwargs: Any):
        with _one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _one_line():
            return super().invoke(ctx)


@contextmanager
def _one_line():
    """Print a click error (but not a request for help) as one line, and exit with its code (2)."""
    try:
        yield
    except _CLICK_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `lattts traces` alone prints its help
            raise
        message = " ".join(exc.format_message().split())
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and not isinstance(exc, OutOfRange) else ""
        err_console.print(f"[bold red]error:[/] {escape(message)}{hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def ranged(default: Any, *decls: str, allowed: Range, help: str, **kwargs: Any) -> Any:
    """A typer option whose value must lie in ``allowed``: --help shows the range, and a value outside it
    is one line naming the range (exit 2) while the command line is parsed, before any work starts."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        problem = allowed.problem(max(param.opts, key=len), value)
        if problem:
            raise OutOfRange(problem, ctx=ctx, param=param)
        return value

    return typer.Option(default, *decls, help=f"{help} Range: {allowed.text()}.", callback=check, **kwargs)
