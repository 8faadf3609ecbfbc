"""The live engine: equivalence with transformers, speculative decoding exactness, caches,
per-branch randomness and budget forcing, on tiny random models."""


import pytest
import torch

from engine_helpers import gen, tiny_model, tiny_spec
from lattts.engine.cache import KVCache
from lattts.engine.generate import Draft
from lattts.engine.model import Transformer
from lattts.engine.sampling import accept_drafts
from lattts.engine.weights import load_state_dict
from lattts.errors import UserError

transformers = pytest.importorskip("transformers")


def hf_pair(spec, seed=0):
    """A transformers model with random weights and our Transformer loaded from its state dict."""
    cfg_cls = transformers.Qwen2Config if spec.arch == "qwen2" else transformers.LlamaConfig
    cfg = {k: v for k, v in spec.to_hf_config().items() if k not in ("model_type", "architectures")}
    torch.manual_seed(seed)
    hf = transformers.AutoModelForCausalLM.from_config(cfg_cls(**cfg), attn_implementation="eager").eval()
    with torch.no_grad():  # norms default to ones: randomise them so a wrong norm shows up
        for name, p in hf.named_parameters():
            if "norm" in name or "bias" in name:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if "norm" in name else 0.0))
    ours = load_state_dict(Transformer(spec), hf.state_dict()).pack()
    return hf, ours


SPECS = {
    "llama-gqa-untied": tiny_spec(tie=False),
    "llama-tied": tiny_spec(tie=True, kv=4),
    "qwen2-bias": tiny_spec(arch="qwen2", tie=False),
    "llama3-rope": tiny_spec(rope_scaling=(("factor", 8.0), ("high_freq_factor", 4.0), ("low_freq_factor", 1.0),
                                           ("original_max_position_embeddings", 64), ("rope_type", "llama3"))),
}


@pytest.mark.parametrize("kind", list(SPECS))
def test_logits_equal_transformers(kind):
    hf, ours = hf_pair(SPECS[kind])
    ids = torch.randint(0, 256, (3, 11))
    with torch.inference_mode():
        ref = hf(ids).logits
        cache = ours.new_cache(3, 32)
        got = ours(ids[:, :8], cache, "all")  # prefill 8 tokens (packed GEMM path)
        assert torch.allclose(got, ref[:, :8], atol=1e-4, rtol=1e-4)
        for i in range(8, 11):  # then one token at a time through the cache
            step = ours(ids[:, i:i + 1], cache, "last")
            assert torch.allclose(step[:, 0], ref[:, i], atol=1e-4, rtol=1e-4)
        one = ours.new_cache(1, 32)  # batch of one (GEMV path)
        assert torch.allclose(ours(ids[:1], one, "all"), ref[:1], atol=1e-4, rtol=1e-4)


def test_cache_fork_and_rollback():
    cache = KVCache.allocate(2, 1, 2, 16, 4, torch.float32, "cpu")
    cache.keys[0][0, :, :5] = 1.0
    cache.set_lengths([5])
    forked = cache.fork(3)
    assert forked.host_lengths == [5, 5, 5] and torch.all(forked.keys[0][:, :, :5] == 1.0)
    forked.set_lengths([5, 3, 4])  # a rollback is only a length change
    assert not forked.uniform and forked.max_length == 5
    mask = forked.attention_mask(2, 7)
    assert mask.shape == (3, 1, 2, 7)
    assert mask[1, 0, 0].tolist() == [True] * 4 + [False] * 3  # branch 1: 3 cached + itself


PROMPT = [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("gamma", [1, 2, 4])
@pytest.mark.parametrize("drafter", ["self", "separate"])
def test_greedy_speculative_equals_greedy(gamma, drafter):
    target = tiny_model(seed=0)
    draft = Draft(target, 2) if drafter == "self" else Draft(tiny_model(seed=7, layers=2))
    plain = gen(target, PROMPT, max_tokens=40, temperature=0)
    spec = gen(target, PROMPT, max_tokens=40, temperature=0, draft=draft, draft_len=gamma)
    assert spec.outputs[0].tokens == plain.outputs[0].tokens
    hist = spec.accepted_histogram
    assert len(hist) == gamma + 1 and sum(hist) == spec.rounds
    assert sum((a + 1) * n for a, n in enumerate(hist)) >= 39  # every round yields accepted + 1 tokens


def test_branches_with_different_acceptance_keep_independent_caches():
    target = tiny_model(seed=0)
    prompts = [[1, 2, 3], [9, 8, 7, 6, 5], [42], [100, 101, 102, 103]]
    batched = gen(target, prompts, branches=4, max_tokens=25, temperature=0, draft=Draft(target, 1), draft_len=3)
    for b, p in enumerate(prompts):
        alone = gen(target, p, max_tokens=25, temperature=0)
        assert batched.outputs[b].tokens == alone.outputs[0].tokens


def test_branch_i_equals_a_one_branch_run_seeded_for_it():
    target = tiny_model(seed=3)
    batch = gen(target, PROMPT, branches=4, max_tokens=20, temperature=1.0, seed=100)
    for i in range(4):
        alone = gen(target, PROMPT, branches=1, max_tokens=20, temperature=1.0, seed=100 + i)
        assert batch.outputs[i].tokens == alone.outputs[0].tokens
    assert len({o.tokens for o in batch.outputs}) > 1  # branches really differ


def test_acceptance_rule_preserves_the_target_distribution():
    # Leviathan et al.: drafts accepted with min(1, p/q), residual norm(max(p - q, 0)) on rejection
    gen = torch.Generator().manual_seed(0)
    V, gamma, n = 6, 2, 200_000
    p = torch.softmax(torch.randn(1, gamma + 1, V, generator=gen) * 1.5, -1).expand(n, -1, -1)
    q = torch.softmax(torch.randn(1, gamma, V, generator=gen) * 1.5, -1).expand(n, -1, -1)
    drafts = torch.multinomial(q[0, 0], n, replacement=True, generator=gen)[:, None]
    drafts = torch.cat([drafts, torch.multinomial(q[0, 1], n, replacement=True, generator=gen)[:, None]], 1)
    accepted, extra = accept_drafts(p, q, drafts, torch.rand(n, gamma, generator=gen), torch.rand(n, generator=gen))
    first = torch.where(accepted > 0, drafts[:, 0], extra)  # the first token the branch keeps
    observed = torch.bincount(first, minlength=V).double()
    expected = p[0, 0].double() * n
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 20.5  # chi-square, 5 degrees of freedom, p = 0.001


def test_sampled_speculative_decoding_matches_target_distribution():
    # end to end on a 16-token vocabulary: the second generated token over 3000 branches, plain vs
    # speculative, against the exact marginal computed from the model
    target = tiny_model(seed=2, vocab=16, std_scale=0.3)
    draft = Draft(tiny_model(seed=9, vocab=16, layers=1, std_scale=0.3))
    n = 3000
    spec = gen(target, PROMPT[:3], branches=n, max_tokens=3, temperature=1.0, seed=0, draft=draft, draft_len=2)
    with torch.inference_mode():
        cache = target.new_cache(1, 16)
        p1 = torch.softmax(target(torch.tensor([PROMPT[:3]]), cache, "last")[0, 0], -1)
        marginal = torch.zeros(16, dtype=torch.float64)
        for t in range(16):
            c = target.new_cache(1, 16)
            logits = target(torch.tensor([PROMPT[:3] + [t]]), c, "last")[0, 0]
            marginal += p1[t].double() * torch.softmax(logits, -1).double()
    second = torch.tensor([o.tokens[1] for o in spec.outputs])
    observed = torch.bincount(second, minlength=16).double()
    expected = marginal * n
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 37.7  # chi-square, 15 degrees of freedom, p = 0.001
    assert 0 < spec.acceptance_rate < 1


def make_token_zero_likely(model, strength):
    """Give every token's embedding a constant first coordinate and token 0's head row a large weight on it,
    so token 0 (our end-of-sequence) gets a high logit whatever the context."""
    with torch.no_grad():
        model.embed[:, 0] = 3.0
        model.head[0, 0] = 4.0 * strength
    model.pack()


def test_budget_forcing_gives_exactly_l_tokens():
    target = tiny_model(seed=4, vocab=32)
    make_token_zero_likely(target, 1.0)
    free = gen(target, PROMPT, branches=4, max_tokens=30, temperature=1.0, stop_ids=(0,))
    assert all(o.finished and len(o.tokens) < 30 for o in free.outputs)
    for draft, gamma in ((None, 0), (Draft(target, 2), 3)):
        forced = gen(target, PROMPT, branches=4, max_tokens=30, min_tokens=30, temperature=1.0,
                          stop_ids=(0,), draft=draft, draft_len=gamma)
        for o in forced.outputs:
            assert len(o.tokens) == 30 and 0 not in o.tokens and not o.finished


def test_continuation_replaces_early_stops():
    target = tiny_model(seed=4, vocab=32)
    make_token_zero_likely(target, 3.0)
    out = gen(target, PROMPT, max_tokens=12, min_tokens=12, temperature=1.0, stop_ids=(0,), continuation=[7, 8])
    tokens = out.outputs[0].tokens
    pairs = list(zip(tokens, tokens[1:]))
    assert len(tokens) == 12 and 0 not in tokens and (7, 8) in pairs


def test_timings_record_every_pass_with_its_shape():
    target = tiny_model(seed=0)
    res = gen(target, PROMPT, branches=3, max_tokens=10, temperature=0, draft=Draft(target, 1), draft_len=2)
    phases = [(p.model, p.phase) for p in res.passes]
    assert phases[:2] == [("target", "prefill"), ("draft", "prefill")]
    verify = [p for p in res.passes if p.phase == "verify"]
    drafts = [p for p in res.passes if p.phase == "draft"]
    assert len(verify) == res.rounds and len(drafts) == 2 * res.rounds
    assert all(p.batch == 3 and p.query == 3 for p in verify)
    assert [p.query for p in drafts[:2]] == [2, 1]
    summary = res.timing_summary()
    assert summary["passes_s"] <= res.latency_s and summary["other_s"] >= 0
    assert res.to_json()["acceptance"]["draft_len"] == 2


@pytest.mark.parametrize("kwargs,text", [
    (dict(max_tokens=5, min_tokens=6), "min_tokens 6: exceeds the cap of 5"),
    (dict(draft_len=3), "needs a draft model"),
    (dict(max_tokens=5000), "context"),
    (dict(branches=0), "at least one branch"),
])
def test_requests_the_engine_cannot_run(kwargs, text):
    with pytest.raises(UserError, match=text):
        gen(tiny_model(), PROMPT, **kwargs)


def test_draft_with_other_vocabulary_is_refused():
    with pytest.raises(UserError, match="vocabularies differ"):
        gen(tiny_model(), PROMPT, draft=Draft(tiny_model(vocab=128)), draft_len=2)
