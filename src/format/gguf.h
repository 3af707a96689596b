/* GGUF (llama.cpp's model file), read and written; docs/formats.md "GGUF".
 *
 * Layout (little-endian), versions 2 and 3:
 *   u32 magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x (string key, u32 type, value), n_tensors x (string name, u32 n_dims,
 *   n_dims x u64 ne (fastest-varying first), u32 ggml type, u64 offset),
 *   padding to general.alignment (default 32), then the tensor data; each tensor's
 *   offset is relative to the data start and a multiple of the alignment.
 *   string = u64 length + bytes (no NUL); array = u32 element type + u64 count + values.
 *
 * Reading maps the file and checks every count, length, offset and dimension
 * against the file size before use (llama.cpp's 2024-2026 GGUF CVEs came from
 * unchecked sizes): a truncated file, a tensor past the end, a count of 2^62, an
 * unknown type or a string past the end each fail with LMA_ERR_FORMAT and one line
 * naming the file, the key or tensor and the problem. Nothing is allocated from an
 * unchecked count.
 *
 * Ownership: lma_gguf_open returns a handle freed by lma_gguf_close; every pointer it
 * hands out (keys, strings, array data, tensor data) points into the mapping and lives
 * until lma_gguf_close. Strings are NOT NUL-terminated: use the (ptr, len) pairs. */
#ifndef LMA_FORMAT_GGUF_H
#define LMA_FORMAT_GGUF_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

/* metadata value types (gguf.md) */
typedef enum {
    LMA_GGUF_U8 = 0, LMA_GGUF_I8 = 1, LMA_GGUF_U16 = 2, LMA_GGUF_I16 = 3, LMA_GGUF_U32 = 4,
    LMA_GGUF_I32 = 5, LMA_GGUF_F32 = 6, LMA_GGUF_BOOL = 7, LMA_GGUF_STRING = 8, LMA_GGUF_ARRAY = 9,
    LMA_GGUF_U64 = 10, LMA_GGUF_I64 = 11, LMA_GGUF_F64 = 12, LMA_GGUF_NTYPES
} lma_gguf_type;

/* bytes of one value of a fixed-size type; 0 for STRING, ARRAY and unknown types */
size_t lma_gguf_type_size(lma_gguf_type t);

typedef struct {
    const char *s; /* not NUL-terminated; points into the mapping */
    uint64_t len;
} lma_gguf_str;

typedef struct {
    lma_gguf_str key;
    lma_gguf_type type;
    /* scalars (type != STRING/ARRAY): the value widened */
    union { uint64_t u; int64_t i; double f; } v;
    lma_gguf_str str;        /* type STRING */
    lma_gguf_type arr_type;  /* type ARRAY: element type (never ARRAY: nested arrays are refused) */
    uint64_t arr_n;          /* type ARRAY: element count */
    const unsigned char *arr_data; /* type ARRAY of fixed-size elements: the raw little-endian values */
    const lma_gguf_str *arr_str;   /* type ARRAY of STRING: (arr_n) strings, owned by the handle */
} lma_gguf_kv;

#define LMA_GGUF_MAX_DIMS 4
typedef struct {
    lma_gguf_str name;
    int n_dims;
    int64_t ne[LMA_GGUF_MAX_DIMS]; /* ggml order: ne[0] is the contiguous (fastest) dimension */
    uint32_t type;                 /* ggml type (quant/ggml_quant.h) */
    uint64_t offset;               /* from the start of the data section */
    uint64_t nelem, nbytes;
    const void *data;              /* into the mapping */
} lma_gguf_tensor;

typedef struct lma_gguf lma_gguf;

lma_status lma_gguf_open(const char *path, lma_gguf **out);
/* Parses a buffer (not copied; must outlive the handle); ctx names it in messages. */
lma_status lma_gguf_open_buffer(const void *data, size_t len, const char *ctx, lma_gguf **out);
void lma_gguf_close(lma_gguf *g);
/* 1 when path names a GGUF file (its first four bytes are "GGUF"). */
int lma_gguf_is_file(const char *path);

uint32_t lma_gguf_version(const lma_gguf *g);
const char *lma_gguf_path(const lma_gguf *g);
int64_t lma_gguf_n_kv(const lma_gguf *g);
const lma_gguf_kv *lma_gguf_kv_at(const lma_gguf *g, int64_t i);
const lma_gguf_kv *lma_gguf_find(const lma_gguf *g, const char *key); /* NULL if absent */
int64_t lma_gguf_n_tensors(const lma_gguf *g);
const lma_gguf_tensor *lma_gguf_tensor_at(const lma_gguf *g, int64_t i);
const lma_gguf_tensor *lma_gguf_find_tensor(const lma_gguf *g, const char *name);

/* Typed lookups: LMA_ERR_FORMAT when the key is present with another type (the
 * message names it); absent keys leave *out unchanged and return LMA_OK with
 * *found = 0 (found may be NULL). Integers of any width convert when the value fits. */
lma_status lma_gguf_get_u64(const lma_gguf *g, const char *key, uint64_t *out, int *found);
lma_status lma_gguf_get_i64(const lma_gguf *g, const char *key, int64_t *out, int *found);
lma_status lma_gguf_get_f64(const lma_gguf *g, const char *key, double *out, int *found); /* f32/f64/ints */
lma_status lma_gguf_get_bool(const lma_gguf *g, const char *key, int *out, int *found);
/* *out malloc'd, NUL-terminated copy (a string with an embedded NUL is refused). */
lma_status lma_gguf_get_str(const lma_gguf *g, const char *key, char **out, int *found);
/* Element i of a numeric array as double / int64 (caller checks i < arr_n). */
double lma_gguf_arr_f64(const lma_gguf_kv *kv, uint64_t i);
int64_t lma_gguf_arr_i64(const lma_gguf_kv *kv, uint64_t i);

/* ---- writing ----
 * A writer collects metadata and tensor descriptions, then writes the file atomically
 * (temporary sibling, fsync, rename): GGUF v3, alignment 32 (general.alignment is not
 * written unless set). Tensor data is produced at write time, one tensor at a time, by
 * the caller's fill callback into a buffer of the tensor's byte size, so a model is never
 * held twice. Keys and tensor names are copied; duplicates are refused. */
typedef struct lma_gguf_writer lma_gguf_writer;
typedef lma_status (*lma_gguf_fill_fn)(void *ctx, int tensor, void *dst, size_t nbytes);

lma_status lma_gguf_writer_new(lma_gguf_writer **out);
void lma_gguf_writer_free(lma_gguf_writer *w);
lma_status lma_gguf_set_str(lma_gguf_writer *w, const char *key, const char *val);
lma_status lma_gguf_set_u32(lma_gguf_writer *w, const char *key, uint32_t val);
lma_status lma_gguf_set_i32(lma_gguf_writer *w, const char *key, int32_t val);
lma_status lma_gguf_set_f32(lma_gguf_writer *w, const char *key, float val);
lma_status lma_gguf_set_bool(lma_gguf_writer *w, const char *key, int val);
/* arrays: strings (n of them), or fixed-size elements of type t (raw little-endian values) */
lma_status lma_gguf_set_str_array(lma_gguf_writer *w, const char *key, const char *const *vals, const size_t *lens,
                                  uint64_t n);
lma_status lma_gguf_set_array(lma_gguf_writer *w, const char *key, lma_gguf_type t, const void *vals, uint64_t n);
/* Copies every key of g except those for which skip(key) returns 1 (skip may be NULL). */
lma_status lma_gguf_copy_kv(lma_gguf_writer *w, const lma_gguf *g, int (*skip)(const char *key, size_t len));
/* A tensor (ne in ggml order, ne[0] contiguous) of ggml type `type`; its bytes come from
 * fill(ctx, index, dst, nbytes) at write time; index is the order of adding (0, 1, ...). */
lma_status lma_gguf_add_tensor(lma_gguf_writer *w, const char *name, int n_dims, const int64_t *ne, uint32_t type);
lma_status lma_gguf_write(lma_gguf_writer *w, const char *path, lma_gguf_fill_fn fill, void *ctx);
#endif
