"""`lattts generate`: run the live engine once and show the texts and the per-pass timings."""

from __future__ import annotations

from typing import Optional

import typer

from lattts import limits
from lattts.cli.common import console, handle_errors, print_json, request_flags
from lattts.cli.parsing import ranged

FLAGS = {"branches": "--branches", "max_tokens": "--max-tokens", "min_tokens": "--min-tokens",
         "temperature": "--temperature", "top_p": "--top-p", "draft_len": "--draft-len", "prompt": "--prompt",
         "continuation": "--continuation"}


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


@handle_errors
def generate(
    model: str = typer.Option(..., "--model", "-m", help="smollm2-135m (real weights), a GGUF file, a safetensors folder, or any model name/config.json (random weights)."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="Prompt text (wrapped in the model's chat template when it has one)."),
    branches: int = ranged(1, "--branches", "-B", allowed=limits.LIVE_BRANCHES, help="Parallel branches sampled in one batch."),
    max_tokens: int = ranged(128, "--max-tokens", "-L", allowed=limits.TOKENS, help="Tokens per branch at most."),
    min_tokens: int = ranged(0, "--min-tokens", allowed=limits.count(0, limits.MAX_TOKENS),
                             help="Budget forcing: end-of-sequence is banned until this many tokens (at most --max-tokens)."),
    temperature: float = ranged(0.7, "--temperature", "-t", allowed=limits.TEMPERATURE, help="0 = greedy."),
    top_p: float = ranged(1.0, "--top-p", allowed=limits.real(0, 1, low_open=True), help="Nucleus sampling mass."),
    seed: int = ranged(0, "--seed", allowed=limits.SEED, help="Branch b samples from a generator seeded with seed + b."),
    draft: Optional[str] = typer.Option(None, "--draft", "-d", help="Draft model, or self:N (the target's first N layers)."),
    draft_len: int = ranged(0, "--draft-len", "-g", allowed=limits.DRAFT_LEN, help="Draft tokens proposed per round (gamma)."),
    end_think: Optional[str] = typer.Option(None, "--end-think", help="End-of-thinking token, banned like end-of-sequence before --min-tokens."),
    continuation: Optional[str] = typer.Option(None, "--continuation", help="Text inserted when a branch tries to stop early, e.g. 'Wait' (plain decoding)."),
    raw: bool = typer.Option(False, "--raw", help="Do not apply the chat template."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda:N."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, bf16 or fp16 (use fp32 on CPU)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    passes: bool = typer.Option(False, "--passes", help="With --json: include every forward pass (model, phase, B, q, s, time)."),
) -> None:
    """Generate with the lattts engine: B branches, budget forcing, optional speculative decoding."""
    from lattts.backend import GenerationRequest
    from lattts.engine.device import check_device
    from lattts.engine.local import load_engine
    from lattts.engine.memory import prompt_tokens_at_most
    from lattts.errors import UserError

    check_device(device)
    if draft_len and not draft:
        raise UserError(f"--draft-len {draft_len} needs a draft: pass --draft MODEL or --draft self:N")
    if draft and draft_len < 1:
        raise UserError(f"--draft {draft} needs --draft-len G >= 1 (draft tokens per round)")
    if not prompt.strip():
        raise UserError("--prompt is empty: give the text to continue")
    sampling = dict(branches=branches, max_tokens=max_tokens, min_tokens=min_tokens, temperature=temperature,
                    top_p=top_p, seed=seed, draft_len=draft_len)
    with request_flags(FLAGS):  # the request's own checks, before a model is loaded
        GenerationRequest.of([0], **sampling).check()
    _check_memory(model, draft, prompt_tokens_at_most(prompt, chat=not raw), device, dtype, branches, max_tokens,
                  draft_len)
    engine = load_engine(model, device, dtype, draft)
    tok = engine.loaded.tokenizer
    stop = set(engine.stop_ids)
    if end_think:
        tid = tok.token_id(end_think)
        if tid is None:
            raise UserError(f"--end-think {end_think!r} is not a single token of this tokenizer")
        stop.add(tid)
    request = GenerationRequest.of(tok.encode(prompt if raw else tok.chat(prompt)), stop_ids=tuple(stop),
                                   continuation=tok.encode(continuation) if continuation else None, **sampling)
    with request_flags(FLAGS):
        result = engine.generate(request)
    if json_out:
        out = result.to_json(with_passes=passes)
        out |= {"model": engine.spec.name, "weights": engine.loaded.weights, "draft": draft}
        print_json(out)
        return
    _print(result, engine.loaded, draft)


def _check_memory(model, draft, prompt_tokens, device, dtype, branches, max_tokens, draft_len) -> None:
    """Refuse, before loading anything, a run that cannot fit this machine's memory."""
    from lattts.engine.memory import check_fits, engine_memory_bytes, live_workload
    from lattts.errors import UserError

    work = live_workload(model, draft, prompt_tokens)
    limit = work.target.max_position
    if max_tokens + draft_len + 1 > limit:  # the engine's own check, before the prompt is tokenised
        raise UserError(f"--max-tokens {max_tokens}: exceeds {work.target.name}'s context of {limit} positions; lower it")
    need = engine_memory_bytes(work, dtype, branches, draft_len, max_tokens, device)
    check_fits(need, f"{work.target.name} in {dtype}, {branches} branch{'es' if branches > 1 else ''} of {max_tokens} "
                     f"tokens", device=device,
               fix="lower --branches or --max-tokens, or use a smaller model or --dtype")


def _print(result, loaded, draft) -> None:
    from rich.table import Table

    from lattts.units import format_duration

    if not loaded.real_text:
        console.print(f"[yellow]{loaded.weights}: the text below is meaningless; the timings are real[/]")
    for b, out in enumerate(result.outputs):
        end = "stopped" if out.finished else "cap"
        console.print(f"[bold]branch {b}[/] ({len(out.tokens)} tokens, {end}):", highlight=False)
        console.print(out.text, highlight=False, markup=False)
    summary = result.timing_summary()
    t = Table(title=f"timing: {format_duration(result.latency_s)} end to end", title_justify="left")
    for col in ("phase", "passes", "total", "mean per pass"):
        t.add_column(col, justify="right" if col != "phase" else "left")
    for phase, entry in summary["phases"].items():
        t.add_row(phase, str(entry["passes"]), format_duration(entry["total_s"]), format_duration(entry["mean_s"]))
    t.add_row("fork (KV copy)", "", format_duration(summary["fork_s"]), "")
    t.add_row("other (sampling, acceptance, Python)", "", format_duration(summary["other_s"]), "")
    console.print(t)
    if result.accepted_histogram is not None:
        console.print(f"draft {draft}: acceptance rate {result.acceptance_rate:.3f}, {result.tokens_per_round:.2f} tokens "
                      f"per round, accepted-per-round histogram {result.accepted_histogram}")
