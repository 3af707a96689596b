"""Times torch's SDPA backends (flash = FlashAttention-2, cudnn, efficient) on the shapes of
bench/flash/flash_check.cu, causal, bf16, forward and forward+backward, so the lmadapt kernels
can be put beside them. Run on the device machine: python3 bench/flash/sdpa_torch.py"""
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F

SHAPES = [(16, 1024, 12, 12, 64), (4, 2048, 32, 4, 64), (1, 2048, 32, 32, 128)]
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def timed(fn, n=20):
    for _ in range(3):
        fn()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(); a.record()
    for _ in range(n):
        fn()
    b.record(); torch.cuda.synchronize()
    return a.elapsed_time(b) / n


for B, T, NH, NKV, HD in SHAPES:
    fl = 4 * B * NH * T * T * HD / 2  # causal: half of QK^T and PV
    q = torch.randn(B, NH, T, HD, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, NKV, T, HD, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, NKV, T, HD, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    for name, be in BACKENDS.items():
        try:
            with sdpa_kernel(be):
                f = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=NKV != NH)
                o = f(); g = torch.randn_like(o)
                tf = timed(lambda: f())
                tfb = timed(lambda: torch.autograd.backward(f(), g))
            tb = tfb - tf
            print(f"torch {name:9s} B={B} T={T} NH={NH} NKV={NKV} HD={HD}: fwd {tf:.3f} ms ({fl / tf / 1e9:.0f} TFLOP/s) "
                  f"bwd {tb:.3f} ms ({2.5 * fl / tb / 1e9:.0f} TFLOP/s)")
        except Exception as e:
            print(f"torch {name:9s} B={B} T={T} NH={NH} NKV={NKV} HD={HD}: unavailable ({str(e).splitlines()[0][:100]})")
