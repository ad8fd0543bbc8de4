#!/usr/bin/python3
"""Writes the PyTorch reference files the C CLIP tests compare with (tests/ref/clip_*.safetensors).

A small CLIP written here for the test (OpenAI's layout: nn.MultiheadAttention with a fused
in_proj, pre-LN residual blocks, QuickGELU, class-token and EOT pooling, projections applied as
x @ W) with random weights, run on fixed images and token ids:

  clip_openai.safetensors  weights in OpenAI's state-dict names (F32), "input.images",
                           "input.ids", "out.image", "out.text" (the embeddings), and the
                           gradients "grad.<name>" of the loss sum(out.image * r.image) +
                           sum(out.text * r.text) for every parameter ("r.image", "r.text" given).
  clip_hf.safetensors      the same network in Hugging Face CLIPModel names (q/k/v split,
                           projections transposed), weights rounded to F16, with its own
                           "out.image" / "out.text" computed from the rounded weights.

Heads are 2 in both towers (not width / 64): the C test passes them. Needs Debian's python3-torch.
Run from the repository root:  /usr/bin/python3 scripts/make_clip_ref.py
"""
import sys
import os

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_safetensors  # noqa: E402

VW, VL, HEADS, PATCH, SIZE = 32, 2, 2, 8, 32
TW, TL, CTX, VOCAB, EMBED = 32, 2, 12, 200, 24
BATCH = 3


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, w, heads, causal, act=QuickGELU):
        super().__init__()
        self.attn = nn.MultiheadAttention(w, heads)
        self.ln_1 = nn.LayerNorm(w)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(w, 4 * w))
        self.mlp.add_module("gelu", act())
        self.mlp.add_module("c_proj", nn.Linear(4 * w, w))
        self.ln_2 = nn.LayerNorm(w)
        self.causal = causal

    def forward(self, x):  # x: (T, B, W) as nn.MultiheadAttention wants
        mask = None
        if self.causal:
            t = x.shape[0]
            mask = torch.full((t, t), float("-inf")).triu(1)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, w, layers, heads, causal, act=QuickGELU):
        super().__init__()
        self.resblocks = nn.Sequential(*[Block(w, heads, causal, act) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class Visual(nn.Module):
    def __init__(self, size=SIZE, patch=PATCH, width=VW, layers=VL, heads=HEADS, embed=EMBED):
        super().__init__()
        g = size // patch
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.positional_embedding = nn.Parameter(torch.randn(g * g + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, False)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, embed))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)  # (B, grid², W)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x).permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    """vision: (size, patch, width, layers, heads); text: (width, layers, heads, context, vocab)."""

    def __init__(self, vision=(SIZE, PATCH, VW, VL, HEADS), text=(TW, TL, HEADS, CTX, VOCAB), embed=EMBED):
        super().__init__()
        tw, tl, th, ctx, vocab = text
        self.visual = Visual(*vision, embed=embed)
        self.token_embedding = nn.Embedding(vocab, tw)
        self.positional_embedding = nn.Parameter(torch.randn(ctx, tw))
        self.transformer = Transformer(tw, tl, th, True)
        self.ln_final = nn.LayerNorm(tw)
        self.text_projection = nn.Parameter(torch.randn(tw, embed))
        self.logit_scale = nn.Parameter(torch.tensor(2.659))

    def encode_text(self, ids):
        x = self.token_embedding(ids) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ self.text_projection


def randomise(model, gen):
    with torch.no_grad():
        for name, t in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or "ln_" in name and name.endswith("weight"):
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=gen))
            elif name.endswith("bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            elif name == "logit_scale":
                continue
            else:
                fan = t.shape[-1] if t.dim() > 1 else t.shape[0]
                if name.endswith("proj") or name == "text_projection":
                    fan = t.shape[0]
                if t.dim() == 4:
                    fan = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) / fan ** 0.5)


def hf_names(sd):
    """OpenAI state-dict names -> Hugging Face CLIPModel names."""
    out = {}
    for k, v in sd.items():
        if k.startswith("visual.transformer.resblocks.") or k.startswith("transformer.resblocks."):
            tower = "vision_model" if k.startswith("visual.") else "text_model"
            rest = k.split("resblocks.", 1)[1]
            layer, rest = rest.split(".", 1)
            base = "%s.encoder.layers.%s." % (tower, layer)
            if rest.startswith("attn.in_proj_"):
                kind = rest[len("attn.in_proj_"):]
                for part, name in zip(v.chunk(3, 0), "qkv"):
                    out[base + "self_attn.%s_proj.%s" % (name, kind)] = part
                continue
            for a, b in (("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."), ("attn.out_proj.", "self_attn.out_proj."),
                         ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2.")):
                if rest.startswith(a):
                    out[base + b + rest[len(a):]] = v
            continue
        fixed = {"visual.class_embedding": "vision_model.embeddings.class_embedding",
                 "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
                 "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
                 "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
                 "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
                 "visual.ln_post.weight": "vision_model.post_layernorm.weight",
                 "visual.ln_post.bias": "vision_model.post_layernorm.bias",
                 "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
                 "positional_embedding": "text_model.embeddings.position_embedding.weight",
                 "ln_final.weight": "text_model.final_layer_norm.weight",
                 "ln_final.bias": "text_model.final_layer_norm.bias",
                 "logit_scale": "logit_scale"}
        if k in fixed:
            out[fixed[k]] = v
        elif k == "visual.proj":
            out["visual_projection.weight"] = v.t()
        elif k == "text_projection":
            out["text_projection.weight"] = v.t()
        else:
            raise KeyError(k)
    return out


def token_ids(gen):
    ids = torch.zeros(BATCH, CTX, dtype=torch.long)
    for b, n in enumerate([4, CTX - 2, 7]):
        ids[b, 0] = VOCAB - 2  # start of text
        ids[b, 1:n] = torch.randint(1, VOCAB - 2, (n - 1,), generator=gen)
        ids[b, n] = VOCAB - 1  # end of text: the largest id
    return ids


def main():
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(7)
    model = CLIP()
    randomise(model, gen)
    images = torch.randn(BATCH, 3, SIZE, SIZE, generator=gen)
    ids = token_ids(gen)
    r_img, r_txt = torch.randn(BATCH, EMBED, generator=gen), torch.randn(BATCH, EMBED, generator=gen)
    img, txt = model.visual(images), model.encode_text(ids)
    ((img * r_img).sum() + (txt * r_txt).sum()).backward()
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = dict(sd)
    out.update({"input.images": images, "input.ids": ids.to(torch.float32), "out.image": img.detach(),
                "out.text": txt.detach(), "r.image": r_img, "r.text": r_txt})
    for name, p in model.named_parameters():
        if p.grad is not None:
            out["grad." + name] = p.grad
    meta = {"heads": str(HEADS), "torch": torch.__version__}
    write_safetensors("tests/ref/clip_openai.safetensors", out, meta)
    # The Hugging Face layout, weights rounded to F16 and the embeddings recomputed from them.
    with torch.no_grad():
        rounded = {k: v.to(torch.float16).to(torch.float32) for k, v in sd.items()}
        model.load_state_dict(rounded)
        hf = hf_names(rounded)
        hf.update({"out.image": model.visual(images), "out.text": model.encode_text(ids)})
    write_safetensors("tests/ref/clip_hf.safetensors", hf, meta, f16=set(hf_names(rounded)))
    print("clip refs: %d + %d tensors" % (len(out), len(hf)))


if __name__ == "__main__":
    sys.exit(main())
