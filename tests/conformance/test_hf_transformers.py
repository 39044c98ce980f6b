"""transformers (PyPI, unmodified) loads hf/ of every Llama-family fixture
with no extra arguments, and its forward pass equals a plain-torch forward
written in reference.py straight from the fixture's Megatron-layout oracle
(group-interleaved QKV, [gate; up] fc1, rotary as Megatron applies it);
greedy generation agrees token for token; the tokenizer encodes and
decodes a fixed text as sentencepiece does."""

import numpy as np
import pytest
import sentencepiece as spm
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import reference

# Every GPT fixture with Llama-family weights: tied and untied, TP/PP,
# distributed, NeMo 2, Megatron-LM (MCore and legacy names), GQA and MHA.
LLAMA = ["nemo1_single", "nemo1_tp2", "nemo1_tp2pp2", "nemo1_tp2pp2_tied", "nemo1_dist_torch",
         "nemo1_dist_zarr", "nemo2", "megatron_iter", "megatron_release_legacy", "nemo1_mha_tp2"]
IDS = np.array([[1, 5, 9, 20, 33, 3, 7, 64, 12, 41, 2, 17],
                [1, 69, 0, 44, 8, 8, 30, 21, 55, 3, 66, 10]], dtype=np.int64)
TEXT = "the thing is on the station and he sent a message in the end"


def hf_model(mnt):
    m = AutoModelForCausalLM.from_pretrained(str(mnt / "hf"))  # no extra arguments
    assert type(m).__name__ == "LlamaForCausalLM"
    assert m.dtype == torch.bfloat16  # config.json's dtype
    return m.float().eval()  # bf16 -> f32 is exact


@pytest.mark.parametrize("name", LLAMA)
def test_logits_equal_reference(fixtures_dir, nemo, name):
    weights, cfg = reference.load_oracle(fixtures_dir / name)
    want = reference.logits(weights, cfg, IDS)
    src = fixtures_dir / name / "ckpt"
    with nemo.mount(src) as mnt:
        m = hf_model(mnt)
        with torch.no_grad():
            got = m(torch.from_numpy(IDS)).logits.numpy()
    assert got.shape == want.shape == (2, IDS.shape[1], cfg["vocab"])
    diff = float(np.abs(got - want).max())
    assert diff < 1e-4, (name, diff)


@pytest.mark.parametrize("name", ["nemo1_tp2pp2", "nemo1_tp2", "nemo1_mha_tp2", "nemo2"])
def test_greedy_generation(fixtures_dir, nemo, name):
    weights, cfg = reference.load_oracle(fixtures_dir / name)
    prompt = IDS[:1, :6]
    want = reference.greedy(weights, cfg, prompt, 16)
    tarball = sorted((fixtures_dir / name).glob("*.nemo"))
    src = tarball[0] if tarball else fixtures_dir / name / "ckpt"
    with nemo.mount(src) as mnt:
        m = hf_model(mnt)
        out = m.generate(torch.from_numpy(prompt), max_new_tokens=16, min_new_tokens=16,
                         do_sample=False, pad_token_id=0)
    got = out[0, prompt.shape[1]:].tolist()
    assert got == want, (name, got, want)


@pytest.mark.parametrize("name", ["nemo1_tp2", "nemo2"])
def test_tokenizer_equals_sentencepiece(fixtures_dir, nemo, name):
    with nemo.mount(fixtures_dir / name / "ckpt") as mnt:
        tok = AutoTokenizer.from_pretrained(str(mnt / "hf"))  # no extra arguments
        sp = spm.SentencePieceProcessor(model_file=str(mnt / "hf" / "tokenizer.model"))
        want = sp.encode(TEXT)
        assert len(want) > 10 and 0 not in want  # the text is in the vocabulary
        assert tok.encode(TEXT, add_special_tokens=False) == want
        assert tok.encode(TEXT) == [sp.bos_id()] + want  # Llama adds BOS, no EOS
        assert tok.decode(want) == sp.decode(want) == TEXT
        assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == \
            (sp.bos_id(), sp.eos_id(), sp.unk_id())
