"""Parameter accounting against PyTorch modules built on the meta device (STYLE example 7)."""

import json

import pytest
import torch
from torch import nn

from lattts.errors import UserError
from lattts.models import ModelSpec, resolve_draft, resolve_model
from lattts.models.registry import catalog, published_acceptance

transformers = pytest.importorskip("transformers")

FULL_MODELS = ["s1.1-32B", "s1.1-7B", "s1.1-3B", "Qwen2.5-0.5B-Instruct", "Llama-3.1-8B-Instruct", "SmolLM2-135M-Instruct"]


def hf_meta_model(spec: ModelSpec):
    cfg_cls = transformers.Qwen2Config if spec.arch == "qwen2" else transformers.LlamaConfig
    cfg = {k: v for k, v in spec.to_hf_config().items() if k not in ("model_type", "architectures")}
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(cfg_cls(**cfg))


@pytest.mark.parametrize("name", FULL_MODELS)
def test_parameter_count_equals_transformers_module(name):
    spec = resolve_model(name)
    model = hf_meta_model(spec)
    assert spec.n_params == sum(p.numel() for p in model.parameters())


class Eagle3Head(nn.Module):
    """EAGLE-3 draft head as published (Li et al. 2025, arXiv 2503.01840; released config
    yuhuili/EAGLE3-LLaMA3.1-Instruct-8B): fc fuses three target features (3d -> d); one decoder
    layer whose q/k/v read [embedding; feature] (2d); its own head over the draft vocabulary;
    the embedding table is the target's, so it is not a parameter here."""

    def __init__(self, s: ModelSpec):
        super().__init__()
        d, h = s.d_model, s.head_dim
        self.fc = nn.Linear(3 * d, d, bias=False)
        self.q_proj = nn.Linear(2 * d, s.n_heads * h, bias=False)
        self.k_proj = nn.Linear(2 * d, s.n_kv_heads * h, bias=False)
        self.v_proj = nn.Linear(2 * d, s.n_kv_heads * h, bias=False)
        self.o_proj = nn.Linear(s.n_heads * h, d, bias=False)
        self.gate, self.up = nn.Linear(d, s.d_ff, bias=False), nn.Linear(d, s.d_ff, bias=False)
        self.down = nn.Linear(s.d_ff, d, bias=False)
        self.input_norm, self.hidden_norm, self.post_norm, self.norm = (nn.Parameter(torch.ones(d)) for _ in range(4))
        self.lm_head = nn.Linear(d, s.draft_vocab_size, bias=False)


def test_eagle3_head_count_equals_module():
    spec = resolve_model("eagle3")
    with torch.device("meta"):
        head = Eagle3Head(spec)
    assert spec.n_params == sum(p.numel() for p in head.parameters())
    # the released checkpoint is about 850 MB in 16-bit
    assert spec.weight_bytes("bf16") == pytest.approx(850e6, rel=0.02)


def test_32b_shape_is_near_its_published_size():
    spec = resolve_model("s1.1-32b")
    entry = next(e for e in catalog() if e.name == "s1.1-32B")
    assert spec.n_params == pytest.approx(entry.published_params, rel=0.015)  # Qwen2.5-32B card: 32.5B
    assert spec.kv_bytes_per_token("bf16") == 2 * 64 * 8 * 128 * 2


@pytest.mark.parametrize("name,canonical", [("S1.1-32B", "s1.1-32B"), ("qwq-32b", "QwQ-32B"), ("Qwen/QwQ-32B", "QwQ-32B"),
                                            ("smollm2", "SmolLM2-135M-Instruct"), ("LLAMA-3.1-8B", "Llama-3.1-8B-Instruct")])
def test_names_resolve_case_insensitively(name, canonical):
    spec = resolve_model(name)
    assert spec.name == canonical
    entry = next(e for e in catalog() if e.name == canonical)
    assert spec.n_params == pytest.approx(entry.published_params, rel=0.03)  # each model card's count


def test_config_path_resolves(tmp_path):
    src = resolve_model("smollm2").to_hf_config()
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(src))
    assert resolve_model(str(folder)).n_params == resolve_model("smollm2").n_params
    assert resolve_model(str(folder / "config.json")).name == "my-model"


def test_unknown_model_suggests_close_names():
    with pytest.raises(UserError, match=r"did you mean .*s1\.1-32"):
        resolve_model("s1.1-23b")


def test_malformed_config_names_the_missing_key(tmp_path):
    cfg = resolve_model("smollm2").to_hf_config()
    del cfg["num_hidden_layers"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="num_hidden_layers"):
        resolve_model(str(path))
    path.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        resolve_model(str(path))
    path.write_text(json.dumps({**resolve_model("smollm2").to_hf_config(), "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(UserError, match="not supported"):
        resolve_model(str(path))


def test_draft_compatibility():
    target = resolve_model("s1.1-32B")
    assert resolve_draft("s1.1-7B", target).n_layers == 28
    assert resolve_draft("self:8", target).n_layers == 8
    with pytest.raises(UserError, match="vocabularies differ"):
        resolve_draft("Llama-3.1-8B-Instruct", target)
    with pytest.raises(UserError, match="self:N"):
        resolve_draft("self:x", target)
    for n in (0, target.n_layers):  # the same limits as the engine's self-draft: 1..n_layers-1
        with pytest.raises(UserError, match=f"1..{target.n_layers - 1}"):
            resolve_draft(f"self:{n}", target)
    # EAGLE-3 heads map a reduced draft vocabulary onto their target's
    llama = resolve_model("Llama-3.1-8B-Instruct")
    assert resolve_draft("eagle3", llama).out_vocab == 32000
    with pytest.raises(UserError):
        resolve_draft("eagle3", target)


def test_paper_draft_pairs_carry_acceptance():
    pair = published_acceptance(resolve_model("s1.1-32B"), resolve_model("s1.1-7B"))
    assert pair.acceptance_rate == 0.831  # paper Appendix A.2
    pair = published_acceptance(resolve_model("Llama-3.1-8B-Instruct"), resolve_model("eagle3"))
    assert pair.acceptance_rate == 0.904
