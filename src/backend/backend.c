/* Backend lookup by name and the host memory shared by cpu/ and ref/. */
#define _GNU_SOURCE /* dladdr */
#include "backend/backend.h"
#include "backend/cuda/cuda_host.h"
#include "backend/host.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/log.h"
#include "core/status.h"
#include "quant/nf4.h" /* the NF4 code tables, handed to the CUDA plugin */

void *lma_backend_host_alloc(size_t bytes) {
    void *p = NULL;
    /* round up to the alignment so vector loads of the tail stay in the block */
    size_t sz = bytes ? bytes : 1;
    if (sz > (size_t)-1 - 63) return NULL;
    sz = (sz + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, sz) != 0) return NULL;
    return p;
}

void lma_backend_host_free(void *p) { free(p); }

void lma_backend_host_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}

void lma_backend_host_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t rows) {
    for (size_t i = 0; i < rows; i++) memcpy((char *)dst + i * dpitch, (const char *)src + i * spitch, width);
}

void lma_backend_host_zero(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}

const lma_backend *lma_backend_by_name(const char *name) {
    if (!name) return NULL;
    if (!strcmp(name, "cpu")) return lma_backend_cpu();
    if (!strcmp(name, "cpu-bf16")) return lma_backend_cpu_bf16();
    if (!strcmp(name, "ref")) return lma_backend_ref();
    if (!strcmp(name, "cuda")) return lma_backend_cuda();
    if (!strcmp(name, "cuda-fp32")) return lma_backend_cuda_fp32();
    return NULL;
}

lma_status lma_backend_select(const char *device, const lma_backend **out) {
    *out = device ? lma_backend_by_name(device) : lma_backend_default();
    if (*out) return LMA_OK;
    if (!strncmp(device, "cuda", 4))
        return lma_error(LMA_ERR_UNSUPPORTED, "--device %s: no CUDA GPU found (or lmadapt was built without nvcc)",
                         device);
    return lma_error(LMA_ERR_UNSUPPORTED, "unknown --device '%s' (cpu, cpu-bf16, cuda or cuda-fp32)", device);
}

int lma_backend_on_host(const lma_backend *be) {
    return be == lma_backend_cpu() || be == lma_backend_cpu_bf16() || be == lma_backend_ref();
}

const lma_backend *lma_backend_default(void) {
    const lma_backend *c = lma_backend_cuda();
    return c ? c : lma_backend_cpu();
}

/* ---- the CUDA backend: a plugin loaded on demand ------------------------------
 * cuda/ is built into liblmadapt_cuda.so (with cuBLAS). It is loaded only when the
 * NVIDIA driver (libcuda.so.1) is there, from $LMA_CUDA_PLUGIN, else beside the
 * executable, else beside the library (an installed liblmadapt.so), else from the build tree; so a CPU-only run never maps cuBLAS
 * (about 220 MB of resident memory when linked directly). */
int lma_cuda_attention_naive = 0;
static void (*cuda_set_tf32)(int);
static void (*cuda_memory)(size_t *, size_t *, int);
static const char *(*cuda_sdpa)(int, long *);
static void (*cuda_profile_reset)(void);

#ifdef LMA_CUDA_PLUGIN
/* dlopen of the plugin at path; where the file is there but does not load, dlerror into why */
static void *plugin_open(const char *path, char *why, size_t n) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h && access(path, F_OK) == 0) snprintf(why, n, "%s", dlerror());
    return h;
}
#endif

/* The plugin's table: bf16 = 1 for "cuda" (bf16 activations), 0 for "cuda-fp32". */
static const lma_backend *cuda_table(int bf16) {
#ifndef LMA_CUDA_PLUGIN
    (void)bf16;
    return NULL;
#else
    typedef const lma_backend *(*open_fn)(lma_status (*)(lma_status, const char *, ...), const int *, int,
                                          const float *, const float *);
    static int tried;
    static open_fn open;
    if (tried) return open ? open(lma_error, &lma_cuda_attention_naive, bf16, lma_nf4_code, lma_nf4_code8) : NULL;
    tried = 1;
    if (!dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) return NULL; /* no driver: no GPU */
    void *h = NULL;
    char why[512] = ""; /* a plugin that is there but does not load (a library it needs is missing) */
    const char *env = getenv("LMA_CUDA_PLUGIN");
    if (env) h = plugin_open(env, why, sizeof why);
    if (!h) {
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
        if (n > 0) {
            exe[n] = 0;
            char *slash = strrchr(exe, '/');
            if (slash) { strcpy(slash + 1, "liblmadapt_cuda.so"); h = plugin_open(exe, why, sizeof why); }
        }
    }
    if (!h) { /* beside liblmadapt.so (an installed library used by another program) */
        Dl_info di;
        char lib[4096];
        if (dladdr((void *)lma_backend_cuda, &di) && di.dli_fname && strlen(di.dli_fname) < sizeof lib - 32) {
            strcpy(lib, di.dli_fname);
            char *slash = strrchr(lib, '/');
            if (slash) { strcpy(slash + 1, "liblmadapt_cuda.so"); h = plugin_open(lib, why, sizeof why); }
        }
    }
    if (!h) h = plugin_open(LMA_CUDA_PLUGIN, why, sizeof why);
    if (!h) {
        if (why[0]) lma_log(LMA_LOG_WARN, "the cuda plugin did not load (%s): no GPU backend", why);
        return NULL;
    }
    open = (open_fn)dlsym(h, "lma_cuda_plugin_open");
    cuda_set_tf32 = (void (*)(int))dlsym(h, "lma_cuda_plugin_set_tf32");
    cuda_memory = (void (*)(size_t *, size_t *, int))dlsym(h, "lma_cuda_plugin_memory");
    cuda_sdpa = (const char *(*)(int, long *))dlsym(h, "lma_cuda_plugin_sdpa");
    cuda_profile_reset = (void (*)(void))dlsym(h, "lma_cuda_plugin_profile_reset");
    return open ? open(lma_error, &lma_cuda_attention_naive, bf16, lma_nf4_code, lma_nf4_code8) : NULL;
#endif
}

const lma_backend *lma_backend_cuda(void) { return cuda_table(1); }
const lma_backend *lma_backend_cuda_fp32(void) { return cuda_table(0); }

void lma_cuda_memory(size_t *current, size_t *peak, int reset_peak) {
    if (current) *current = 0;
    if (peak) *peak = 0;
    if (cuda_memory) cuda_memory(current, peak, reset_peak);
}

const char *lma_cuda_cudnn_attention(int HD, long *runs) {
    if (runs) *runs = 0;
    return cuda_sdpa ? cuda_sdpa(HD, runs) : NULL;
}

void lma_cuda_profile_reset(void) {
    if (cuda_profile_reset) cuda_profile_reset();
}

void lma_cuda_set_tf32(int on) {
    if (cuda_set_tf32) cuda_set_tf32(on);
}
