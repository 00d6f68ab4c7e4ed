"""PyTorch CPU reference for `make bench-train`: the same llama shape, batch and optimizer as the Go engine's
benchmark, trained on random byte tokens. Prints one line: tokens_per_sec=<float>."""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w


def rope(x, base):
    # x: [B, H, L, hd]; rotate adjacent pairs (ggml mode 0)
    b, h, l, hd = x.shape
    inv = base ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = torch.arange(l, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class Block(nn.Module):
    def __init__(self, d, heads, kv, ffn, eps, base):
        super().__init__()
        self.h, self.kv, self.hd, self.base = heads, kv, d // heads, base
        self.n1, self.n2 = RMSNorm(d, eps), RMSNorm(d, eps)
        self.q = nn.Linear(d, heads * self.hd, bias=False)
        self.k = nn.Linear(d, kv * self.hd, bias=False)
        self.v = nn.Linear(d, kv * self.hd, bias=False)
        self.o = nn.Linear(heads * self.hd, d, bias=False)
        self.gate = nn.Linear(d, ffn, bias=False)
        self.up = nn.Linear(d, ffn, bias=False)
        self.down = nn.Linear(ffn, d, bias=False)

    def forward(self, x, mask):
        b, l, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, l, self.h, self.hd).transpose(1, 2)
        k = self.k(h).view(b, l, self.kv, self.hd).transpose(1, 2)
        v = self.v(h).view(b, l, self.kv, self.hd).transpose(1, 2)
        q, k = rope(q, self.base), rope(k, self.base)
        rep = self.h // self.kv
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, l, -1)
        x = x + self.o(o)
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.emb = nn.Embedding(a.vocab, a.dim)
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.kv_heads, a.ffn, 1e-5, 10000.0) for _ in range(a.layers))
        self.norm = RMSNorm(a.dim, 1e-5)
        self.out = nn.Linear(a.dim, a.vocab, bias=False)

    def forward(self, tok):
        l = tok.shape[1]
        mask = torch.full((l, l), float("-inf")).triu(1)
        x = self.emb(tok)
        for blk in self.blocks:
            x = blk(x, mask)
        return self.out(self.norm(x))


def main():
    p = argparse.ArgumentParser()
    for k, v in dict(vocab=260, dim=256, layers=4, heads=4, kv_heads=4, ffn=768, ctx=128, batch=8, steps=20, warmup=3, threads=2).items():
        p.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Llama(a)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randint(3, a.vocab, (a.batch, a.ctx + 1))
    x, y = data[:, :-1], data[:, 1:]
    start = None
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x).reshape(-1, a.vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    dt = time.perf_counter() - start
    print(f"tokens_per_sec={a.steps * a.batch * a.ctx / dt:.1f} loss={loss.item():.3f}")


if __name__ == "__main__":
    main()
