/* The memory planner (see mem.h; the model behind each term: docs/mem.md). */
#include "advise/mem.h"
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "backend/cpu/cpu_sizes.h"
#include "backend/cuda/cuda_sizes.h"
#include "model/llama.h"
#include "model/presets.h"

static const char *part_names[LMA_MEM_NPARTS] = {"weights", "compute_copy", "gradients", "optimizer", "activations",
                                                 "logits_loss", "workspace", "process", "load", "save"};
const char *lma_mem_part_name(lma_mem_part p) { return p < LMA_MEM_NPARTS ? part_names[p] : "?"; }

const char *lma_mem_method_name(lma_mem_method m) {
    static const char *n[] = {"full", "lora", "qlora", "infer"};
    return (unsigned)m < 4 ? n[m] : "?";
}

/* bytes of the weight files a load maps: a .gguf file, or the *.safetensors of a folder */
size_t lma_mem_source_bytes(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return (size_t)st.st_size;
    DIR *d = opendir(path);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    char f[4400];
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 12 || strcmp(e->d_name + l - 12, ".safetensors")) continue;
        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
        if (stat(f, &st) == 0) n += (size_t)st.st_size;
    }
    closedir(d);
    return n;
}

lma_mem_request lma_mem_default_request(void) {
    lma_mem_request r = {.method = LMA_MEM_LORA, .style = LMA_MEM_LMADAPT, .cuda = 1, .B = 1, .T = 2048};
    r.lora = lma_lora_default_params();
    return r;
}

lma_status lma_mem_builtin_config(const char *name, lma_config *c) {
    if (!strcmp(name, "llama2-7b")) return lma_config_preset("7b", 32000, 4096, c);
    if (!strcmp(name, "llama2-13b")) {
        LMA_TRY(lma_config_preset("7b", 32000, 4096, c));
        c->hidden_size = 5120;
        c->intermediate_size = 13824;
        c->n_layers = 40;
        c->n_heads = c->n_kv_heads = 40;
        c->head_dim = 128;
        return LMA_OK;
    }
    if (!strcmp(name, "llama2-70b")) {
        LMA_TRY(lma_config_preset("7b", 32000, 4096, c));
        c->hidden_size = 8192;
        c->intermediate_size = 28672;
        c->n_layers = 80;
        c->n_heads = 64;
        c->n_kv_heads = 8;
        c->head_dim = 128;
        return LMA_OK;
    }
    return lma_error(LMA_ERR_ARG, "unknown built-in model '%s' (llama2-7b, llama2-13b, llama2-70b)", name);
}

/* ---- lmadapt ----------------------------------------------------------------------- */

/* The cuda backend's attention path for bf16 storage without segment ids (ops_attention.cuh:
 * cuDNN's fused attention where it takes the head dim, else the flash kernel for 16..128). */
static int cuda_flash(int HD) { return HD == 16 || HD == 32 || HD == 64 || HD == 128; }
static int cuda_cudnn(int HD) { return cuda_flash(HD) && HD % 8 == 0 && HD <= 128; }

/* floats of attention state per layer the backward reads (backend attention_saved_floats) */
static size_t attn_saved(const lma_config *c, int cuda, int B, int T) {
    size_t rows = (size_t)B * c->n_heads * T;
    return cuda && cuda_flash(c->head_dim) ? rows : rows * (size_t)T;
}

/* cpu-bf16: its packing scratch grows to the largest product's (kept between calls): every
 * linear layer's forward (rows R), input gradient and, when trained, weight gradient */
static double cpu_bf16_scratch(const lma_config *c, size_t N, size_t head_rows, int full) {
    long C = c->hidden_size, QD = (long)c->n_heads * c->head_dim, KVD = (long)c->n_kv_heads * c->head_dim;
    long I = c->intermediate_size, V = c->vocab_size;
    long lin[6][3] = {{C, QD, (long)N}, {C, KVD, (long)N}, {QD, C, (long)N}, {C, I, (long)N},
                      {I, C, (long)N},  {C, V, (long)head_rows}};
    size_t best = 0;
    for (int i = 0; i < 6; i++) {
        long in = lin[i][0], out = lin[i][1], R = lin[i][2];
        size_t b[3] = {lma_cpu_gemm_bf16_bytes(R, out, in), lma_cpu_gemm_bf16_bytes(R, in, out),
                       full ? lma_cpu_gemm_bf16_bytes(out, in, R) : 0};
        for (int j = 0; j < 3; j++) best = b[j] > best ? b[j] : best;
    }
    return (double)best;
}

static lma_status predict_lmadapt(const lma_config *c, const lma_mem_request *r, lma_mem_plan *o) {
    int ea = r->cuda ? 2 : 4, train = r->method != LMA_MEM_INFER, adapter = r->method == LMA_MEM_LORA ||
                                                                          r->method == LMA_MEM_QLORA;
    unsigned flags = r->method == LMA_MEM_QLORA ? LMA_MODEL_NF4 : r->method == LMA_MEM_FULL ? 0 : LMA_MODEL_FROZEN;
    double *p = o->part;
    lma_weight_plan w;
    LMA_TRY(lma_model_weight_plan(c, ea, flags, &w));
    p[LMA_MEM_WEIGHTS] = (double)(w.masters + w.nf4 + w.inv_freq);
    p[LMA_MEM_COPY] = (double)w.compute_copy;
    o->n_params = w.n_params;
    size_t tr_elems = 0, N = (size_t)r->B * r->T;
    int maxdim = 1;
    if (adapter) {
        lma_param_table lt;
        LMA_TRY(lma_lora_table(c, &r->lora, &lt, &maxdim));
        tr_elems = lt.total;
        for (int i = 0; i < lt.count; i++) o->trainable += lt.info[i].numel;
        lma_params_free(&lt);
        p[LMA_MEM_WEIGHTS] += (double)tr_elems * 4;
        if (ea != 4) p[LMA_MEM_COPY] += (double)tr_elems * ea;
    } else if (r->method == LMA_MEM_FULL) {
        tr_elems = w.table_elems;
        o->trainable = w.n_params;
    }
    if (train) {
        p[LMA_MEM_GRADS] = (double)tr_elems * 4;
        p[LMA_MEM_OPTIM] = 2.0 * (double)tr_elems * 4;
        size_t saved = attn_saved(c, r->cuda, r->B, r->T), rows = 0;
        size_t all = lma_model_acts_bytes(c, ea, saved, r->B, r->T, 0, r->grad_ckpt, &rows);
        size_t body = lma_model_acts_bytes(c, ea, saved, r->B, r->T, 1, r->grad_ckpt, NULL); /* 1-row head */
        o->head_rows = rows;
        p[LMA_MEM_ACTS] = (double)body + (double)lma_model_ids_bytes(r->B, r->T);
        p[LMA_MEM_LOGITS] = (double)(all - body);
        if (!r->cuda) p[LMA_MEM_ACTS] += (double)N * sizeof(float); /* host copy of the losses */
        /* both backends add the up projection's product in their GEMM (matmul_fwd_add) */
        if (adapter) p[LMA_MEM_ACTS] += (double)lma_lora_scratch_bytes(c, &r->lora, maxdim, (int)N, ea, 1);
    } else {
        /* generation: a KV cache of T tokens per sequence, one prefill of T tokens */
        size_t scratch = lma_model_infer_scratch_bytes(c, ea, r->T, 1);
        size_t nolog = lma_model_infer_scratch_bytes(c, ea, r->T, 0);
        p[LMA_MEM_ACTS] = (double)r->B * (double)lma_kv_bytes(c, r->T, ea) + (double)nolog;
        p[LMA_MEM_LOGITS] = (double)(scratch - nolog);
    }
    if (r->cuda) {
        int HD = c->head_dim;
        double ws = (double)LMA_CUDA_LT_WS_BYTES;
        if (train && cuda_cudnn(HD))
            /* (the bf16 q/k/v gradients' scratch, lma_cuda_sdpa_grad_bytes, is not there: the
             * model's gradients are zeroed just before, so cuDNN writes into them: ops_zero.cuh) */
            ws += (double)lma_cuda_sdpa_ws_bytes(0, r->B, r->T, c->n_heads, HD) +
                  (double)lma_cuda_sdpa_docs_bytes((size_t)r->B * r->T); /* packed rows' documents */
        else if (train && cuda_flash(HD))
            ws += 4.0 * (double)lma_cuda_flash_bwd_floats(r->B, r->T, c->n_heads, HD, 1, c->n_heads != c->n_kv_heads);
        if (r->method == LMA_MEM_QLORA) ws += (double)lma_cuda_nf4_deq_bytes(w.max_quant, ea);
        if (!train) ws += (double)LMA_CUDA_ATTC_SPLIT_BYTES; /* decode attention's key splits */
        p[LMA_MEM_WORKSPACE] = ws;
        o->context = LMA_MEM_CUDA_CONTEXT_BYTES;
    } else {
        p[LMA_MEM_PROCESS] = LMA_MEM_CPU_PROCESS_BYTES;
        if (r->cpu_bf16)
            p[LMA_MEM_WORKSPACE] = cpu_bf16_scratch(c, train ? N : (size_t)r->T, train ? o->head_rows : (size_t)r->T,
                                                    r->method == LMA_MEM_FULL);
        /* the mapped files, and the loader's fp32 staging of one tensor at a time */
        p[LMA_MEM_LOAD] = r->source_bytes ? (double)r->source_bytes + 4.0 * (double)w.max_tensor : 0;
        /* a checkpoint downloads the trainable masters and both moments to the host */
        if (train && r->save) p[LMA_MEM_SAVE] = 3.0 * (double)tr_elems * 4;
    }
    double run = 0;
    for (int i = 0; i < LMA_MEM_PROCESS + 1; i++) run += p[i];
    double load = p[LMA_MEM_WEIGHTS] + p[LMA_MEM_COPY] + p[LMA_MEM_LOAD] + (r->cuda ? 0 : LMA_MEM_CPU_LOAD_BYTES);
    if (adapter) load -= (double)tr_elems * (4 + (ea != 4 ? ea : 0)); /* the adapter comes after the load */
    double save = run + p[LMA_MEM_SAVE];
    o->peak = run;
    o->phase = train ? "train" : "infer";
    if (load > o->peak) { o->peak = load; o->phase = "load"; }
    if (save > o->peak) { o->peak = save; o->phase = "save"; }
    return LMA_OK;
}

/* ---- transformers + PEFT (+ bitsandbytes) ------------------------------------------
 * bf16 autocast, fused AdamW, sdpa attention (flash: no (T, T) scores), grads set to None
 * between steps (so at the peak, the loss backward, only the lm_head's gradient exists for
 * full fine-tuning). Bytes per token and layer of saved activations, from the tensors
 * autograd keeps (docs/mem.md), then fitted to bench/gpu_vs_hf's measured rows. */

static double hf_layer_bytes(const lma_config *c, int full) {
    double C = c->hidden_size, I = c->intermediate_size, QD = (double)c->n_heads * c->head_dim;
    double KVD = (double)c->n_kv_heads * c->head_dim;
    /* full: fp32 residual stream and norms, bf16 casts of each projection's input;
     * lora (bf16 model): fp32 upcasts inside the norms; both: rotated q, k, v, attention
     * output and its contiguous copy, gate, up, silu(gate), the product (bf16) */
    return full ? 20 * C + 6 * QD + 4 * KVD + 8 * I : 16 * C + 6 * QD + 4 * KVD + 8 * I;
}

static lma_status predict_hf(const lma_config *c, const lma_mem_request *r, lma_mem_plan *o) {
    if (!r->cuda) return lma_error(LMA_ERR_ARG, "--style hf models transformers on a GPU (bf16 autocast): use --device cuda");
    double *p = o->part;
    lma_weight_plan w;
    LMA_TRY(lma_model_weight_plan(c, 4, 0, &w));
    double P = (double)w.n_params, V = c->vocab_size, C = c->hidden_size, L = c->n_layers;
    double N = (double)r->B * r->T, emb = V * C, head = c->tie_word_embeddings ? 0 : V * C;
    double linear = P - emb; /* what autocast casts to bf16: every matrix but the embedding */
    o->n_params = w.n_params;
    int full = r->method == LMA_MEM_FULL;
    double tr = 0;
    if (r->method == LMA_MEM_LORA || r->method == LMA_MEM_QLORA) {
        lma_param_table lt;
        int md;
        LMA_TRY(lma_lora_table(c, &r->lora, &lt, &md));
        for (int i = 0; i < lt.count; i++) tr += (double)lt.info[i].numel;
        lma_params_free(&lt);
    }
    o->trainable = full ? w.n_params : (size_t)tr;
    if (full) {
        p[LMA_MEM_WEIGHTS] = 4 * P;
        p[LMA_MEM_COPY] = 2 * linear;       /* autocast's bf16 weights, saved for the backward */
        p[LMA_MEM_GRADS] = 4 * (head ? head : emb); /* the lm_head's, at the loss backward */
        p[LMA_MEM_OPTIM] = 8 * P;
    } else if (r->method == LMA_MEM_QLORA) {
        lma_weight_plan q;
        LMA_TRY(lma_model_weight_plan(c, 2, LMA_MODEL_NF4, &q));
        /* bitsandbytes NF4 with double quantization (the same block layout as lmadapt's);
         * embeddings, norms and lm_head in bf16 */
        p[LMA_MEM_WEIGHTS] = (double)q.nf4 + 2.0 * (double)q.table_elems + 4 * tr;
        p[LMA_MEM_WORKSPACE] = 2.0 * (double)q.max_quant; /* one projection dequantized at a time */
    } else {
        p[LMA_MEM_WEIGHTS] = 2 * P + (r->method == LMA_MEM_INFER ? 0 : 4 * tr);
    }
    if (r->method == LMA_MEM_LORA || r->method == LMA_MEM_QLORA) {
        p[LMA_MEM_GRADS] = 4 * tr;
        p[LMA_MEM_OPTIM] = 8 * tr;
        p[LMA_MEM_COPY] = 2 * tr;
    }
    if (r->method == LMA_MEM_INFER) {
        /* generate(): the KV cache, one layer's prefill temporaries, the last row's logits */
        double KVD = (double)c->n_kv_heads * c->head_dim;
        p[LMA_MEM_ACTS] = r->B * 2 * L * r->T * KVD * 2 + N * (4 * C + 3.0 * c->intermediate_size) * 2;
        p[LMA_MEM_LOGITS] = r->B * V * 4;
    } else {
        double layer = hf_layer_bytes(c, full) * N;
        double logits = 20 * N * V; /* bf16 logits, fp32 upcast, log-softmax, its gradients */
        if (r->grad_ckpt) {
            /* each layer's input kept; one layer's activations while it is recomputed */
            p[LMA_MEM_ACTS] = L * N * C * (full ? 4 : 2);
            p[LMA_MEM_LOGITS] = logits > layer ? logits : layer;
        } else {
            p[LMA_MEM_ACTS] = L * layer;
            p[LMA_MEM_LOGITS] = logits;
        }
    }
    o->context = LMA_MEM_CUDA_CONTEXT_BYTES;
    for (int i = 0; i < LMA_MEM_NPARTS; i++) o->peak += p[i];
    o->phase = r->method == LMA_MEM_INFER ? "infer" : "train";
    return LMA_OK;
}

lma_status lma_mem_predict(const lma_config *c, const lma_mem_request *r, lma_mem_plan *out) {
    memset(out, 0, sizeof *out);
    if (r->B < 1 || r->T < 1) return lma_error(LMA_ERR_ARG, "batch %d x %d tokens: both must be >= 1", r->B, r->T);
    if ((r->method == LMA_MEM_LORA || r->method == LMA_MEM_QLORA) && r->lora.r < 1)
        return lma_error(LMA_ERR_ARG, "LoRA rank %d must be >= 1", r->lora.r);
    return r->style == LMA_MEM_HF ? predict_hf(c, r, out) : predict_lmadapt(c, r, out);
}
