"""The ``lattts`` command line. Each command lives in its own module and imports heavy
libraries (torch, pandas, plotly) only when it runs, so ``lattts predict`` starts fast."""

from __future__ import annotations

import typer

from lattts import __version__
from lattts.cli.parsing import OneLineErrors

app = typer.Typer(
    name="lattts", cls=OneLineErrors, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Latency-aware test-time scaling: the most accurate (branches, draft length, length budget) "
         "within a wall-clock budget, predicted by a calibrated roofline and checked live.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lattts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass  # options every command shares; handle_errors reads --debug back through click's context


def _register() -> None:
    from lattts.cli import (acceptance, accuracy, calibrate, curves, generate, hardware, measure, models, predict,
                            roofline, serve, traces, validate)

    for module in (predict, roofline, hardware, models, curves, accuracy, acceptance, traces, measure, generate,
                   calibrate, validate, serve):
        module.register(app)


_register()


def main() -> None:
    app()
