/* The memory planner: the peak memory of a training or inference run, predicted before
 * any weight is read (`lmadapt mem`, docs/mem.md).
 *
 * Style lmadapt: the sum of lmadapt's own allocations, each sized by the function that
 * allocates it (lma_model_weight_plan, lma_model_acts_bytes, lma_lora_table,
 * lma_lora_scratch_bytes, lma_kv_bytes, lma_model_infer_scratch_bytes,
 * backend/cuda/cuda_sizes.h), so a change to the allocator changes the plan. On cuda the
 * peak is the allocator's high-water mark (lma_cuda_memory; the CUDA context and the
 * libraries' own memory are reported beside it, not in it); on cpu it is the process's
 * peak RSS (getrusage), with the mapped weight files while a base loads and the host
 * staging of a checkpoint save as phases of their own.
 *
 * Style hf: a model of transformers + PEFT (+ bitsandbytes for QLoRA) on a GPU: bf16
 * autocast, fused AdamW, sdpa attention, torch.cuda.max_memory_allocated; the terms
 * (docs/mem.md) were fitted to the measured rows of bench/gpu_vs_hf. */
#ifndef LMA_ADVISE_MEM_H
#define LMA_ADVISE_MEM_H
#include <stddef.h>
#include "model/config.h"
#include "model/lora.h"

typedef enum { LMA_MEM_FULL, LMA_MEM_LORA, LMA_MEM_QLORA, LMA_MEM_INFER } lma_mem_method;
typedef enum { LMA_MEM_LMADAPT, LMA_MEM_HF } lma_mem_style;

typedef struct {
    lma_mem_method method;
    lma_mem_style style;
    int cuda;             /* 1: the cuda backend (bf16 act storage); 0: cpu (fp32) */
    int cpu_bf16;         /* cpu: the cpu-bf16 table (its GEMMs' packing scratch) */
    int B, T;             /* micro-batch; infer: sequences x tokens of context */
    int grad_ckpt;        /* activation checkpointing */
    lma_lora_params lora; /* lora, qlora */
    size_t source_bytes;  /* cpu: the weight files mapped while the base loads (0: none, random init) */
    int save;             /* cpu: the run saves checkpoints (host staging of the trainable state) */
} lma_mem_request;

/* The parts of the breakdown, in bytes. */
typedef enum {
    LMA_MEM_WEIGHTS,   /* the weights as stored: fp32 masters, NF4 codes, LoRA masters */
    LMA_MEM_COPY,      /* the compute copy (bf16) where separate from the masters */
    LMA_MEM_GRADS,     /* parameter gradients */
    LMA_MEM_OPTIM,     /* AdamW moments */
    LMA_MEM_ACTS,      /* activations (and inference: the KV cache and scratch) */
    LMA_MEM_LOGITS,    /* logits and loss */
    LMA_MEM_WORKSPACE, /* backend scratch: cuBLASLt, attention backward, NF4 dequant; cpu-bf16's packing */
    LMA_MEM_PROCESS,   /* cpu: the process itself (binary, libraries, BLAS buffers, tokenizer) */
    LMA_MEM_LOAD,      /* transient: the weight files mapped while the base loads, the loader's staging (cpu) */
    LMA_MEM_SAVE,      /* transient: host staging of a checkpoint save (cpu) */
    LMA_MEM_NPARTS
} lma_mem_part;

typedef struct {
    double part[LMA_MEM_NPARTS]; /* bytes */
    double peak;                 /* bytes: the largest phase */
    const char *phase;           /* where the peak falls: "train", "load", "save", "infer" */
    double context;              /* cuda: CUDA context + cuBLAS/cuDNN (outside the allocator, not in peak) */
    size_t n_params, trainable;
    size_t head_rows;            /* lmadapt: rows of the loss head's logits chunk */
} lma_mem_plan;

/* Bytes of the cpu process beside the model, measured on the dev machine (docs/mem.md):
 * while the base loads (binary, linked libraries, tokenizer, data) and once training runs
 * (OpenBLAS's per-thread buffers come with the first GEMM). */
#define LMA_MEM_CPU_LOAD_BYTES ((double)(10u << 20))
#define LMA_MEM_CPU_PROCESS_BYTES ((double)(40u << 20))
/* An H100's CUDA context with cuBLAS and cuDNN loaded (outside any allocator). */
#define LMA_MEM_CUDA_CONTEXT_BYTES ((double)(600u << 20))

lma_mem_request lma_mem_default_request(void);
/* Predicts the plan of request r on config c. LMA_ERR_ARG for a request that makes no sense
 * (style hf on cpu, B or T < 1). */
lma_status lma_mem_predict(const lma_config *c, const lma_mem_request *r, lma_mem_plan *out);
/* Bytes of the weight files a cpu load maps: a .gguf file, or the *.safetensors of a folder. */
size_t lma_mem_source_bytes(const char *path);
const char *lma_mem_part_name(lma_mem_part p); /* "weights", "compute_copy", ... (JSON keys) */
const char *lma_mem_method_name(lma_mem_method m);
/* Llama 2 7B / 13B (the seed's Table 1 models) and 70B: "llama2-7b", "llama2-13b", "llama2-70b";
 * LMA_ERR_ARG else. */
lma_status lma_mem_builtin_config(const char *name, lma_config *c);
#endif
