/* safetensors read (mmap, single file or sharded index) and write (docs/formats.md "safetensors").
 *
 * Reading validates everything before any tensor is handed out: header length
 * <= 100,000,000 bytes and inside the file, UTF-8 JSON object, known dtypes,
 * shapes whose byte size (numel * dtype size, overflow-checked) equals
 * END-BEGIN, offsets contiguous from 0 with no gaps or overlaps, the file ending
 * exactly at the last tensor, no duplicate names. Each failure is LMA_ERR_FORMAT
 * (or LMA_ERR_UNSUPPORTED for a dtype lmadapt cannot convert when asked to read
 * it) with a message naming the file, the tensor and the problem.
 *
 * Ownership: lma_st_* handles own their mappings; tensors point into them and
 * live until lma_st_close. Writing is atomic (temp file, fsync, rename). */
#ifndef LMA_MODEL_SAFETENSORS_H
#define LMA_MODEL_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef enum {
    LMA_DT_BOOL, LMA_DT_U8, LMA_DT_I8, LMA_DT_I16, LMA_DT_U16, LMA_DT_F16, LMA_DT_BF16,
    LMA_DT_I32, LMA_DT_U32, LMA_DT_F32, LMA_DT_F64, LMA_DT_I64, LMA_DT_U64,
    LMA_DT_F8_E4M3, LMA_DT_F8_E5M2,
    /* parsed and validated, never convertible to f32: */
    LMA_DT_C64, LMA_DT_F8_E8M0, LMA_DT_F8_E4M3FNUZ, LMA_DT_F8_E5M2FNUZ,
    LMA_DT_F4, LMA_DT_F6_E2M3, LMA_DT_F6_E3M2, /* sub-byte: 4 or 6 bits per element */
    LMA_DT_COUNT
} lma_dtype;

#define LMA_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    lma_dtype dtype;
    int ndim;
    int64_t shape[LMA_ST_MAX_DIMS];
    size_t numel, nbytes;
    const void *data;    /* points into the mapping; may be unaligned (use lma_st_read_f32) */
} lma_st_tensor;

typedef struct lma_st_file lma_st_file;

/* One .safetensors file. */
lma_status lma_st_open(const char *path, lma_st_file **out);
/* A model directory: model.safetensors, or model.safetensors.index.json + its shards. */
lma_status lma_st_open_dir(const char *dir, lma_st_file **out);
/* Parses a buffer (not copied; must outlive the handle). ctx names it in errors. */
lma_status lma_st_open_buffer(const void *data, size_t len, const char *ctx, lma_st_file **out);
void lma_st_close(lma_st_file *f);

int lma_st_count(const lma_st_file *f);
const lma_st_tensor *lma_st_get(const lma_st_file *f, int i);
const lma_st_tensor *lma_st_find(const lma_st_file *f, const char *name); /* NULL if absent */
/* Converts F32/F16/BF16 to f32; n must equal numel (else LMA_ERR_SHAPE). */
lma_status lma_st_read_f32(const lma_st_tensor *t, float *dst, size_t n);

const char *lma_dtype_name(lma_dtype d);
size_t lma_dtype_size(lma_dtype d);  /* bytes per element; 0 for the sub-byte F4/F6 types */
size_t lma_dtype_bits(lma_dtype d);  /* bits per element (all dtypes) */

/* Writing: tensors given in f32, stored as F32 or BF16 (round to nearest even). */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[LMA_ST_MAX_DIMS];
    const float *data;
} lma_st_entry;

/* One file, with __metadata__ {"format":"pt"}. */
lma_status lma_st_save(const char *path, const lma_st_entry *e, int n, lma_dtype dtype);
/* A model directory: model.safetensors, or, when the total exceeds max_shard_bytes
 * (0 = never shard), model-0000i-of-0000n.safetensors + model.safetensors.index.json. */
lma_status lma_st_save_dir(const char *dir, const lma_st_entry *e, int n, lma_dtype dtype, size_t max_shard_bytes);

/* bf16 <-> f32 helpers (round to nearest even; NaN stays NaN). */
uint16_t lma_f32_to_bf16(float x);
float lma_bf16_to_f32(uint16_t h);
float lma_f16_to_f32(uint16_t h);
#endif
