/* Hugging Face tokenizers (tokenizer.json + tokenizer_config.json), bit-exact.
 *
 * Supported: model BPE in its byte-level form (GPT-2, Llama 3, Qwen2, SmolLM) and its
 * SentencePiece-converted form (Llama 2, TinyLlama, Mistral): merges as "a b" strings
 * or ["a","b"] pairs, ignore_merges, byte_fallback, unk_token, fuse_unk; model WordPiece
 * (BERT: continuing_subword_prefix, max_input_chars_per_word, unk_token).
 * Normalizers NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, BertNormalizer, Sequence.
 * Pre-tokenizers ByteLevel (last step), Split, Metaspace, Digits, BertPreTokenizer, Sequence.
 * Post-processors TemplateProcessing, ByteLevel (a no-op for ids), Sequence.
 * Decoders ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, WordPiece, Sequence.
 * Added tokens (lstrip, rstrip, single_word, normalized) are matched before
 * normalization (normalized:false) or on the normalized text (normalized:true), the
 * longest leftmost match winning, as HF does. Anything else fails at load with a
 * message naming the component. `truncation` and `padding` are ignored.
 *
 * Invalid UTF-8 input is first replaced the way Python's bytes.decode('utf-8',
 * 'replace') and Rust's from_utf8_lossy do (each maximal invalid subpart -> U+FFFD);
 * byte offsets returned by lma_tok_encode_offsets index that cleaned text, which is
 * the input itself when the input is valid UTF-8.
 *
 * Ownership: lma_tok_load returns a handle freed by lma_tok_free. Encoded ids and
 * decoded text are malloc'd and owned by the caller. A loaded tokenizer is safe to
 * use from several threads at once (its word cache is locked per shard).
 * On failure every function returns a status and sets lma_last_error(); outputs are
 * left NULL/0. */
#ifndef LMA_TOK_TOKENIZER_H
#define LMA_TOK_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "lmadapt.h"

typedef struct lma_tokenizer lma_tokenizer;

/* where: an HF folder (tokenizer.json + tokenizer_config.json, optional; chat_template.jinja
 * also read), a GGUF file (its tokenizer metadata, see lma_tok_gguf_json), or a short model
 * name (core/model_path.h) */
lma_status lma_tok_load(const char *where, lma_tokenizer **out);
/* tokenizer.json text only (no config); ctx names the source in messages. */
lma_status lma_tok_load_json(const char *json, size_t len, const char *ctx, lma_tokenizer **out);
void lma_tok_free(lma_tokenizer *t);

/* GGUF (tok_gguf.c): tokenizer.json and tokenizer_config.json texts (malloc'd,
 * NUL-terminated) equivalent to the GGUF's tokenizer.ggml.* metadata, as transformers'
 * GGUF loader builds them (AutoTokenizer.from_pretrained(dir, gguf_file=F), transformers
 * 5.25): byte-level BPE for tokenizer.ggml.model "gpt2" (the split regex chosen by
 * tokenizer.ggml.pre), SentencePiece BPE for "llama" (merges derived from the scores
 * when the file has none). tokenizer_config_json may be NULL. Failures name the file
 * and the key. The differences from llama.cpp are listed at the top of tok_gguf.c. */
struct lma_gguf;
lma_status lma_tok_gguf_json(const struct lma_gguf *g, char **tokenizer_json, char **tokenizer_config_json);
/* Writes tokenizer_config.json (chat_template inside) and then tokenizer.json into dir
 * (created if needed), each atomically: copied from an HF model folder src (with
 * special_tokens_map.json and chat_template.jinja when present) or synthesized from a
 * GGUF file src. tokenizer.json is written last: its presence marks a complete copy. */
lma_status lma_tok_save_files(const char *src, const char *dir);
/* The tokenizer of src (a GGUF file: its tokenizer.* keys copied; an HF folder or name:
 * converted as llama.cpp's converter does, tok_gguf_write.c) as GGUF metadata in w. */
struct lma_gguf_writer;
lma_status lma_tok_gguf_meta(const char *src, struct lma_gguf_writer *w);

/* ids malloc'd, caller frees; add_special: apply the post-processor (BOS/EOS) */
lma_status lma_tok_encode(const lma_tokenizer *t, const char *text, size_t len, int add_special,
                          int32_t **ids, size_t *n_ids);
/* Same, plus per-token byte offsets [starts[i], ends[i]) into the (cleaned) text;
 * post-processor tokens get an empty range at 0 (BOS) or len (EOS). All malloc'd. */
lma_status lma_tok_encode_offsets(const lma_tokenizer *t, const char *text, size_t len, int add_special,
                                  int32_t **ids, size_t **starts, size_t **ends, size_t *n_ids);
/* text malloc'd and NUL-terminated (len excludes the NUL); ids outside the vocab are an error */
lma_status lma_tok_decode(const lma_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                          char **text, size_t *len);
/* The special tokens the post-processor puts before (pre) and after (post) a single
 * sequence (BERT: [CLS] / [SEP]); pointers into t. For truncation: encode with
 * add_special 0, keep the first max - n_pre - n_post ids, then add these. */
void lma_tok_template(const lma_tokenizer *t, const int32_t **pre, size_t *n_pre, const int32_t **post,
                      size_t *n_post);
/* max id + 1 over the model vocab and the added tokens (= embedding rows needed) */
int lma_tok_vocab_size(const lma_tokenizer *t);

/* Lookups. token_to_id returns -1 when absent (added tokens first, then model). */
const char *lma_tok_id_to_token(const lma_tokenizer *t, int32_t id); /* public API (lmadapt.h) */
int32_t lma_tok_token_to_id(const lma_tokenizer *t, const char *token);
int lma_tok_is_special(const lma_tokenizer *t, int32_t id);
/* The bytes token id adds to the text when it follows other text (byte-level: its raw
 * bytes; SentencePiece: "▁" as a space, <0xXX> as the byte). Returns the length written
 * to buf (at most cap), 0 for special, added or unknown ids (they add no piece), or -1
 * when the piece does not fit in cap. For constrained decoding (infer/json_constraint.h). */
int lma_tok_piece_bytes(const lma_tokenizer *t, int32_t id, unsigned char *buf, int cap);
/* From tokenizer_config.json: -1 / NULL when not set. */
int32_t lma_tok_bos_id(const lma_tokenizer *t);
int32_t lma_tok_eos_id(const lma_tokenizer *t);
const char *lma_tok_bos_token(const lma_tokenizer *t);
const char *lma_tok_eos_token(const lma_tokenizer *t);
const char *lma_tok_chat_template(const lma_tokenizer *t);

/* Streaming decoder: push ids one at a time, get only complete, final UTF-8 text.
 * Text is held back while the decoding of the pending ids ends in U+FFFD (an
 * incomplete byte sequence) or is not yet stable; lma_tok_stream_flush emits the rest. */
typedef struct lma_tok_stream lma_tok_stream;
lma_status lma_tok_stream_new(const lma_tokenizer *t, int skip_special, lma_tok_stream **out);
/* *text is malloc'd (possibly empty, never NULL on success); caller frees */
lma_status lma_tok_stream_push(lma_tok_stream *s, int32_t id, char **text, size_t *len);
lma_status lma_tok_stream_flush(lma_tok_stream *s, char **text, size_t *len);
void lma_tok_stream_free(lma_tok_stream *s);

/* Replace invalid UTF-8 like bytes.decode('utf-8','replace'). *out malloc'd, NUL-terminated. */
lma_status lma_tok_utf8_sanitize(const char *in, size_t len, char **out, size_t *out_len);
#endif
