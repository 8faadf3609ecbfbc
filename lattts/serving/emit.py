"""The launch command and request body that realize a configuration on a serving engine: n = B
samples of one prompt, exactly L tokens (ignore end-of-sequence), slots for B sequences, and the
draft model and draft length gamma as launch settings (none of the three engines takes gamma per
request). Flags as each engine documents them:

- llama.cpp ``llama-server``: ``-m`` model GGUF, ``-c`` total context, ``-np`` slots (each gets
  ``-c / -np``), ``--metrics``, ``-md`` draft GGUF, ``--spec-draft-n-max`` draft tokens per round;
  ``POST /completion`` with ``n``, ``n_predict``, ``ignore_eos``.
- vLLM ``vllm serve``: ``--tensor-parallel-size``, ``--max-model-len``, ``--max-num-seqs``,
  ``--speculative-config`` JSON (``method`` draft_model or eagle3, ``model``,
  ``num_speculative_tokens``); ``POST /v1/completions`` with ``n``, ``max_tokens``, ``min_tokens``,
  ``ignore_eos``.
- SGLang ``python -m sglang.launch_server``: ``--model-path``, ``--tp-size``, ``--context-length``,
  ``--speculative-algorithm`` (STANDALONE for a draft model, EAGLE3 for an EAGLE-3 head),
  ``--speculative-draft-model-path``, ``--speculative-num-steps`` gamma, ``--speculative-eagle-topk 1``
  and ``--speculative-num-draft-tokens`` gamma + 1 (a chain); ``POST /generate`` with
  ``sampling_params`` ``n``, ``max_new_tokens``, ``min_new_tokens``, ``ignore_eos``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from lattts.errors import UserError

EMIT_ENGINES = ("llama.cpp", "vllm", "sglang")
PROMPT = "<your prompt>"


@dataclass(frozen=True)
class Emitted:
    engine: str
    launch: str  # a shell command
    request: dict  # the JSON body
    endpoint: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {"engine": self.engine, "launch": self.launch, "endpoint": self.endpoint, "request": self.request,
                "notes": list(self.notes)}


def _name(spec, for_engine: str) -> str:
    """The model as the engine loads it: its Hugging Face id (vLLM, SGLang) or a GGUF file (llama.cpp)."""
    from lattts.models.registry import find_entry

    entry = find_entry(spec.name.split("[:")[0])
    if for_engine == "llama.cpp":
        if spec.config_path and spec.config_path.endswith(".gguf"):
            return spec.config_path
        return f"<a GGUF of {entry.hf_id if entry else spec.name}>"
    if entry is not None:
        return entry.hf_id
    return spec.config_path.rsplit("/config.json", 1)[0] if spec.config_path else spec.name


def emit(engine: str, work, devices: int, branches: int, draft_len: int, max_tokens: int) -> Emitted:
    """How to launch ``engine`` and what to send it for (B, gamma, L) of ``work`` on ``devices`` GPUs."""
    if engine not in EMIT_ENGINES:
        raise UserError(f"--emit {engine!r}: use one of {', '.join(EMIT_ENGINES)}")
    context = work.prompt_tokens + max_tokens + draft_len + 8  # prompt, L tokens, a round's lookahead, slack
    notes: list[str] = []
    draft = work.draft if draft_len else None
    self_draft = draft is not None and work.draft_shares_weights
    if self_draft and engine != "llama.cpp":
        notes.append(f"{engine} has no draft made of the target's own first layers: launched without speculation; "
                     f"use a separate draft model, or llama.cpp with a self-draft GGUF (lattts serve --draft self:N)")
        draft = None
    return {"llama.cpp": _llamacpp, "vllm": _vllm, "sglang": _sglang}[engine](
        work, draft, devices, branches, draft_len if draft else 0, max_tokens, context, notes)


def _llamacpp(work, draft, devices, B, gamma, L, context, notes) -> Emitted:
    cmd = ["llama-server", "-m", _name(work.target, "llama.cpp"), "-c", str(B * context), "-np", str(B), "--metrics"]
    if draft is not None:
        dname = (f"<the first {draft.n_layers} layers of the target: lattts serve --draft self:{draft.n_layers} writes it>"
                 if work.draft_shares_weights else _name(draft, "llama.cpp"))
        cmd += ["-md", dname, "--spec-draft-n-max", str(gamma)]
    if devices > 1:
        notes.append(f"{devices} GPUs: llama.cpp splits layers across them (-ngl 99 --split-mode layer), not "
                     f"tensor-parallel as lattts priced it")
    body = {"prompt": PROMPT, "n": B, "n_predict": L, "ignore_eos": True, "temperature": 1.0}
    return Emitted("llama.cpp", shlex.join(cmd), body, "POST /completion", tuple(notes))


def _vllm(work, draft, devices, B, gamma, L, context, notes) -> Emitted:
    model = _name(work.target, "vllm")
    cmd = ["vllm", "serve", model, "--tensor-parallel-size", str(devices), "--max-model-len", str(context),
           "--max-num-seqs", str(max(B, 1))]
    if draft is not None:
        method = "eagle3" if draft.is_draft_head else "draft_model"
        cmd += ["--speculative-config", json.dumps({"method": method, "model": _name(draft, "vllm"),
                                                    "num_speculative_tokens": gamma})]
    body = {"model": model, "prompt": PROMPT, "n": B, "max_tokens": L, "min_tokens": L, "ignore_eos": True,
            "temperature": 1.0}
    return Emitted("vllm", shlex.join(cmd), body, "POST /v1/completions", tuple(notes))


def _sglang(work, draft, devices, B, gamma, L, context, notes) -> Emitted:
    cmd = ["python", "-m", "sglang.launch_server", "--model-path", _name(work.target, "sglang"), "--tp-size",
           str(devices), "--context-length", str(context), "--max-running-requests", str(max(B, 1))]
    if draft is not None:
        cmd += ["--speculative-algorithm", "EAGLE3" if draft.is_draft_head else "STANDALONE",
                "--speculative-draft-model-path", _name(draft, "sglang"), "--speculative-num-steps", str(gamma),
                "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", str(gamma + 1)]
    body = {"text": PROMPT, "sampling_params": {"n": B, "max_new_tokens": L, "min_new_tokens": L, "ignore_eos": True,
                                                "temperature": 1.0}}
    return Emitted("sglang", shlex.join(cmd), body, "POST /generate", tuple(notes))
