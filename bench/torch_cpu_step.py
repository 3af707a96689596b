#!/usr/bin/python3
"""PyTorch CPU baseline: one training step (forward + backward + AdamW) in tokens/s.

Adapted from the PyTorch baseline behind the CPU number in the project's first
performance goal (bench/RESULTS.md); the model and step are unchanged: stories15M
shape (dim 288, 6 layers, 6 heads, MLP hidden 768, vocab 32000, untied head,
24.4M parameters), batch 8 x 256, random tokens, cross-entropy, AdamW(lr=1e-4,
torch defaults otherwise), zero_grad each step. 2 warm-up steps, then the mean
of --steps timed steps. Same setup as bench/bench_train_step.c.

Run with Debian's python3-torch:  /usr/bin/python3 bench/torch_cpu_step.py --threads 2
Last line (machine-readable):
  RESULT torch <version> threads N params P step_ms X tok_s Y
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--seq", type=int, default=256)
args = ap.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
dim, L, H, V = 288, 6, 6, 32000
hid = 768
T, B = args.seq, args.batch


class RMS(nn.Module):
    def __init__(s, d):
        super().__init__()
        s.w = nn.Parameter(torch.ones(d))

    def forward(s, x):
        return s.w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)


def rope(x, cos, sin):
    x1, x2 = x.chunk(2, -1)
    return x * cos + torch.cat((-x2, x1), -1) * sin


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.n1, s.n2 = RMS(dim), RMS(dim)
        s.q, s.k, s.v, s.o = [nn.Linear(dim, dim, bias=False) for _ in range(4)]
        s.g = nn.Linear(dim, hid, bias=False)
        s.u = nn.Linear(dim, hid, bias=False)
        s.d = nn.Linear(hid, dim, bias=False)

    def forward(s, x, cos, sin):
        h = s.n1(x)
        b, t, _ = h.shape
        hd = dim // H
        q, k, v = [m(h).view(b, t, H, hd).transpose(1, 2) for m in (s.q, s.k, s.v)]
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1),
                              float("-inf")).softmax(-1)
        a = (att @ v).transpose(1, 2).reshape(b, t, dim)
        x = x + s.o(a)
        h = s.n2(x)
        return x + s.d(F.silu(s.g(h)) * s.u(h))


class M(nn.Module):
    def __init__(s):
        super().__init__()
        s.e = nn.Embedding(V, dim)
        s.bs = nn.ModuleList([Block() for _ in range(L)])
        s.n = RMS(dim)
        s.head = nn.Linear(dim, V, bias=False)

    def forward(s, idx, cos, sin):
        x = s.e(idx)
        for b in s.bs:
            x = b(x, cos, sin)
        return s.head(s.n(x))


m = M()
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
hd = dim // H
inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
fr = torch.outer(torch.arange(T).float(), inv)
emb = torch.cat((fr, fr), -1)
cos, sin = emb.cos(), emb.sin()
x = torch.randint(0, V, (B, T))
y = torch.randint(0, V, (B, T))


def step():
    loss = F.cross_entropy(m(x, cos, sin).view(-1, V), y.view(-1))
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss


for _ in range(args.warmup):
    step()
times = []
for _ in range(args.steps):
    t0 = time.perf_counter()
    loss = step()
    times.append(time.perf_counter() - t0)
dt = sum(times) / len(times)
params = sum(p.numel() for p in m.parameters()) / 1e6
print(f"torch {torch.__version__} threads {torch.get_num_threads()} params {params:.1f}M "
      f"B {B} T {T} loss {loss.item():.4f} step ms min {min(times)*1000:.0f} "
      f"median {sorted(times)[len(times)//2]*1000:.0f} max {max(times)*1000:.0f}", flush=True)
print(f"RESULT torch {torch.__version__} threads {torch.get_num_threads()} params {params:.1f}M "
      f"loss {loss.item():.4f} step_ms {dt*1000:.0f} tok_s {B*T/dt:.0f}", flush=True)
