"""The vLLM and SGLang clients against loopback fakes in their documented shapes (these engines need
a GPU, so CI cannot run them), the emitted launch commands, and bad input at the server boundary."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fake_servers import FakeConfig, FakeServer
from lattts.backend import GenerationRequest, RequestError
from lattts.cli import app
from lattts.errors import UserError
from lattts.serving.connect import connect, served_spec
from lattts.serving.http import ServerError

runner = CliRunner()


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_engine_is_detected_and_a_forced_request_reads_back(engine):
    with FakeServer(FakeConfig(engine)) as fake:
        backend = connect(fake.url)
        assert backend.engine == engine and backend.info.draft_len == 0
        result = backend.generate(GenerationRequest.forced(list(range(20)), 4, 32, seed=3))
        assert [o.length for o in result.outputs] == [32] * 4 and result.latency_s > 0
        path, body = fake.cfg.requests[-1]
        if engine == "vllm":
            assert path == "/v1/completions"
            assert (body["n"], body["max_tokens"], body["min_tokens"], body["ignore_eos"]) == (4, 32, 32, True)
        else:
            sp = body["sampling_params"]
            assert path == "/generate" and body["input_ids"] == list(range(20))
            assert (sp["n"], sp["max_new_tokens"], sp["min_new_tokens"], sp["ignore_eos"]) == (4, 32, 32, True)


def test_vllm_acceptance_histogram_from_per_position_counters():
    # every round of the fake accepts 2 of 4 draft tokens: the histogram has all rounds at 2
    with FakeServer(FakeConfig("vllm", draft_len=4, accepted=2)) as fake:
        fake.cfg.counters["vllm:spec_decode_num_drafts_total"] = 0  # drafts, but no per-position counter yet
        with pytest.raises(ServerError, match="has not counted any draft position"):
            connect(fake.url)
    with FakeServer(FakeConfig("vllm", draft_len=4, accepted=2)) as fake:
        fake.cfg.counters.update({f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{position="{k}"}}': 0
                                  for k in range(4)})
        fake.cfg.counters["vllm:spec_decode_num_drafts_total"] = 0
        backend = connect(fake.url)
        assert backend.info.draft_len == 4
        result = backend.generate(GenerationRequest.forced([1, 2, 3], 2, 31, draft_len=4))
        rounds = 2 * 10  # (31 - 1) tokens / 3 per round, for each of 2 branches
        assert result.accepted_histogram == [0, 0, rounds, 0, 0]
        assert result.tokens_per_round == pytest.approx(3.0)
        assert result.acceptance_model().tokens_per_round(4) == pytest.approx(3.0)


def test_sglang_accept_length_from_verify_counts():
    with FakeServer(FakeConfig("sglang", draft_len=3, accepted=1)) as fake:
        backend = connect(fake.url)
        assert backend.info.draft_len == 3
        result = backend.generate(GenerationRequest.forced([1, 2, 3], 2, 21, draft_len=3))
        assert result.counts.rounds == 2 * 10 and result.tokens_per_round == pytest.approx(2.0)
        # 2 tokens per round at gamma 3 under i.i.d. acceptance: alpha + alpha^2 + alpha^3 = 1
        a = result.acceptance_rate
        assert a + a ** 2 + a ** 3 == pytest.approx(1.0, abs=1e-6)


def test_requests_a_server_cannot_run_are_refused_before_sending():
    with FakeServer(FakeConfig("sglang", slots=4, draft_len=2)) as fake:
        backend = connect(fake.url)
        with pytest.raises(RequestError, match="more than the 4 slots"):
            backend.generate(GenerationRequest.forced([1, 2], 8, 16, draft_len=2))
        with pytest.raises(RequestError, match="drafts 2 tokens per round"):
            backend.generate(GenerationRequest.forced([1, 2], 2, 16))  # asks for no draft
        with pytest.raises(RequestError, match="context"):
            backend.generate(GenerationRequest.forced([1, 2], 2, 5000, draft_len=2))
        assert fake.cfg.requests == []  # nothing was sent


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_a_server_that_stops_before_the_forced_length_is_an_error(engine):
    with FakeServer(FakeConfig(engine, stop_early_at=10)) as fake:
        with pytest.raises(ServerError, match="stopped a branch after 10 of 32 forced tokens"):
            connect(fake.url).generate(GenerationRequest.forced([1, 2], 2, 32))


def test_named_engine_and_model_must_match_the_server():
    with FakeServer(FakeConfig("vllm", model="Qwen/QwQ-32B")) as fake:
        with pytest.raises(UserError, match="is vllm, not sglang"):
            connect(fake.url, "sglang")
        backend = connect(fake.url, "vllm")
        with pytest.raises(UserError, match="serves Qwen/QwQ-32B"):
            served_spec(backend, "llama-3.1-8b")
        assert served_spec(backend, "qwq-32b").name == "QwQ-32B"
        with pytest.raises(UserError, match="pass --model"):
            served_spec(backend, None)  # vLLM does not say the shape


@pytest.mark.parametrize("args,text", [
    (["validate", "--server", "http://127.0.0.1:9"], "cannot reach http://127.0.0.1:9"),
    (["validate", "--server", "localhost:8080"], "give the server's URL"),
    (["calibrate", "--server", "http://127.0.0.1:9"], "cannot reach"),
    (["measure", "--server", "http://127.0.0.1:9", "--benchmark", "tests/data/math500.excerpt.jsonl",
      "--samples", "2", "--lengths", "16"], "cannot reach"),
    (["predict", "--budget", "60s", "--emit", "tgi"], "--emit 'tgi'"),
])
def test_bad_server_input_is_one_line_and_exit_2(args, text):
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert text in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_validate_refuses_a_fake_without_a_plain_server_or_profile():
    with FakeServer(FakeConfig("vllm", draft_len=3)) as fake:
        fake.cfg.counters.update({'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="0"}': 0,
                                  'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="1"}': 0,
                                  'vllm:spec_decode_num_accepted_tokens_per_pos_total{position="2"}': 0})
        res = runner.invoke(app, ["validate", "--server", fake.url, "--model", "qwen2.5-0.5b", "--draft", "qwen2.5-0.5b",
                                  "--grid", "B=1;g=3;L=16"])
        assert res.exit_code == 2 and "one launched without a draft" in res.output, res.output


# ---- the emitted launch commands, against each engine's documented flags --------------------------

EMIT_CASE = ["predict", "--budget", "60s", "--device", "h100-sxm", "--json", "--emit"]


def emitted(engine: str) -> dict:
    res = runner.invoke(app, EMIT_CASE + [engine])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    return out, out["emit"]


def test_emit_vllm_is_the_documented_command():
    out, e = emitted("vllm")
    b = out["best"]
    spec = json.dumps({"method": "draft_model", "model": "simplescaling/s1.1-7B", "num_speculative_tokens": b["draft_len"]})
    assert e["launch"] == (f"vllm serve simplescaling/s1.1-32B --tensor-parallel-size {out['device']['devices']} "
                           f"--max-model-len {128 + b['max_tokens'] + b['draft_len'] + 8} --max-num-seqs {b['branches']} "
                           f"--speculative-config '{spec}'")
    assert e["request"] == {"model": "simplescaling/s1.1-32B", "prompt": "<your prompt>", "n": b["branches"],
                            "max_tokens": b["max_tokens"], "min_tokens": b["max_tokens"], "ignore_eos": True,
                            "temperature": 1.0}
    assert e["endpoint"] == "POST /v1/completions"


def test_emit_sglang_is_the_documented_command():
    out, e = emitted("sglang")
    b, g = out["best"], out["best"]["draft_len"]
    assert e["launch"] == (f"python -m sglang.launch_server --model-path simplescaling/s1.1-32B --tp-size "
                           f"{out['device']['devices']} --context-length {128 + b['max_tokens'] + g + 8} "
                           f"--max-running-requests {b['branches']} --speculative-algorithm STANDALONE "
                           f"--speculative-draft-model-path simplescaling/s1.1-7B --speculative-num-steps {g} "
                           f"--speculative-eagle-topk 1 --speculative-num-draft-tokens {g + 1}")
    assert e["request"]["sampling_params"] == {"n": b["branches"], "max_new_tokens": b["max_tokens"],
                                               "min_new_tokens": b["max_tokens"], "ignore_eos": True, "temperature": 1.0}


def test_emit_llama_cpp_gives_slots_context_and_draft(tmp_path):
    out, e = emitted("llama.cpp")
    b = out["best"]
    per_slot = 128 + b["max_tokens"] + b["draft_len"] + 8
    assert f"-c {b['branches'] * per_slot} -np {b['branches']} --metrics" in e["launch"]
    assert e["launch"].startswith("llama-server -m '<a GGUF of simplescaling/s1.1-32B>'")
    assert f"-md '<a GGUF of simplescaling/s1.1-7B>' --spec-draft-n-max {b['draft_len']}" in e["launch"]
    assert e["request"] == {"prompt": "<your prompt>", "n": b["branches"], "n_predict": b["max_tokens"],
                            "ignore_eos": True, "temperature": 1.0}


def test_a_served_decode_step_leaves_out_the_start_up_of_n_samples():
    # llama.cpp's span of an n=B request is start-up + tokens x step; the step is what a long run pays per
    # token, so the timer takes the difference of two spans (measured here: B=4 gave 43.4 ms per token
    # over 24 tokens against 33.1 over 96, from the same server)
    from types import SimpleNamespace

    from lattts.calibrate.grid import PassShape
    from lattts.serving.timing import ServerPassRunner

    step_ms, start_up_ms, asked = 30.0, 250.0, []

    class Served:
        engine = "llama.cpp"
        info = SimpleNamespace(draft_len=0, launch={"n_vocab": 1000}, version="fake", url="http://127.0.0.1:1")

        def generate(self, request):
            asked.append(request)
            span = start_up_ms + step_ms * request.max_tokens
            timings = [{"predicted_ms": span - 1.0 * b, "predicted_per_token_ms": span / request.max_tokens}
                       for b in range(request.branches)]
            return SimpleNamespace(server={"timings": timings}, latency_s=span / 1e3)

    runner = ServerPassRunner(Served())
    (seconds,) = runner.time_pass(PassShape(4, 1, 512), repeats=1, warmup=0)
    assert seconds == pytest.approx(step_ms / 1e3)  # the per-token figure of either request is 40 ms or more
    (short, long) = asked
    assert short.branches == long.branches == 4 and long.max_tokens - short.max_tokens == 24
    # the timed steps are centred on s, on one prompt the server may keep cached between the two
    assert len(short.prompts[0]) + (short.max_tokens + long.max_tokens) / 2 == pytest.approx(512)
    assert short.prompts == long.prompts and short.cached_prompt and long.cached_prompt


def test_a_verify_shaped_pass_is_a_cached_prompt_extended_and_the_request_cost_is_timed_apart():
    # a pass of q tokens on s cached ones is the prompt_ms of a prompt extending one the slot holds; the
    # client primes the slot again when another request took it (the server then processed every token)
    from types import SimpleNamespace

    from lattts.calibrate.grid import PassShape
    from lattts.serving.llamacpp import LlamaCppServer
    from lattts.serving.timing import ServerPassRunner

    cache, per_token_ms, bodies = {"slot0": []}, 4.0, []

    class Http:
        base_url = "http://127.0.0.1:1"

        async def post(self, path, body):
            bodies.append(body)
            prompt, held = body["prompt"], cache["slot0"]
            common = 0
            while common < min(len(prompt), len(held)) and prompt[common] == held[common]:
                common += 1
            cache["slot0"] = list(prompt)
            new = len(prompt) - common
            return SimpleNamespace(status=200, url=self.base_url, text="",
                                   json=lambda: {"timings": {"prompt_n": new, "prompt_ms": per_token_ms * new}})

    info = SimpleNamespace(draft_len=0, launch={"n_vocab": 1000}, version="fake", url=Http.base_url, slots=8,
                           engine="llama.cpp", context_tokens=1024)
    server = LlamaCppServer(Http(), info)
    runner = ServerPassRunner(server)
    first = runner.time_pass(PassShape(1, 5, 64, logits=1), repeats=2, warmup=0)
    assert first == [pytest.approx(5 * per_token_ms / 1e3)] * 2
    assert len(bodies) == 3  # the 64-token prefix once, then two extensions of it
    assert all(b["cache_prompt"] and b["id_slot"] == 0 for b in bodies)
    cache["slot0"] = [1, 2, 3]  # another request took the slot
    assert runner.time_pass(PassShape(1, 3, 64, logits=1), 1, 0) == [pytest.approx(3 * per_token_ms / 1e3)]
    assert len(bodies) == 6  # a failed extension (it processed 67 tokens), the prefix again, the extension
    with pytest.raises(ValueError, match="cannot time a pass of B=2 x q=5"):
        runner.time_pass(PassShape(2, 5, 64, logits=1), 1, 0)


def test_llama_cpp_samples_of_one_request_hold_adjacent_slots():
    # an n=B request runs in its parent slot and the B-1 lowest free ones; pinned to parent 0 they are
    # slots 0..B-1. A parent in the last slot left a gap, and llama.cpp rebuilt its graph every step
    # (measured: 20.5 against 15.8 ms per step at B=2, benchmarks/bench_llamacpp_slots.py)
    from types import SimpleNamespace

    from lattts.serving.llamacpp import LlamaCppServer

    info = SimpleNamespace(draft_len=0, launch={}, version="fake", url="http://127.0.0.1:1", slots=8,
                           engine="llama.cpp", context_tokens=1024)
    server = LlamaCppServer(SimpleNamespace(base_url=info.url), info)
    server._slot0_prefix = [1, 2, 3]  # what an extension left cached in slot 0
    _, one = server.body(GenerationRequest.forced([5, 6], 1, 8))
    assert "id_slot" not in one and server._slot0_prefix == [1, 2, 3]  # one sample: any slot the cache picks
    _, four = server.body(GenerationRequest.forced([5, 6], 4, 8))
    assert four["n"] == 4 and four["id_slot"] == 0
    assert server._slot0_prefix is None  # slot 0 holds this request's prompt now: an extension primes it again


def test_llama_cpp_rounds_are_tokens_less_accepted_drafts():
    # llama.cpp drafts at most the tokens left less one, so draft_n / gamma undercounts a run's rounds:
    # measured at gamma 4, 32 tokens, none accepted: draft_n 114 over 31 rounds; one accepted: 30 rounds
    from types import SimpleNamespace

    from lattts.serving.llamacpp import LlamaCppServer

    info = SimpleNamespace(draft_len=4, launch={}, version="fake", url="http://127.0.0.1:1", slots=8,
                           engine="llama.cpp", context_tokens=1024)
    server = LlamaCppServer(SimpleNamespace(base_url=info.url), info)
    request = GenerationRequest.forced([5, 6], 2, 32, draft_len=4)
    answer = [{"index": i, "tokens": list(range(32)), "content": "", "stop_type": "limit",
               "timings": {"predicted_n": 32, "draft_n": n, "draft_n_accepted": a}} for i, (n, a) in enumerate([(114, 0), (110, 1)])]
    result = server.parse(request, answer, 1.0, None)
    assert result.rounds == 31  # the slowest sample's
    assert (result.counts.rounds, result.counts.drafted, result.counts.accepted) == (31 + 30, 224, 1)


def test_a_request_overhead_is_wall_time_less_the_server_spans():
    from types import SimpleNamespace

    from lattts.serving.timing import ServerPassRunner

    class Served:
        engine = "llama.cpp"
        info = SimpleNamespace(draft_len=0, launch={"n_vocab": 1000}, version="fake", url="http://127.0.0.1:1",
                               slots=8)

        def generate(self, request):
            timings = [{"prompt_ms": 120.0, "predicted_ms": 10.0}]
            return SimpleNamespace(server={"timings": timings}, latency_s=0.130 + 0.045)

    fields, runs = ServerPassRunner(Served()).outside_costs(repeats=3)
    assert fields["request_overhead_s"] == pytest.approx(0.045)
    assert fields["sample_s_per_logit"] == 0.0 and len(runs["requests"]) == 3
