"""Self-test of reference.py, the forward pass the transformers and
megatron-core checks compare with: its attention against a naive loop
written from the definitions, its QKV de-interleave against the head-slot
map of sharding-hf-trtllm.md B.2 (and the spec's 70B example), its rotary
against the rotation of coordinate pairs (j, j + d/2), causality, and the
oracle loader's checks of every fixture."""

import math

import numpy as np
import pytest
import torch

import reference as R
from test_catalog import sources

GPT = ["nemo1_single", "nemo1_tp2", "nemo1_tp2pp2", "nemo1_tp2pp2_tied", "nemo1_mha_tp2",
       "nemo1_dist_torch", "nemo1_dist_zarr", "nemo2", "megatron_iter", "megatron_release_legacy"]


def naive_attention(x, wqkv, wproj, cfg):
    """Loops over batch, query head, query and key position, in float64,
    from the definitions: merged QKV row r of group g, slot s, dim j is
    r = (g (Q + 2) + s) d + j; rotary pairs (j, j + d/2) turned by the
    angle pos / theta^(2j/d)."""
    n, G, d = cfg["heads"], cfg["groups"], cfg["head_dim"]
    Q = n // G
    x, wqkv, wproj = (np.asarray(a, np.float64) for a in (x, wqkv, wproj))
    b, s, _ = x.shape
    out = np.zeros((b, s, wproj.shape[0]))

    def rot(vec, pos):
        r = vec.copy()
        for j in range(d // 2):
            a = pos / cfg["rope_theta"] ** (2 * j / d)
            r[j] = vec[j] * math.cos(a) - vec[j + d // 2] * math.sin(a)
            r[j + d // 2] = vec[j + d // 2] * math.cos(a) + vec[j] * math.sin(a)
        return r

    def head(bi, t, g, slot):
        rows = [(g * (Q + 2) + slot) * d + j for j in range(d)]
        return wqkv[rows] @ x[bi, t]

    for bi in range(b):
        ctx = np.zeros((s, n * d))
        for i in range(n):
            g, m = divmod(i, Q)
            for t in range(s):
                q = rot(head(bi, t, g, m), t)
                scores = []
                for u in range(t + 1):  # causal: keys 0..t
                    k = rot(head(bi, u, g, Q), u)
                    scores.append(float(q @ k) / math.sqrt(d))
                top = max(scores)
                e = [math.exp(v - top) for v in scores]
                z = sum(e)
                for u in range(t + 1):
                    ctx[t, i * d:(i + 1) * d] += e[u] / z * head(bi, u, g, Q + 1)
        out[bi] = ctx @ wproj.T
    return out


@pytest.mark.parametrize("heads, groups", [(4, 2), (4, 4), (6, 1)])
def test_attention_equals_the_naive_loop(heads, groups):
    rng = np.random.default_rng(7)
    d, h = 4, 12
    cfg = dict(heads=heads, groups=groups, head_dim=d, rope_theta=10000.0)
    x = rng.normal(0, 1, (2, 5, h)).astype(np.float32)
    wqkv = rng.normal(0, 0.5, ((heads + 2 * groups) * d, h)).astype(np.float32)
    wproj = rng.normal(0, 0.5, (h, heads * d)).astype(np.float32)
    got = R.attention(torch.from_numpy(x), torch.from_numpy(wqkv), torch.from_numpy(wproj),
                      cfg).numpy()
    want = naive_attention(x, wqkv, wproj, cfg)
    assert np.abs(got - want).max() < 1e-4, np.abs(got - want).max()
    # The check can fail: a wrong group order (k and v slots swapped) differs.
    swapped = wqkv.reshape(groups, heads // groups + 2, d, h)[:, [*range(heads // groups),
                                                                  heads // groups + 1,
                                                                  heads // groups]]
    bad = R.attention(torch.from_numpy(x), torch.from_numpy(swapped.reshape(wqkv.shape).copy()),
                      torch.from_numpy(wproj), cfg).numpy()
    assert np.abs(bad - want).max() > 1e-2


def test_qkv_deinterleave_is_the_spec_slot_map():
    # sharding-hf-trtllm.md B.2, 70B: G = 8, n = 64, Q = 8: q takes slots
    # 0-7, 10-17, ...; k slots 8, 18, ...; v slots 9, 19, ... (d = 1 here:
    # one row per slot).
    cfg = dict(heads=64, groups=8, head_dim=1)
    q, k, v = R.qkv_rows(cfg)
    assert q[:8] == list(range(8)) and q[8:16] == list(range(10, 18))
    assert k == [8 + 10 * g for g in range(8)] and v == [9 + 10 * g for g in range(8)]
    # The fixtures' GQA model: 4 heads in 2 groups, d = 8: per group
    # [q q k v]; rows tagged with their index come out as the formula says.
    cfg = dict(heads=4, groups=2, head_dim=8)
    w = np.arange(64)[:, None] * np.ones((1, 3), np.int64)
    qp, kp, vp = R.split_qkv(w, cfg)
    for i in range(4):
        g, m = divmod(i, 2)
        assert list(qp[i * 8:(i + 1) * 8, 0]) == list(range((g * 4 + m) * 8, (g * 4 + m) * 8 + 8))
    assert list(kp[:, 0]) == list(range(16, 24)) + list(range(48, 56))
    assert list(vp[:, 0]) == list(range(24, 32)) + list(range(56, 64))
    # MHA (G = n): [q k v] per head.
    qp, kp, vp = R.split_qkv(np.arange(12)[:, None], dict(heads=4, groups=4, head_dim=1))
    assert list(qp[:, 0]) == [0, 3, 6, 9] and list(kp[:, 0]) == [1, 4, 7, 10]
    assert list(vp[:, 0]) == [2, 5, 8, 11]


def test_forward_is_causal_and_deterministic(fixtures_dir):
    w, cfg = R.load_oracle(fixtures_dir / "nemo1_tp2")
    ids = np.array([[1, 7, 33, 2, 69, 5]], np.int64)
    a = R.logits(w, cfg, ids)
    assert a.shape == (1, 6, 70) and a.dtype == np.float32
    ids2 = ids.copy()
    ids2[0, 4:] = [11, 12]
    b = R.logits(w, cfg, ids2)
    assert np.array_equal(a[0, :4], b[0, :4]) and not np.allclose(a[0, 4:], b[0, 4:])
    g = R.greedy(w, cfg, ids, 4)
    assert len(g) == 4 and g[0] == int(np.argmax(a[0, -1]))
    assert g == R.greedy(w, cfg, ids, 4)


@pytest.mark.parametrize("name", GPT)
def test_load_oracle_every_gpt_fixture(fixtures_dir, name):
    meta, _ = sources(fixtures_dir, name)
    w, cfg = R.load_oracle(fixtures_dir / name)
    assert (cfg["hidden"], cfg["ffn"], cfg["layers"], cfg["vocab"]) == (32, 48, 4, 70)
    assert cfg["groups"] == (4 if name == "nemo1_mha_tp2" else 2)
    assert cfg["tied"] == bool(meta["tied"])
    assert all(a.dtype == np.float32 for a in w.values())
    hf = R.hf_state(w, cfg)
    assert hf["model.embed_tokens.weight"].shape == (70, 32)
    assert ("lm_head.weight" in hf) == (not cfg["tied"])
    # Same seed, same first tensors: every GQA fixture is the same model.
    if name not in ("nemo1_single", "nemo1_mha_tp2"):
        w0, _ = R.load_oracle(fixtures_dir / "nemo1_single")
        for k in ("decoder.layers.3.mlp.linear_fc1.weight", "decoder.final_layernorm.weight"):
            assert np.array_equal(w[k], w0[k]), k


def test_fixture_configs_say_what_the_reference_assumes(fixtures_dir):
    """eps, rope base, heads, groups of reference.BASE (and the MHA
    fixture's groups) are the values the fixtures' own configs hold."""
    import yaml
    for name in ("nemo1_single", "nemo1_mha_tp2", "nemo1_dist_torch"):
        _, srcs = sources(fixtures_dir, name)
        c = yaml.safe_load((srcs[0] / "model_config.yaml").read_text())
        _, cfg = R.load_oracle(fixtures_dir / name)
        assert c["layernorm_epsilon"] == cfg["eps"] and c["rotary_base"] == cfg["rope_theta"]
        assert c["num_attention_heads"] == cfg["heads"] and c["num_query_groups"] == cfg["groups"]
        assert c["kv_channels"] is None and c["hidden_size"] // c["num_attention_heads"] == \
            cfg["head_dim"]
        assert c["position_embedding_type"] == "rope" and c["activation"] == "fast-swiglu"
        assert c["normalization"] == "rmsnorm" and not c.get("rotary_interleaved", False)
