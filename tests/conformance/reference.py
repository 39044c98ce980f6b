# SPDX-License-Identifier: MIT
"""The conformance suite's reference Llama: a plain-torch (float32, CPU)
forward pass written straight from the Megatron-layout oracle weights of a
fixture (tests/fixtures/README.md, oracle.npz), by the rules of
sharding-hf-trtllm.md, never from nemockpt's output:

* QKV group-interleaved: per query group g, rows [q_{gQ} .. q_{gQ+Q-1} k_g v_g],
  d rows per head (A.4); GQA by repeating each KV head for its Q query heads;
* fc1 = [gate; up] (A.5), SwiGLU silu(gate) * up;
* RMSNorm x * rsqrt(mean(x^2) + eps) * w (TE names: linear_qkv.layer_norm_weight
  before attention, linear_fc1.layer_norm_weight before the MLP);
* rotary as Megatron applies it with rotary_interleaved=False: inv_freq =
  1 / theta^(2i/d) in float32, angles = position x inv_freq, emb = [angles,
  angles], t * cos + rotate_half(t) * sin with rotate_half(t) = [-t2, t1]
  (B.2: the same convention as HF Llama);
* causal softmax attention, scale 1/sqrt(d);
* final norm, output layer (or the embedding when tied); logits over the
  tokenizer's V rows only (A.3: rows >= V are padding).

Interface (tests/conformance/test_hf_transformers.py imports it):
  load_oracle(fixture_dir) -> (weights, cfg)
  logits(weights, cfg, ids) -> float32 [batch, seq, V]
  greedy(weights, cfg, ids, n) -> list of n new token ids
plus the pieces the other tests share: oracle_bits (the oracle's raw bf16
bit patterns under MCore names), split_qkv (B.2) and hf_state (B.1).
"""

import json
from pathlib import Path

import numpy as np
import torch

# The base model of every GPT fixture (tests/fixtures/README.md, "The model";
# fixturelib/model.py; make_fixtures.py writes layernorm_epsilon 1e-05 and
# rotary_base 10000 into every config). oracle.json overrides the query
# groups where a fixture differs (nemo1_mha_tp2: "num_query_groups": 4).
# load_oracle checks every figure against the oracle's shapes.
BASE = {"heads": 4, "groups": 2, "head_dim": 8, "eps": 1e-5, "rope_theta": 10000.0}

# Legacy Megatron-LM (non-MCore) names -> MCore names (spec A.1; the oracle
# of megatron_release_legacy joins the nested path with '.').
LEGACY = {
    "input_norm.weight": "self_attention.linear_qkv.layer_norm_weight",
    "self_attention.query_key_value.weight": "self_attention.linear_qkv.weight",
    "self_attention.dense.weight": "self_attention.linear_proj.weight",
    "post_attention_norm.weight": "mlp.linear_fc1.layer_norm_weight",
    "mlp.dense_h_to_4h.weight": "mlp.linear_fc1.weight",
    "mlp.dense_4h_to_h.weight": "mlp.linear_fc2.weight",
}
LEGACY_TOP = {
    "language_model.embedding.word_embeddings.weight": "embedding.word_embeddings.weight",
    "language_model.encoder.final_norm.weight": "decoder.final_layernorm.weight",
    "language_model.output_layer.weight": "output_layer.weight",
}
EMB = "embedding.word_embeddings.weight"
OUT = "output_layer.weight"
FINAL = "decoder.final_layernorm.weight"


def mcore_name(name):
    """An oracle name (model./module./no prefix, or legacy Megatron) as the
    MCore name without prefix; None for a name of another architecture."""
    if name in LEGACY_TOP:
        return LEGACY_TOP[name]
    if name.startswith("language_model.encoder.layers."):
        i, rest = name[len("language_model.encoder.layers."):].split(".", 1)
        return f"decoder.layers.{i}.{LEGACY[rest]}" if rest in LEGACY else None
    for key in ("decoder.", "embedding.", "output_layer."):
        for pre in ("", "model.", "module."):
            if name.startswith(pre + key):
                return name[len(pre):]
    return None


def oracle_bits(fixture_dir):
    """(oracle.json, {MCore name: oracle array}) of a GPT fixture: bf16 as
    the oracle stores it (uint16 bit patterns), vocabulary rows V_1."""
    fixture_dir = Path(fixture_dir)
    meta = json.loads((fixture_dir / "oracle.json").read_text())
    if meta["layout"] in ("qnemo",) or not meta.get("vocab_size"):
        raise ValueError(f"{meta['name']}: not a Megatron-layout GPT fixture")
    npz = np.load(fixture_dir / "oracle.npz")
    out = {}
    for t in meta["tensors"]:
        m = mcore_name(t["name"])
        if m is None:
            raise ValueError(f"{meta['name']}: {t['name']} is not a Llama tensor")
        out[m] = npz[t["name"]]
    return meta, out


def bf16_f32(bits):
    return (np.ascontiguousarray(bits, dtype="<u2").astype("<u4") << 16).view("<f4")


def load_oracle(fixture_dir):
    meta, bits = oracle_bits(fixture_dir)
    w = {k: bf16_f32(a) for k, a in bits.items()}
    layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("decoder.layers."))
    cfg = dict(BASE)
    cfg["groups"] = meta.get("num_query_groups", BASE["groups"])
    cfg.update(hidden=w[EMB].shape[1], ffn=w["decoder.layers.0.mlp.linear_fc2.weight"].shape[1],
               layers=layers, vocab=meta["vocab_size"], tied=OUT not in w)
    n, g, d, h, f = cfg["heads"], cfg["groups"], cfg["head_dim"], cfg["hidden"], cfg["ffn"]
    if bool(meta["tied"]) != cfg["tied"]:
        raise ValueError(f"{meta['name']}: tied {meta['tied']} but output layer present={not cfg['tied']}")
    for i in range(layers):
        p = f"decoder.layers.{i}."
        want = {"self_attention.linear_qkv.weight": ((n + 2 * g) * d, h),
                "self_attention.linear_proj.weight": (h, n * d),
                "self_attention.linear_qkv.layer_norm_weight": (h,),
                "mlp.linear_fc1.layer_norm_weight": (h,),
                "mlp.linear_fc1.weight": (2 * f, h), "mlp.linear_fc2.weight": (h, f)}
        for k, shape in want.items():
            if w[p + k].shape != shape:
                raise ValueError(f"{meta['name']}: {p + k} {w[p + k].shape} != {shape} "
                                 f"(heads {n}, groups {g}, head_dim {d})")
    if w[EMB].shape[0] < cfg["vocab"]:
        raise ValueError(f"{meta['name']}: fewer embedding rows than V")
    return w, cfg


# ---- the layout rules ---------------------------------------------------------

def qkv_rows(cfg):
    """(q, k, v) row lists of the merged QKV (B.2): HF q row i*d + j =
    merged row ((i // Q) * (Q + 2) + i % Q) * d + j; k row g*d + j = merged
    ((g * (Q + 2) + Q) * d + j; v the slot after."""
    n, g, d = cfg["heads"], cfg["groups"], cfg["head_dim"]
    q = n // g
    qr = [((i // q) * (q + 2) + i % q) * d + j for i in range(n) for j in range(d)]
    kr = [(gi * (q + 2) + q) * d + j for gi in range(g) for j in range(d)]
    vr = [(gi * (q + 2) + q + 1) * d + j for gi in range(g) for j in range(d)]
    return qr, kr, vr


def split_qkv(w, cfg):
    """The merged QKV weight (any dtype) as HF (q_proj, k_proj, v_proj)."""
    qr, kr, vr = qkv_rows(cfg)
    return w[qr], w[kr], w[vr]


def hf_state(weights, cfg):
    """{HF Llama name: array} of the model (B.1), from MCore-named arrays
    of any dtype (float32 or bf16 bits): QKV de-interleaved, fc1 halved,
    vocabulary rows [0, V), no lm_head when tied."""
    V, f = cfg["vocab"], cfg["ffn"]
    out = {"model.embed_tokens.weight": weights[EMB][:V]}
    for i in range(cfg["layers"]):
        p, s = f"decoder.layers.{i}.", f"model.layers.{i}."
        q, k, v = split_qkv(weights[p + "self_attention.linear_qkv.weight"], cfg)
        fc1 = weights[p + "mlp.linear_fc1.weight"]
        out.update({
            s + "input_layernorm.weight": weights[p + "self_attention.linear_qkv.layer_norm_weight"],
            s + "self_attn.q_proj.weight": q, s + "self_attn.k_proj.weight": k,
            s + "self_attn.v_proj.weight": v,
            s + "self_attn.o_proj.weight": weights[p + "self_attention.linear_proj.weight"],
            s + "post_attention_layernorm.weight": weights[p + "mlp.linear_fc1.layer_norm_weight"],
            s + "mlp.gate_proj.weight": fc1[:f], s + "mlp.up_proj.weight": fc1[f:],
            s + "mlp.down_proj.weight": weights[p + "mlp.linear_fc2.weight"],
        })
    out["model.norm.weight"] = weights[FINAL]
    if not cfg["tied"]:
        out["lm_head.weight"] = weights[OUT][:V]
    return out


# ---- the forward pass ---------------------------------------------------------------

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(t):
    t1, t2 = t.chunk(2, dim=-1)
    return torch.cat((-t2, t1), dim=-1)


def rope(t, cfg):
    """t: [batch, heads, seq, d]; Megatron's non-interleaved rotary."""
    d, s = cfg["head_dim"], t.shape[2]
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    angles = torch.outer(torch.arange(s, dtype=torch.float32), inv_freq)
    emb = torch.cat((angles, angles), dim=-1)
    return t * emb.cos() + rotate_half(t) * emb.sin()


def heads_of(qkv_out, cfg):
    """[b, s, (n + 2G) d] output of linear_qkv -> q [b, n, s, d] and k, v
    [b, G, s, d], read per group as [q..q k v] (A.4)."""
    b, s, _ = qkv_out.shape
    n, g, d = cfg["heads"], cfg["groups"], cfg["head_dim"]
    q = n // g
    x = qkv_out.view(b, s, g, q + 2, d)
    qh = x[:, :, :, :q].reshape(b, s, n, d)  # query head i = g * Q + m
    return qh.transpose(1, 2), x[:, :, :, q].transpose(1, 2), x[:, :, :, q + 1].transpose(1, 2)


def attention(x, wqkv, wproj, cfg):
    """Self-attention of a normed input x [b, s, h] (causal, GQA, rope)."""
    q, k, v = heads_of(x @ wqkv.T, cfg)
    q, k = rope(q, cfg), rope(k, cfg)
    rep = cfg["heads"] // cfg["groups"]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    s = x.shape[1]
    scores = (q @ k.transpose(-1, -2)) / float(np.sqrt(cfg["head_dim"]))
    mask = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
    probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    ctx = (probs @ v).transpose(1, 2).reshape(x.shape[0], s, cfg["heads"] * cfg["head_dim"])
    return ctx @ wproj.T


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def logits(weights, cfg, ids):
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    V, f, eps = cfg["vocab"], cfg["ffn"], cfg["eps"]
    w = {k: _t(a) for k, a in weights.items()}
    with torch.no_grad():
        x = w[EMB][:V][ids]
        for i in range(cfg["layers"]):
            p = f"decoder.layers.{i}."
            h = rms_norm(x, w[p + "self_attention.linear_qkv.layer_norm_weight"], eps)
            x = x + attention(h, w[p + "self_attention.linear_qkv.weight"],
                              w[p + "self_attention.linear_proj.weight"], cfg)
            h = rms_norm(x, w[p + "mlp.linear_fc1.layer_norm_weight"], eps)
            fc1 = h @ w[p + "mlp.linear_fc1.weight"].T
            x = x + (torch.nn.functional.silu(fc1[..., :f]) * fc1[..., f:]) @ \
                w[p + "mlp.linear_fc2.weight"].T
        x = rms_norm(x, w[FINAL], eps)
        head = w[EMB] if cfg["tied"] else w[OUT]
        return (x @ head[:V].T).numpy()


def greedy(weights, cfg, ids, n):
    seq = [int(t) for t in np.asarray(ids, dtype=np.int64).reshape(-1)]
    new = []
    for _ in range(n):
        nxt = int(np.argmax(logits(weights, cfg, np.array([seq], np.int64))[0, -1]))
        seq.append(nxt)
        new.append(nxt)
    return new
