"""Which engine answers at a URL, and which model it serves.

The engine is detected from what only it answers: llama.cpp's ``/props`` (with ``total_slots``),
SGLang's ``/get_server_info``, vLLM's ``/version`` beside ``/v1/models``. The model's shape comes
from the server where it can say (llama.cpp serves a GGUF file: its metadata, quantized bytes per
weight included), else from ``--model``; where both exist they must agree.
"""

from __future__ import annotations

from lattts.errors import UserError
from lattts.models.spec import ModelSpec
from lattts.serving.base import ServingBackend
from lattts.serving.http import Http, ServerError, run

ENGINES = ("llama.cpp", "vllm", "sglang")


async def _detect(http: Http) -> ServingBackend:
    from lattts.serving import llamacpp, sglang, vllm

    r = await http.get("/props")
    if r.status == 200 and isinstance(r.json(), dict) and "total_slots" in r.json():
        return llamacpp.LlamaCppServer(http, await llamacpp.server_info(http, r.json()))
    r = await http.get("/get_server_info")
    if r.status == 200 and isinstance(r.json(), dict):
        return sglang.SglangServer(http, sglang.server_info(http, r.json()))
    r = await http.get("/version")
    if r.status == 200 and isinstance(r.json(), dict) and "version" in r.json():
        return vllm.VllmServer(http, await vllm.server_info(http, r.json()))
    raise ServerError(f"{http.base_url} answers HTTP but not as llama.cpp, vLLM or SGLang (no /props, "
                      f"/get_server_info or /version); is --server the serving engine's address?")


def connect(url: str, engine: str | None = None, transport=None) -> ServingBackend:
    """A client of the server at ``url``; ``engine``, if named, must be what answers there."""
    if engine is not None and engine not in ENGINES:
        raise UserError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--server {url!r}: give the server's URL, e.g. http://127.0.0.1:8080")
    backend = run(_detect(Http(url, transport=transport)))
    if engine is not None and backend.engine != engine:
        raise UserError(f"the server at {url} is {backend.engine}, not {engine}; drop --engine or point --server "
                        f"at a {engine} server")
    return backend


def served_spec(backend: ServingBackend, model: str | None) -> ModelSpec:
    """The shape of the served model: from the server's GGUF file where it is readable here, else from
    ``model`` (a name or config.json); a model that differs from what the server serves is an error."""
    from pathlib import Path

    from lattts.models.gguf import read_gguf_spec
    from lattts.models.registry import find_entry, resolve_model

    served = backend.info.model
    from_server = read_gguf_spec(served) if served.endswith(".gguf") and Path(served).is_file() else None
    if model is None:
        if from_server is None:
            raise UserError(f"the {backend.engine} server at {backend.info.url} serves {served!r}, whose shape lattts "
                            f"cannot read from here; pass --model NAME_OR_CONFIG (`lattts models`)")
        return from_server
    given = resolve_model(model)
    if from_server is not None:
        if from_server.shape != given.shape:
            raise UserError(f"--model {model} ({given.n_params / 1e6:.0f}M parameters) is not the model the server "
                            f"serves ({served}: {from_server.n_params / 1e6:.0f}M); drop --model or point it at the "
                            f"served model")
        return from_server
    entry = find_entry(model)
    if backend.engine in ("vllm", "sglang") and entry is not None and served and served != entry.hf_id \
            and not served.endswith(entry.hf_id.split("/")[-1]):
        raise UserError(f"--model {model} is {entry.hf_id}, but the {backend.engine} server at {backend.info.url} "
                        f"serves {served}; pass the served model's name or config.json")
    return given
