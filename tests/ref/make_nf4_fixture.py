"""NF4 + double-quantization fixture: makes tests/ref/nf4/nf4.safetensors.

Reference: bitsandbytes 0.50 on CPU (its "default" pure-torch kernels),
  q, st = bitsandbytes.functional.quantize_4bit(x, blocksize=64, quant_type="nf4",
                                                compress_statistics=True)
  y = bitsandbytes.functional.dequantize_4bit(q, st)
and a plain numpy implementation of the same rules (src/quant/nf4.h documents
them), which is THE reference the fixture holds. One difference: bitsandbytes
takes torch's float32 mean of the block constants (its summation order is
torch's vectorized one); the numpy reference (and lmadapt) round the exact
double-precision mean to float32. The two offsets can differ in the last bit
(they do on "odd33x67"), and then the 8-bit constants may too. The script
asserts: 4-bit codes and first-level absmax bit-identical to bitsandbytes; the
numpy and bitsandbytes offsets within 1 ulp; dequantized values within 1e-6
relative of bitsandbytes'; and bit-identical double quantization where the
offsets agree.
For each case <k>: <k>.x (F32 input), <k>.codes (U8 packed nibbles),
<k>.qabsmax (U8), <k>.absmax2 (F32), <k>.offset (F32 [1]), <k>.deq (F32).
Usage: python3 tests/ref/make_nf4_fixture.py   (needs torch, numpy, bitsandbytes)
"""
import os
import numpy as np
import torch
import bitsandbytes.functional as F
from safetensors.torch import save_file

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nf4")
os.makedirs(out, exist_ok=True)
code4 = F.get_4bit_type("nf4", device="cpu").numpy().astype(np.float32)
code8 = F.create_dynamic_map(signed=True).numpy().astype(np.float32)

def blockwise(x, block, code):
    """bitsandbytes' rule: absmax per block; scaled = clamp(x * (1/absmax)) (x / absmax for
    a short last block); code index = bucketize(scaled, midpoints), ties to the lower code."""
    mid = ((code[:-1] + code[1:]) / np.float32(2)).astype(np.float32)
    n = x.size
    idx = np.zeros(n, np.uint8)
    am = []
    for b0 in range(0, n, block):
        blk = x[b0:b0 + block]
        a = np.float32(np.abs(blk).max())
        a = max(a, np.float32(1e-38))
        if blk.size == block:
            s = blk * (np.float32(1) / a)
        else:
            s = blk / a
        s = np.clip(s.astype(np.float32), -1, 1)
        idx[b0:b0 + block] = np.searchsorted(mid, s, side="left")
        am.append(np.float32(np.abs(blk).max()) if blk.size == block else a)
    return idx, np.array(am, np.float32)

def reference(x):
    idx, absmax = blockwise(x, 64, code4)
    if idx.size % 2:
        idx = np.concatenate([idx, np.array([7], np.uint8)])
    codes = (idx[0::2] << 4) | idx[1::2]
    s = 0.0
    for a in absmax:
        s += float(a)
    offset = np.float32(s / absmax.size)
    qa, absmax2 = blockwise((absmax - offset).astype(np.float32), 256, code8)
    a = (code8[qa] * np.repeat(absmax2, 256)[:qa.size]).astype(np.float32) + offset
    deq = (code4[idx[:x.size]] * np.repeat(a.astype(np.float32), 64)[:x.size]).astype(np.float32)
    return codes.astype(np.uint8), qa, absmax2, offset, deq

g = torch.Generator().manual_seed(4)
cases = {
    "w96x64": torch.randn(96, 64, generator=g) * 0.02,
    "odd33x67": torch.randn(33, 67, generator=g),
    "long": torch.randn(300 * 64 + 40, generator=g) * 0.05,
}
cases["long"][::997] *= 40  # outliers
tensors = {}
for k, x in cases.items():
    x = x.float().contiguous()
    q, st = F.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
    y = F.dequantize_4bit(q, st)
    codes, qa, absmax2, offset, deq = reference(x.reshape(-1).numpy())
    _, am1 = torch.ops.bitsandbytes.quantize_4bit.default(x, 64, "nf4", torch.uint8)
    _, am_ref = blockwise(x.reshape(-1).numpy(), 64, code4)
    assert np.array_equal(q.reshape(-1).numpy(), codes), k
    assert np.array_equal(am1.numpy(), am_ref), k
    bo = np.float32(st.offset.item())
    assert abs(int(bo.view(np.int32)) - int(offset.view(np.int32))) <= 1, k
    same = bo == offset
    if same:
        assert np.array_equal(st.absmax.numpy(), qa), k
        assert np.array_equal(st.state2.absmax.numpy(), absmax2), k
        assert np.array_equal(y.reshape(-1).numpy(), deq), k
    yd = y.reshape(-1).numpy().astype(np.float64)
    assert np.max(np.abs(yd - deq)) <= 1e-6 * np.max(np.abs(yd)), k
    tensors[k + ".x"] = x.reshape(-1)
    tensors[k + ".codes"] = torch.from_numpy(codes)
    tensors[k + ".qabsmax"] = torch.from_numpy(qa)
    tensors[k + ".absmax2"] = torch.from_numpy(absmax2)
    tensors[k + ".offset"] = torch.tensor([offset], dtype=torch.float32)
    tensors[k + ".deq"] = torch.from_numpy(deq)
    print(k, x.numel(), "elements: numpy reference vs bitsandbytes:",
          "bit-identical" if same else "codes identical, offset differs by 1 ulp (float32 vs exact mean)")
tensors["code8"] = torch.from_numpy(code8)
tensors["code4"] = torch.from_numpy(code4)
save_file(tensors, os.path.join(out, "nf4.safetensors"))
