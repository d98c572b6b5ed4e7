"""Learnable prompt pairs (LPP) of TG-D: CoOp-style context embeddings run through CLIP's frozen text tower.

Each of the positive and negative prompt is the token sequence [SOT] ctx_1 .. ctx_n [EOT] [pad ...], where the
n = `n_ctx` context embeddings (16 in the paper's profile) are the only trained parameters. They are initialised
from the token embeddings of a real sentence that ends with the class words "Good photo." / "Bad photo.":
the last n - 3 tokens of INIT_PREFIX, then the class words (for n = 16: "judged for its sharpness, noise and
detail, this is a good photo."). So the class words sit inside the trainable context, and before any training the
LPP features equal CLIP's text features of that sentence: a meaningful start, unlike CoOp's "X X X ..." filler.

The encoder is passed to `forward` rather than held, so CLIP's weights stay out of this module's parameters and
state dict (the SFD-IQA checkpoint stores only the context).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pipeline.archs.clip_encoder import CLIPEncoder

CLASS_TEXTS = ("Good photo.", "Bad photo.")
INIT_PREFIX = ("a picture taken with a camera and shown to a viewer, "
               "judged for its sharpness, noise and detail, this is a")


class LearnablePromptPairs(nn.Module):
    """`forward(encoder)` -> (F_t+, F_t-), each of size encoder.embed_dim; only `ctx` (2 x n_ctx x width) trains."""

    def __init__(self, encoder: CLIPEncoder, n_ctx: int = 16, class_texts: Sequence[str] = CLASS_TEXTS):
        super().__init__()
        if len(class_texts) != 2:
            raise ValueError(f"need a positive and a negative class text, got {list(class_texts)}")
        tokenizer = encoder.tokenizer
        if n_ctx + 2 > encoder.context_length:
            raise ValueError(f"n_ctx {n_ctx} + SOT + EOT exceeds CLIP's context length {encoder.context_length}")
        prefix = tokenizer.encode(INIT_PREFIX)
        self.init_token_ids = []
        for text in class_texts:
            words = tokenizer.encode(text)
            n_prefix = n_ctx - len(words)
            if not 0 <= n_prefix <= len(prefix):
                raise ValueError(f"n_ctx must lie in [{len(words)}, {len(words) + len(prefix)}] for the class text "
                                 f"{text!r}, got {n_ctx}")
            self.init_token_ids.append(prefix[len(prefix) - n_prefix:] + words)
        self.init_texts = [tokenizer.decode(ids).strip() for ids in self.init_token_ids]
        self.n_ctx, self.class_texts = n_ctx, tuple(class_texts)
        self.sot_id, self.eot_id = tokenizer.sot_token_id, tokenizer.eot_token_id
        with torch.no_grad():
            ids = torch.tensor(self.init_token_ids, device=encoder.positional_embedding.device)
            self.ctx = nn.Parameter(encoder.token_embedding(ids).clone())

    def forward(self, encoder: CLIPEncoder) -> tuple[torch.Tensor, torch.Tensor]:
        """Text features of the positive and the negative prompt (gradients reach `ctx` only)."""
        n_prompts, n_ctx, _ = self.ctx.shape
        ids = torch.zeros(n_prompts, encoder.context_length, dtype=torch.long, device=self.ctx.device)
        ids[:, 0], ids[:, n_ctx + 1] = self.sot_id, self.eot_id
        frame = encoder.token_embedding(ids)  # SOT, EOT and padding embeddings around the context
        x = torch.cat([frame[:, :1], self.ctx, frame[:, n_ctx + 1:]], dim=1)
        eot_index = torch.full((n_prompts,), n_ctx + 1, device=self.ctx.device)
        pos, neg = encoder.encode_token_embeddings(x, eot_index)
        return pos, neg
