"""megatron-core (PyPI 0.16.1, unmodified) reads nemo/tp1pp1 and the raw
distributed checkpoints through the mount: the fixture's GPTModel is built
on the CPU with MCore's local (non-Transformer-Engine) layer spec,

* nemo/tp1pp1/model_weights.ckpt (torch.load, weights_only=True) with the
  model./ prefix stripped goes in with load_state_dict(strict=True). The
  file holds Transformer-Engine names; the local spec keeps the pre-norms
  as separate modules, so linear_qkv.layer_norm_weight is renamed
  input_layernorm.weight and linear_fc1.layer_norm_weight
  pre_mlp_layernorm.weight (the local spec's own sharded_state_dict maps
  them back the same way). TE's _extra_state entries (FP8 metadata, not
  weights) are dropped; the local modules' own _extra_state entries (None)
  complete the state dict;
* raw/model_weights (nemo1_dist_torch) and raw/weights (nemo2), torch_dist,
  go through megatron.core.dist_checkpointing.load with the model's
  sharded_state_dict(prefix="model."/"module.") minus its ShardedObjects
  (the local spec's _extra_state objects, which a TE-saved checkpoint does
  not hold): the saved TP=2 shards are resharded by MCore to TP=1, the
  80-row vocabulary cut to the model's 72 (allow_shape_mismatch).

Then a forward pass of a fixed batch equals reference.logits (max abs
difference < 1e-4, float32) over the V = 70 real vocabulary rows.

What it takes to run megatron-core 0.16.1 on a machine without CUDA (see
docs/DECISIONS.md): torch.distributed initialised (gloo, world size 1, file
rendezvous) and parallel_state.initialize_model_parallel(1, 1);
use_cpu_initialization; the inference RNG tracker
(tensor_parallel.random.initialize_rng_tracker(inference_rng_tracker=True)),
since the training tracker's fork() needs a CUDA RNG state even with
dropout 0; an explicit causal attention mask (the default one is built
with device="cuda"); and, during the forward pass only,
torch.cuda.current_device patched to return "cpu": RotaryEmbedding.get_emb
moves inv_freq to torch.cuda.current_device() unconditionally
(rotary_pos_embedding.py). Those are the only departures; without the
last one the forward fails, which test_forward_needs_cuda_without_the_shim
asserts."""

import contextlib
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import reference as R
from test_catalog import sources
from test_nemo_view import NEMO1
from test_safetensors import drop_cache

IDS = np.array([[1, 17, 42, 5, 69, 3, 8, 30], [2, 64, 64, 11, 0, 7, 45, 13]], np.int64)
TE_TO_LOCAL = {"self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
               "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight"}


@pytest.fixture(scope="module")
def mcore(tmp_path_factory):
    import torch.distributed as dist
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel.random import initialize_rng_tracker

    rdv = tmp_path_factory.mktemp("gloo") / "rendezvous"
    dist.init_process_group("gloo", init_method=f"file://{rdv}", rank=0, world_size=1)
    parallel_state.initialize_model_parallel(1, 1)
    initialize_rng_tracker(inference_rng_tracker=True, force_reset=True)
    yield
    parallel_state.destroy_model_parallel()
    dist.destroy_process_group()


def build(cfg, vocab_rows=72):
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.models.gpt.gpt_model import GPTModel
    from megatron.core.transformer.transformer_config import TransformerConfig

    tc = TransformerConfig(
        num_layers=cfg["layers"], hidden_size=cfg["hidden"], ffn_hidden_size=cfg["ffn"],
        num_attention_heads=cfg["heads"], num_query_groups=cfg["groups"],
        kv_channels=cfg["head_dim"], normalization="RMSNorm", layernorm_epsilon=cfg["eps"],
        gated_linear_unit=True, activation_func=F.silu, add_bias_linear=False,
        hidden_dropout=0.0, attention_dropout=0.0, use_cpu_initialization=True,
        params_dtype=torch.float32, bias_activation_fusion=False, masked_softmax_fusion=False,
        persist_layer_norm=False, bias_dropout_fusion=False, apply_rope_fusion=False,
        gradient_accumulation_fusion=False)
    model = GPTModel(tc, transformer_layer_spec=get_gpt_layer_local_spec(normalization="RMSNorm"),
                     vocab_size=vocab_rows, max_sequence_length=128, position_embedding_type="rope",
                     rotary_base=int(cfg["rope_theta"]),
                     share_embeddings_and_output_weights=cfg["tied"])
    return model.eval()


def forward(model, shim=True):
    ids = torch.from_numpy(IDS)
    s = ids.shape[1]
    pos = torch.arange(s)[None].expand_as(ids)
    mask = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)[None, None]  # True = masked
    patch = mock.patch("torch.cuda.current_device", lambda: "cpu") if shim \
        else contextlib.nullcontext()
    with torch.no_grad(), patch:
        return model(ids, pos, mask).float().numpy()


def compare(model, w, cfg):
    got = forward(model)
    assert got.shape == IDS.shape + (72,)
    want = R.logits(w, cfg, IDS)
    diff = np.abs(got[..., :cfg["vocab"]] - want).max()
    assert diff < 1e-4, diff
    return diff


def local_state(sd, model):
    """The nemo/ file's state (TE names, model. prefix) as the local spec's
    state dict: weights renamed, TE _extra_state dropped, the model's own
    _extra_state entries kept."""
    out = {}
    for k, v in sd.items():
        assert k.startswith("model."), k
        k = k[len("model."):]
        if k.endswith("._extra_state"):
            continue
        for te, local in TE_TO_LOCAL.items():
            if k.endswith(te):
                k = k[:-len(te)] + local
        out[k] = v
    for k, v in model.state_dict().items():
        if k.endswith("._extra_state"):
            assert k not in out
            out[k] = v
    return out


@pytest.mark.parametrize("name", NEMO1)
def test_load_state_dict_strict_from_nemo_view(fixtures_dir, nemo, mcore, name):
    w, cfg = R.load_oracle(fixtures_dir / name)
    _, srcs = sources(fixtures_dir, name)
    model = build(cfg)
    with nemo.mount(srcs[-1]) as mnt:
        path = mnt / "nemo" / "tp1pp1" / "model_weights.ckpt"
        drop_cache(path)
        sd = torch.load(path, weights_only=True, map_location="cpu")
    assert all(v.dtype == torch.bfloat16 for k, v in sd.items() if not k.endswith("_extra_state"))
    res = model.load_state_dict(local_state(sd, model), strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    compare(model, w, cfg)


@pytest.mark.parametrize("name, raw, prefix", [("nemo1_dist_torch", "model_weights", "model."),
                                               ("nemo2", "weights", "module.")])
def test_dist_checkpointing_load_from_raw(fixtures_dir, nemo, mcore, name, raw, prefix):
    from megatron.core import dist_checkpointing
    from megatron.core.dist_checkpointing.mapping import ShardedObject

    w, cfg = R.load_oracle(fixtures_dir / name)
    _, srcs = sources(fixtures_dir, name)
    model = build(cfg)

    def without_objects(d):
        return {k: without_objects(v) if isinstance(v, dict) else v for k, v in d.items()
                if not isinstance(v, ShardedObject)}

    with nemo.mount(srcs[-1]) as mnt:
        ckpt = mnt / "raw" / raw
        assert (ckpt / ".metadata").is_file()
        for f in ckpt.iterdir():
            if f.is_file():
                drop_cache(f)
        loaded = dist_checkpointing.load(without_objects(model.sharded_state_dict(prefix=prefix)),
                                         str(ckpt))
    state = {}
    for k, v in loaded.items():
        if k.startswith(prefix):
            assert isinstance(v, torch.Tensor), k
            state[k[len(prefix):]] = v
        else:  # common.pt's entries (nemo2: Lightning's epoch, global_step, ...)
            assert not isinstance(v, torch.Tensor), k
    assert sorted(state) == sorted(k for k in model.state_dict() if not k.endswith("_extra_state"))
    for k, v in model.state_dict().items():
        if k.endswith("._extra_state"):
            state[k] = v
    res = model.load_state_dict(state, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    compare(model, w, cfg)


def test_forward_needs_cuda_without_the_shim(fixtures_dir, mcore):
    """The one patch the tests above apply is needed: without it megatron-core
    0.16.1's rotary embedding asks for the CUDA device (no driver: an error;
    a GPU: inv_freq lands on it and the CPU model fails on mixed devices).
    If this starts passing, drop the patch."""
    _, cfg = R.load_oracle(fixtures_dir / "nemo1_single")
    with pytest.raises((RuntimeError, AssertionError), match="(?i)nvidia|cuda"):
        forward(build(cfg), shim=False)
