"""ggml block-quantization fixtures: makes tests/ref/quant/<type>.safetensors.

Reference: gguf-py (pip package `gguf`, llama.cpp's gguf-py/gguf/quants.py), whose
quantize/dequantize mirror ggml-quants.c's quantize_row_*_ref / dequantize_row_*
bit for bit, on numpy.

  (a) F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (gguf-py quantizes and dequantizes):
      x    F32 input, rows of 256 (normal, uniform, blocks of identical values,
           zeros and -0.0, large and small magnitudes, ties, spikes; F16/BF16 get
           their own rounding edge cases)
      q    U8 gguf.quants.quantize(x, type) (the raw blocks)
      deq  F32 gguf.quants.dequantize(q, type)
      qr   U8 random bytes for whole blocks with every fp16 field (d, m) set to a
           random finite half (F16/BF16: random 16-bit patterns, no signalling NaN
           for F16: numpy keeps those signalling, ggml quiets them)
      deqr F32 gguf.quants.dequantize(qr, type)
  types.safetensors: sizes F32 [n, 3] = (type number, elements per block, bytes per
      block) for every member of gguf-py's GGMLQuantizationType (GGML_QUANT_SIZES).
  (b) Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (gguf-py only dequantizes these):
      q    U8 random bytes for 4 blocks, the fp16 fields (d, dmin) overwritten by
           random finite halfs (block 0: d = 1, dmin = 0.5)
      deq  F32 gguf.quants.dequantize(q, type)
numpy's overflow warnings are silenced: rows 3 overflow the fp16 scale to inf on
purpose (the dequantized values then hold inf and NaN: inf * 0).
Deterministic (fixed seeds): rerunning writes byte-identical files.
Usage: python3 tests/ref/make_quant_fixtures.py   (needs gguf, numpy)
"""
import json
import os
import struct
from importlib.metadata import version

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import quantize, dequantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quant")
META = {"gguf": version("gguf"), "numpy": np.__version__,
        "made_by": "tests/ref/make_quant_fixtures.py"}


def save_safetensors(path, tensors):
    """safetensors by hand (no torch needed): JSON header, 8-byte padded, then data."""
    header, blobs, off = {"__metadata__": META}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dt = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def f32(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)


def finite_halfs(rng, n):
    """random finite half bit patterns (every exponent 0..30, either sign)"""
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    exp = (h >> 10) & 0x1F
    h = np.where(exp == 31, h & np.uint16(0xBFFF), h)  # exponent 31 -> 15
    return h.astype(np.uint16)


def legacy_input(rng):
    """7 rows x 256 floats exercising the block formats' edge cases"""
    rows = []
    rows.append(rng.standard_normal(256))                               # 0: normal
    r = rng.uniform(-3, 7, 256)                                         # 1: offset + identical blocks
    r[128:160] = 0.7
    r[160:192] = -1234.5
    r[192:224] = 1e-3
    r[224:256] = 3.0
    rows.append(r)
    r = rng.standard_normal(256)                                        # 2: zeros and -0.0
    r[0:32] = 0.0
    r[32:64] = -0.0
    r[64:96] = rng.standard_normal(32)
    r[64 + 5] = r[64 + 17] = -0.0                                       # -0.0 inside a block
    r[96 + 3] = -0.0
    r[96 + 4] = 0.0
    r[128:160] = np.where(rng.random(32) < 0.5, 0.0, rng.standard_normal(32))
    rows.append(r)
    r = rng.standard_normal(256) * 1e4                                  # 3: large magnitudes
    r[64:96] *= 100                                                     # 1e6: Q4_0's d overflows fp16
    r[96:128] = rng.standard_normal(32) * 3e7                           # d inf for every type
    rows.append(r)
    r = rng.standard_normal(256) * 1e-5                                 # 4: small magnitudes
    r[64:96] *= 1e-4                                                    # d underflows fp16
    r[96:128] = rng.standard_normal(32) * 1e-40                         # fp32 subnormals, with one
    r[96 + 9] = 3e-30                                                   # normal max (1/d stays finite)
    r[128:160] = rng.standard_normal(32) * 1e-7                         # fp16 subnormal d
    rows.append(r)
    r = np.empty(256)                                                   # 5: ties and spikes
    r[0:32] = np.concatenate([[127.0], np.arange(-15.5, 15.5, 1.0)[:31]])  # Q8_0 id = 1: x.5 ties
    r[32:64] = np.concatenate([[-8.0], np.arange(-7.5, 8.0, 0.5)[:31]])    # Q4_0 d = 1
    r[64:96] = np.arange(32) * 0.5                                      # Q4_1 min 0, max 15.5
    r[96:128] = np.arange(32) - 16.0                                    # Q5_0 max -16: d = 1
    r[128:256] = rng.standard_normal(128) * 0.01
    r[128 + 7] = 50.0                                                   # one spike per block
    r[160 + 31] = -50.0
    r[192 + 0] = 1e3
    r[224 + 16] = -7.0
    rows.append(r)
    r = rng.standard_normal(256)                                        # 6: rounding traps
    for b, kind in enumerate(["q8_0", "q4_0", "q5_0", "q4_1", "q5_1"]):
        r[32 * b:32 * b + 32] = trap_block(kind)
    rows.append(r)
    return np.stack(rows).astype(np.float32)


def trap_candidates(kind, lo, hi, head):
    """the x in (lo, hi) near a code boundary whose code changes with a fused
    multiply-add (Q4_x/Q5_x) or with x/d in place of x*id (Q8_0)"""
    f = np.float32
    asym = kind in ("q4_1", "q5_1")
    nmax = {"q8_0": 127, "q4_0": 8, "q5_0": 16, "q4_1": 15, "q5_1": 31}[kind]
    if kind == "q8_0":
        d = f(head[0] / f(127))
    elif asym:
        d = f(f(hi - lo) / f(nmax))
    else:
        d = f(head[0] / f(-nmax))
    id_ = f(1) / d
    off = 0.5 if asym or kind == "q8_0" else nmax + 0.5
    j = np.arange(-140, 141, dtype=np.float64)
    base = (j - off) * float(d) + (float(lo) if asym else 0.0)
    if kind == "q8_0":
        base = (j - 0.5) * float(d)
    x0 = base.astype(np.float32)
    k = np.arange(-60, 61, dtype=np.float32)
    x = (x0[:, None] + k[None, :] * np.spacing(np.abs(x0))[:, None]).astype(np.float32).ravel()
    x = x[(x > lo) & (x < hi)]
    a = (x - lo).astype(np.float32) if asym else x
    if kind == "q8_0":
        sep = np.floor(np.abs(a * id_) + f(0.5))
        other = np.floor(np.abs(a.astype(np.float64) / float(d)) + 0.5)
    else:
        sep = np.trunc((a * id_).astype(np.float32) + f(off))
        other = np.trunc((a.astype(np.float64) * float(id_) + off).astype(np.float32))
    return np.unique(x[sep != other])


def trap_block(kind):
    """32 floats whose codes depend on ggml's exact fp32 steps: x*id rounded before
    the offset is added (no fused multiply-add), x times the reciprocal (not x/d).
    The first element(s) fix the scale; the rest sit on code boundaries."""
    f = np.float32
    if kind == "q8_0":
        head = [f(381.0)]
        lo, hi = f(-381.0), f(381.0)
    elif kind in ("q4_0", "q5_0"):
        head = [f(-3.0 * (8 if kind == "q4_0" else 16))]
        lo, hi = head[0], -head[0]
    else:  # search (seeded) for a min and range with traps: they are rare for the +0.5 offset
        rng = np.random.default_rng(5)
        for _ in range(2000):
            lo = f(-rng.uniform(0.05, 8.0))
            hi = f(lo + rng.uniform(0.5, 60.0))
            head = [lo, hi]
            if len(trap_candidates(kind, lo, hi, head)) >= 4:
                break
    found = list(trap_candidates(kind, lo, hi, head))[:30]
    assert len(found) >= 4, (kind, len(found))
    out = (head + found + [f(0.25)] * 32)[:32]
    return np.array(out, dtype=np.float32)


def random_blocks(rng, qtype, nblocks, fp16_offsets, fixed=None):
    bs, ts = GGML_QUANT_SIZES[qtype]
    q = rng.integers(0, 256, size=(nblocks, ts), dtype=np.uint16).astype(np.uint8)
    for off in fp16_offsets:
        q[:, off:off + 2] = finite_halfs(rng, nblocks).view(np.uint8).reshape(nblocks, 2)
    if fixed:
        for off, val in fixed.items():
            q[0, off:off + 2] = np.array([val], dtype=np.float16).view(np.uint8)
    return q


def f16_input(rng):
    n = 1024
    x = np.empty(n, dtype=np.float32)
    mag = 10.0 ** rng.uniform(-9, 5.5, 512)
    x[0:512] = (np.where(rng.random(512) < 0.5, -1, 1) * mag).astype(np.float32)
    # exact midpoints between neighbouring halfs (ties: round to even), normal and subnormal
    h = np.sort(finite_halfs(rng, 256) & np.uint16(0x7BFE))
    lo = h.view(np.float16).astype(np.float32)
    hi = (h + np.uint16(1)).view(np.float16).astype(np.float32)
    x[512:768] = (lo + hi) / 2 * np.where(rng.random(256) < 0.5, -1, 1).astype(np.float32)
    sub = np.arange(0, 64, dtype=np.uint16)                            # smallest subnormals and midpoints
    s = sub.view(np.float16).astype(np.float32)
    x[768:832] = s + np.float32(2.0 ** -25)
    x[832:896] = s * rng.uniform(0.9, 1.1, 64).astype(np.float32)
    special = [0.0, -0.0, 65504.0, 65519.996, 65520.0, 65536.0, -65520.0, 1e9, np.inf, -np.inf,
               2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -14, 2.0 ** -14 * 0.99999994,
               1.0, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 2048.0 + 1.0, 2048.0 + 3.0, 1e-30, -1e-30]
    x[896:896 + len(special)] = np.array(special, dtype=np.float32)
    nan = f32([0x7FC00000, 0xFFC00000, 0x7FD12345, 0xFFE00001])         # quiet NaNs only (see above)
    x[896 + len(special):900 + len(special)] = nan
    k = 900 + len(special)
    x[k:] = rng.standard_normal(n - k).astype(np.float32)
    return x.reshape(4, 256)


def bf16_input(rng):
    n = 1024
    x = rng.standard_normal(n).astype(np.float32) * (10.0 ** rng.uniform(-30, 30, n)).astype(np.float32)
    bits = x.view(np.uint32)
    # ties: low half exactly 0x8000, both parities of the kept half
    bits[0:128] = (bits[0:128] & np.uint32(0xFFFF0000)) | np.uint32(0x8000)
    bits[128:256] = (bits[128:256] & np.uint32(0xFFFF0000)) | np.uint32(0x7FFF)
    special = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000,
               0x7F7F7FFF, 0x00000001, 0x80008000, 0x00018000, 0x007FFFFF, 0x3F808000, 0x3F818000,
               0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF812345, 0x7FBFFFFF, 0x7FFFFFFF, 0xFFFF8000]
    bits[256:256 + len(special)] = np.array(special, dtype=np.uint32)
    return bits.view(np.float32).reshape(4, 256)


def legacy_fixture(qtype, fp16_offsets, seed):
    rng = np.random.default_rng(seed)
    x = legacy_input(rng)
    q = quantize(x, qtype)
    deq = dequantize(q, qtype)
    qr = random_blocks(rng, qtype, 8, fp16_offsets)
    deqr = dequantize(qr, qtype)
    bs = GGML_QUANT_SIZES[qtype][0]
    err = np.abs(deq - x).reshape(-1, bs)
    assert q.dtype == np.uint8 and deq.dtype == np.float32 and deqr.dtype == np.float32
    assert np.isfinite(deq[0]).all() and err[:8].max() < np.abs(x[0]).max()  # sanity: row 0 is close
    return {"x": x, "q": q.reshape(x.shape[0], -1), "deq": deq, "qr": qr, "deqr": deqr}


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}
    files["q8_0"] = legacy_fixture(T.Q8_0, [0], 80)
    files["q4_0"] = legacy_fixture(T.Q4_0, [0], 20)
    files["q4_1"] = legacy_fixture(T.Q4_1, [0, 2], 30)
    files["q5_0"] = legacy_fixture(T.Q5_0, [0], 60)
    files["q5_1"] = legacy_fixture(T.Q5_1, [0, 2], 70)

    rng = np.random.default_rng(16)
    x = f16_input(rng)
    q = quantize(x, T.F16).view(np.uint8).reshape(4, -1)
    hr = np.concatenate([np.arange(0, 1 << 16, 37, dtype=np.uint32),
                         np.arange(0, 1 << 10, dtype=np.uint32),                   # subnormals
                         np.array([0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7FFF, 0xFFFF, 0x7BFF, 0x8001])]).astype(np.uint16)
    sig_nan = ((hr & 0x7C00) == 0x7C00) & ((hr & 0x3FF) != 0) & ((hr & 0x200) == 0)
    hr = hr[~sig_nan]
    hr = hr[: len(hr) // 2 * 2]
    files["f16"] = {"x": x, "q": q, "deq": dequantize(q.view(np.float16), T.F16).reshape(4, 256),
                    "qr": hr.view(np.uint8), "deqr": dequantize(hr.view(np.float16), T.F16)}

    rng = np.random.default_rng(30)
    x = bf16_input(rng)
    q = quantize(x, T.BF16).reshape(4, -1)
    hr = rng.integers(0, 1 << 16, size=2048, dtype=np.uint32).astype(np.uint16)
    hr[:4] = [0x7F81, 0xFFC1, 0x7F80, 0x0001]                                        # NaNs keep their bits
    files["bf16"] = {"x": x, "q": q, "deq": dequantize(q, T.BF16).reshape(4, 256),
                     "qr": hr.view(np.uint8), "deqr": dequantize(hr.view(np.uint8), T.BF16)}

    kq = {  # type: (fp16 field offsets, block 0's fixed values)
        T.Q2_K: ([80, 82], {80: 1.0, 82: 0.5}),
        T.Q3_K: ([108], {108: 1.0}),
        T.Q4_K: ([0, 2], {0: 1.0, 2: 0.5}),
        T.Q5_K: ([0, 2], {0: 1.0, 2: 0.5}),
        T.Q6_K: ([208], {208: 1.0}),
    }
    for i, (qtype, (offs, fixed)) in enumerate(kq.items()):
        rng = np.random.default_rng(100 + i)
        q = random_blocks(rng, qtype, 4, offs, fixed)
        deq = dequantize(q, qtype)
        assert deq.dtype == np.float32 and deq.shape == (4, 256) and np.isfinite(deq).all()
        files[qtype.name.lower()] = {"q": q, "deq": deq}

    sizes = [(int(t), bs, ts) for t, (bs, ts) in sorted(GGML_QUANT_SIZES.items())]
    files["types"] = {"sizes": np.array(sizes, dtype=np.float32)}

    for name, t in files.items():
        save_safetensors(os.path.join(OUT, name + ".safetensors"), t)
        print(f"{name:5s} " + " ".join(f"{k}{list(v.shape)}" for k, v in sorted(t.items())))


if __name__ == "__main__":
    with np.errstate(over="ignore", invalid="ignore"):
        main()
