"""The attention processors of the modes: every attention call of every model routed through
diffusers' dispatcher (`dispatch_attention_fn`), or through textbook attention for `vanilla`.

Why our own processors: diffusers' Flux and Wan processors already call the dispatcher (their
`_attention_backend` picks the backend), but the UNet's `AttnProcessor2_0` and SD3's
`JointAttnProcessor2_0` call `F.scaled_dot_product_attention` directly, so
`set_attention_backend` skips them. `DispatchAttnProcessor` and `DispatchJointAttnProcessor` are
those two with the one call swapped for the dispatcher; everything around attention
(projections, QK norms, output projection) is theirs, line for line.

Layouts: the dispatcher takes (batch, tokens, heads, head_dim), as do these processors.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator, Optional

import torch


def textbook_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attn_mask: Optional[torch.Tensor] = None, dropout_p: float = 0.0,
                       is_causal: bool = False, scale: Optional[float] = None, enable_gqa: bool = False,
                       attention_kwargs: Any = None, *, backend: Any = None,
                       parallel_config: Any = None) -> torch.Tensor:
    """softmax(Q Kᵀ · scale) V with the (batch·heads) × N × N scores in memory: diffusers'
    AttnProcessor's own ops (baddbmm -> softmax -> bmm), so the analyzer reads its shapes as it
    does the UNet's. Same signature as dispatch_attention_fn; takes and returns (B, L, H, D)."""
    if dropout_p or is_causal or enable_gqa or parallel_config is not None:
        raise ValueError("textbook attention computes plain inference attention: no dropout, causal "
                         "mask, grouped-query heads or context parallelism")
    batch, q_len, heads, head_dim = query.shape
    kv_len = key.shape[1]
    q = query.transpose(1, 2).reshape(batch * heads, q_len, head_dim)
    k = key.transpose(1, 2).reshape(batch * heads, kv_len, head_dim)
    v = value.transpose(1, 2).reshape(batch * heads, kv_len, head_dim)
    scale = head_dim ** -0.5 if scale is None else scale
    if attn_mask is None:
        scores = torch.baddbmm(torch.empty(batch * heads, q_len, kv_len, dtype=q.dtype, device=q.device),
                               q, k.transpose(1, 2), beta=0, alpha=scale)
    else:
        if attn_mask.dtype == torch.bool:
            attn_mask = torch.zeros_like(attn_mask, dtype=q.dtype).masked_fill(~attn_mask, float("-inf"))
        if attn_mask.ndim == 2:                   # (batch, kv_len), as the dispatcher accepts
            attn_mask = attn_mask[:, None, None, :]
        bias = attn_mask.to(q.dtype).expand(batch, heads, q_len, kv_len).reshape(batch * heads, q_len, kv_len)
        scores = torch.baddbmm(bias, q, k.transpose(1, 2), beta=1, alpha=scale)
    probs = scores.softmax(dim=-1)
    out = torch.bmm(probs, v)
    return out.reshape(batch, heads, q_len, head_dim).transpose(1, 2)


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: Optional[torch.Tensor],
           backend: Any) -> torch.Tensor:
    """The dispatcher with the mode's backend; None is textbook attention (`vanilla`)."""
    if backend is None:
        return textbook_attention(query, key, value, attn_mask=mask)
    from diffusers.models.attention_dispatch import dispatch_attention_fn

    return dispatch_attention_fn(query, key, value, attn_mask=mask, backend=backend)


class DispatchAttnProcessor:
    """diffusers' AttnProcessor2_0 (the UNet's self- and cross-attention, SD3.5's second
    attention) with attention through the dispatcher."""

    def __init__(self, backend: Any):
        self.backend = backend

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: Optional[torch.Tensor] = None,
                 attention_mask: Optional[torch.Tensor] = None, temb: Optional[torch.Tensor] = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch, seq_len, _ = hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim)
        key = key.view(batch, -1, attn.heads, head_dim)
        value = value.view(batch, -1, attn.heads, head_dim)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        hidden_states = attend(query, key, value, attention_mask, self.backend)
        hidden_states = hidden_states.reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


class DispatchJointAttnProcessor:
    """diffusers' JointAttnProcessor2_0 (SD3's joint attention over image and text tokens) with
    attention through the dispatcher."""

    def __init__(self, backend: Any):
        self.backend = backend

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: Optional[torch.Tensor] = None,
                 attention_mask: Optional[torch.Tensor] = None, *args: Any, **kwargs: Any):
        batch, image_tokens = hidden_states.shape[:2]
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        head_dim = key.shape[-1] // attn.heads

        def heads(x):
            return x.view(batch, -1, attn.heads, head_dim)

        query, key, value = heads(query), heads(key), heads(value)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if encoder_hidden_states is not None:
            c_query = heads(attn.add_q_proj(encoder_hidden_states))
            c_key = heads(attn.add_k_proj(encoder_hidden_states))
            c_value = heads(attn.add_v_proj(encoder_hidden_states))
            if attn.norm_added_q is not None:
                c_query = attn.norm_added_q(c_query)
            if attn.norm_added_k is not None:
                c_key = attn.norm_added_k(c_key)
            query = torch.cat([query, c_query], dim=1)
            key = torch.cat([key, c_key], dim=1)
            value = torch.cat([value, c_value], dim=1)
        hidden_states = attend(query, key, value, None, self.backend)
        hidden_states = hidden_states.reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        if encoder_hidden_states is not None:
            hidden_states, encoder_hidden_states = hidden_states[:, :image_tokens], hidden_states[:, image_tokens:]
            if not attn.context_pre_only:
                encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if encoder_hidden_states is not None:
            return hidden_states, encoder_hidden_states
        return hidden_states


@contextlib.contextmanager
def textbook_in_dispatching_processors(model: Any) -> Iterator[None]:
    """`vanilla` for the processors that call the dispatcher themselves (Flux, Wan): they look
    `dispatch_attention_fn` up in their module's globals at each call, so for the duration of the
    mode that one name is textbook_attention, and every other line of diffusers' processor
    (fused QKV, QK norms, RoPE, the joint/single split) runs as the pipeline runs it."""
    modules = {sys.modules[type(proc).__module__] for proc in dispatching_processors(model)}
    saved = {mod: mod.dispatch_attention_fn for mod in modules if hasattr(mod, "dispatch_attention_fn")}
    for mod in saved:
        mod.dispatch_attention_fn = textbook_attention
    try:
        yield
    finally:
        for mod, fn in saved.items():
            mod.dispatch_attention_fn = fn


def attention_modules(model: Any) -> list:
    """Every attention module: diffusers' Attention (UNet, SD3) and AttentionModuleMixin
    (FluxAttention, WanAttention)."""
    from diffusers.models.attention import AttentionModuleMixin
    from diffusers.models.attention_processor import Attention

    return [m for m in model.modules() if isinstance(m, (Attention, AttentionModuleMixin))]


def dispatching_processors(model: Any) -> list:
    """The processors that call the dispatcher themselves (their `_attention_backend` picks)."""
    from diffusers.models.attention_processor import Attention

    return [m.processor for m in attention_modules(model)
            if not isinstance(m, Attention) and hasattr(m.processor, "_attention_backend")]
