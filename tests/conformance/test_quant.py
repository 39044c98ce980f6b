"""qnemo/fp8 and qnemo/int4_awq against two independent computations on
the same merged (oracle) weights:

* ml_dtypes: every FP8 weight of every listed layout is
  ml_dtypes.float8_e4m3fn(float32(W_rank) / s) with s = float32(amax |W|
  of the merged linear) / 448 (sharding-hf-trtllm.md C.4.1: one scale per
  unsharded linear, fused QKV one scale, mlp.fc and mlp.gate the fc1
  scale), and weights_scaling_factor == s;
* nvidia-modelopt (it runs on the CPU): each merged MCore linear as an
  nn.Linear in bf16, quantized by mtq.quantize with FP8_DEFAULT_CFG, or
  INT4_BLOCKWISE_WEIGHT_ONLY_CFG with block 8 (max calibration: AWQ's
  round-to-nearest with pre_quant_scale 1, what qnemo/int4_awq writes);
  ModelOpt's export functions get_weight_scaling_factor and
  to_quantized_weight give the scales and codes, the weights and scales
  cut per rank with test_qnemo_view's cutter before packing (INT4 packs
  pairs of rows of the rank tensor)."""

import copy

import ml_dtypes
import numpy as np
import pytest
import torch
from safetensors import safe_open

import reference as R
import test_qnemo_view as QV
from test_catalog import sources
from test_safetensors import GPT, drop_cache, layouts

# TRT-LLM linear -> the merged MCore linear it is cut from.
LINEARS = {"attention.qkv": "self_attention.linear_qkv.weight",
           "attention.dense": "self_attention.linear_proj.weight",
           "mlp.fc": "mlp.linear_fc1.weight", "mlp.gate": "mlp.linear_fc1.weight",
           "mlp.proj": "mlp.linear_fc2.weight"}
GROUP = QV.GROUP


def read_rank(path):
    drop_cache(path)
    with safe_open(str(path), framework="pt") as f:
        # copies: a tensor on the file's mapping would keep the mount busy
        return {k: f.get_tensor(k).clone() for k in f.keys()}


def quantized(rank, per, p):
    """(TRT name prefix, MCore name of the merged linear) of every quantized
    linear in a rank file of stage p."""
    for name in rank:
        if name.endswith(".weight") and name.startswith("transformer.layers."):
            k, lin = name[len("transformer.layers."):-len(".weight")].split(".", 1)
            if lin in LINEARS:
                yield name[:-len("weight")], f"decoder.layers.{p * per + int(k)}.{LINEARS[lin]}"


def u8(t):
    return t.contiguous().view(torch.uint8).numpy()


@pytest.mark.parametrize("name", GPT)
def test_fp8_is_ml_dtypes_e4m3fn(fixtures_dir, nemo, name):
    meta, lt = R.oracle_bits(fixtures_dir / name)
    _, srcs = sources(fixtures_dir, name)
    checked = 0
    with nemo.mount(srcs[-1]) as mnt:
        for lay, tp, pp in layouts(mnt / "qnemo" / "fp8"):
            per = QV.LAYERS // pp
            for p in range(pp):
                for r in range(tp):
                    rank = read_rank(mnt / "qnemo" / "fp8" / lay / f"rank{p * tp + r}.safetensors")
                    cut = QV.trt_rank(meta, lt, "fp8", tp, pp, r, p)
                    for pre, merged in quantized(rank, per, p):
                        m = R.bf16_f32(lt[merged])
                        s = np.float32(np.abs(m).max()) / np.float32(448)
                        assert rank[pre + "weights_scaling_factor"].numpy().tolist() == [s], pre
                        w = R.bf16_f32(cut[pre + "weight"][0])
                        want = (w / s).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
                        assert rank[pre + "weight"].dtype == torch.float8_e4m3fn
                        assert np.array_equal(u8(rank[pre + "weight"]), want), (lay, r, p, pre)
                        checked += 1
    assert checked >= 20


# ---- ModelOpt ------------------------------------------------------------------------

def bf16_tensor(bits):
    return torch.from_numpy(np.ascontiguousarray(bits).astype(np.int16)).view(torch.bfloat16)


def modelopt_scales(lt, cfg_name):
    """{MCore linear name: ModelOpt's weight scaling factor (numpy)} for
    every merged linear, quantized with the named ModelOpt config."""
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export.quant_utils import get_quantization_format, get_weight_scaling_factor

    names = sorted({k for k in lt if any(k.endswith(v) for v in LINEARS.values())})
    mods = torch.nn.ModuleDict()
    for i, k in enumerate(names):
        w = bf16_tensor(lt[k])
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=torch.bfloat16)
        lin.weight.data.copy_(w)
        mods[f"m{i}"] = lin  # plain names: none of the config's disabled patterns
    cfg = copy.deepcopy(getattr(mtq, cfg_name))
    if cfg_name.startswith("INT4"):
        for e in cfg["quant_cfg"]:
            if e.get("quantizer_name") == "*weight_quantizer":
                e["cfg"]["block_sizes"] = {-1: GROUP, "type": "static"}

    def forward_loop(m):
        g = torch.Generator().manual_seed(0)
        for lin in m.values():
            lin(torch.randn(3, lin.in_features, generator=g).to(torch.bfloat16))

    mods = mtq.quantize(mods, cfg, forward_loop)
    fmt = {get_quantization_format(m) for m in mods.values()}
    out = {k: get_weight_scaling_factor(mods[f"m{i}"]).numpy() for i, k in enumerate(names)}
    return fmt, out


@pytest.mark.parametrize("name", ["nemo1_tp2pp2", "nemo1_mha_tp2", "nemo2", "megatron_release_legacy"])
def test_against_modelopt(fixtures_dir, nemo, name):
    from modelopt.torch.export.model_config import QUANTIZATION_FP8, QUANTIZATION_INT4_AWQ
    from modelopt.torch.export.quant_utils import to_quantized_weight

    meta, lt = R.oracle_bits(fixtures_dir / name)
    _, srcs = sources(fixtures_dir, name)
    fmt8, s8 = modelopt_scales(lt, "FP8_DEFAULT_CFG")
    fmt4, s4 = modelopt_scales(lt, "INT4_BLOCKWISE_WEIGHT_ONLY_CFG")
    assert fmt8 == {QUANTIZATION_FP8} and fmt4 == {QUANTIZATION_INT4_AWQ}, (fmt8, fmt4)
    checked = {"fp8": 0, "int4_awq": 0}
    with nemo.mount(srcs[-1], f"group_size={GROUP}") as mnt:
        for algo, scales in (("fp8", s8), ("int4_awq", s4)):
            # INT4 block scales cut like the weights: rows of column-parallel
            # linears, block columns of row-parallel ones (FP8: one per linear)
            lt_s = dict(lt, **scales) if algo == "int4_awq" else None
            for lay, tp, pp in layouts(mnt / "qnemo" / algo):
                per = QV.LAYERS // pp
                for p in range(pp):
                    for r in range(tp):
                        rank = read_rank(mnt / "qnemo" / algo / lay / f"rank{p * tp + r}.safetensors")
                        cut_w = QV.trt_rank(meta, lt, algo, tp, pp, r, p)
                        cut_s = lt_s and QV.trt_rank(meta, lt_s, algo, tp, pp, r, p)
                        for pre, merged in quantized(rank, per, p):
                            w = bf16_tensor(cut_w[pre + "weight"][0])
                            if algo == "fp8":
                                s = torch.from_numpy(np.asarray(scales[merged], np.float32).reshape(1))
                                codes = to_quantized_weight(w, s, QUANTIZATION_FP8)
                            else:
                                s = torch.from_numpy(np.ascontiguousarray(cut_s[pre + "weight"][0]))
                                codes = to_quantized_weight(w, s, QUANTIZATION_INT4_AWQ,
                                                            block_size=GROUP)
                                assert torch.equal(rank[pre + "prequant_scaling_factor"].float(),
                                                   torch.ones(w.shape[1]))
                            assert torch.equal(rank[pre + "weights_scaling_factor"], s), (lay, pre)
                            assert np.array_equal(u8(rank[pre + "weight"]), u8(codes)), (lay, pre)
                            checked[algo] += 1
    assert checked["fp8"] >= 20 and checked["int4_awq"] >= 20, checked
