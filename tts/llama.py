"""Interoperability with transformers' ``LlamaModel``: config mapping, weight import, and the step-time comparison
that decided which implementation the global model uses (``docs/tts_design.md``).

Our :class:`tts.transformer.Transformer` has Llama's architecture (RMSNorm, rotate-half RoPE, GQA, SwiGLU, no
biases), so a Llama backbone built from the same widths computes the same function after renaming and
concatenating its tensors. That is what lets a user warm-start the global model from a local text-LLM directory
(``load_llama_backbone``) while inference keeps our leaner decode step. No hub access happens anywhere here.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tts.config import TransformerConfig
from tts.transformer import KVCache, Transformer


def llama_config(cfg: TransformerConfig, vocab_size: int = 16):
    """A ``transformers.LlamaConfig`` with the widths of ``cfg`` (built locally, never downloaded)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.dim_feedforward,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.kv_heads,
        head_dim=cfg.head_dim,
        rms_norm_eps=cfg.norm_eps,
        rope_theta=cfg.rope_theta,
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=False,
        max_position_embeddings=8192,
    )


def native_state_from_llama(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Rename a ``LlamaModel`` state dict (optionally prefixed ``model.``) to :class:`Transformer` names.

    Raises:
        ValueError: a tensor the mapping needs is missing (the names say which).
    """
    state = {k.removeprefix("model."): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    try:
        for i in range(num_layers):
            src, dst = f"layers.{i}.", f"layers.{i}."
            attn = src + "self_attn."
            out[dst + "attn.qkv.weight"] = torch.cat(
                [state[attn + "q_proj.weight"], state[attn + "k_proj.weight"], state[attn + "v_proj.weight"]]
            )
            out[dst + "attn.out.weight"] = state[attn + "o_proj.weight"]
            out[dst + "gate_up.weight"] = torch.cat(
                [state[src + "mlp.gate_proj.weight"], state[src + "mlp.up_proj.weight"]]
            )
            out[dst + "down.weight"] = state[src + "mlp.down_proj.weight"]
            out[dst + "attn_norm.weight"] = state[src + "input_layernorm.weight"]
            out[dst + "mlp_norm.weight"] = state[src + "post_attention_layernorm.weight"]
        out["norm.weight"] = state["norm.weight"]
    except KeyError as exc:
        raise ValueError(f"not a Llama-style state dict: tensor {exc.args[0]!r} missing") from None
    return out


def load_llama_backbone(transformer: Transformer, model_dir: str | os.PathLike) -> None:
    """Copy the decoder weights of a local Llama/Qwen-style directory into ``transformer`` (same widths required).

    Raises:
        FileNotFoundError: no ``*.safetensors`` in ``model_dir``.
        ValueError: the widths or depth differ from ``transformer``'s config.
    """
    from safetensors.torch import load_file

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors weights to warm-start from")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    mapped = native_state_from_llama(state, transformer.cfg.num_layers)
    own = transformer.state_dict()
    bad = [k for k, v in mapped.items() if own[k].shape != v.shape]
    if bad:
        raise ValueError(f"{model_dir}: shapes differ from the global model config at {bad[:3]}")
    transformer.load_state_dict({k: v.float() for k, v in mapped.items()})


@dataclass(frozen=True)
class StepTiming:
    """Median time of one single-token decode step after a prefill.

    ``cpu_ms`` (process CPU time) is the fairer number on a shared machine: other processes stretch the wall time
    of whoever happens to be running, but not the CPU time it consumes.
    """

    name: str
    batch: int
    context: int
    wall_ms: float
    cpu_ms: float


def _median_ms(fn, steps: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


@torch.inference_mode()
def compare_decode_steps(
    cfg: TransformerConfig, batch: int = 1, context: int = 128, steps: int = 64, rounds: int = 3
) -> list[StepTiming]:
    """Time one decode step of our Transformer vs ``LlamaModel`` with a ``StaticCache``, same widths and weights.

    The two are interleaved ``rounds`` times (so load from other processes hits both alike); each round prefills
    ``context`` positions and then times ``steps`` single-token steps. Returns the median step time of each.
    """
    from transformers import LlamaModel, StaticCache

    ours = Transformer(cfg).eval()
    llama = LlamaModel(llama_config(cfg)).eval()
    ours.load_state_dict(native_state_from_llama(llama.state_dict(), cfg.num_layers))
    d = cfg.d_model
    prefix = torch.randn(batch, context, d)
    token = torch.randn(batch, 1, d)
    results: dict[str, list[tuple[float, float]]] = {"hand-written": [], "transformers LlamaModel": []}
    for _ in range(rounds):
        cache = KVCache.allocate(cfg, batch, context + steps + 1)
        ours(prefix, cache=cache, start=0)
        pos = [context]

        def ours_step(cache=cache, pos=pos):
            ours(token, cache=cache, start=pos[0])
            pos[0] += 1

        results["hand-written"].append(_median_ms(ours_step, steps))

        static = StaticCache(config=llama.config, max_cache_len=context + steps + 1)
        llama(inputs_embeds=prefix, cache=static, use_cache=True)
        lpos = [context]

        def llama_step(static=static, lpos=lpos):
            where = torch.tensor([lpos[0]])
            llama(inputs_embeds=token, cache=static, use_cache=True, position_ids=where[None].expand(batch, 1))
            lpos[0] += 1

        results["transformers LlamaModel"].append(_median_ms(llama_step, steps))
    return [
        StepTiming(name, batch, context, statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for name, v in results.items()
    ]
