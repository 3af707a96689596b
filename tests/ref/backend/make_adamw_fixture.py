"""AdamW fixture for tests/test_backend_ops.c: torch.optim.AdamW (single-tensor
CPU path, foreach=False) on one float32 tensor for 5 steps.

Hyper-parameters are float32 values (as lmadapt passes them) widened to double
for torch. lmadapt's grad_scale multiplies the gradient in float32 first, so
torch receives g * grad_scale computed in float32.

Output (text, every float printed with 9 significant digits, exact for float32):
  line 1: n steps lr b1 b2 eps wd grad_scale
  line 2: p0
  then per step: g (unscaled), p, m (exp_avg), v (exp_avg_sq) after the step
Run: python3 tests/ref/backend/make_adamw_fixture.py > tests/ref/backend/adamw_torch.txt
"""
import numpy as np
import torch

n, steps = 53, 5
f32 = lambda x: float(np.float32(x))
lr, b1, b2, eps, wd, gs = f32(3e-3), f32(0.9), f32(0.95), f32(1e-8), f32(0.1), f32(0.25)

g = torch.Generator().manual_seed(1234)
p = torch.randn(n, generator=g, dtype=torch.float32)
param = torch.nn.Parameter(p.clone())
opt = torch.optim.AdamW([param], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)

fmt = lambda t: " ".join("%.9g" % x for x in t.tolist())
print(n, steps, "%.9g %.9g %.9g %.9g %.9g %.9g" % (lr, b1, b2, eps, wd, gs))
print(fmt(p))
for step in range(steps):
    grad = torch.randn(n, generator=g, dtype=torch.float32) * 2
    grad[7] = 0.0
    param.grad = grad * torch.tensor(gs, dtype=torch.float32)
    opt.step()
    st = opt.state[param]
    print(fmt(grad))
    print(fmt(param.detach()))
    print(fmt(st["exp_avg"]))
    print(fmt(st["exp_avg_sq"]))
