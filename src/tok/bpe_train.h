/* Byte-level BPE training, reproducing HF tokenizers' BpeTrainer (models/bpe/trainer.rs)
 * with the Llama 3 pre-tokenizer: Split(Llama-3 regex, Isolated) + ByteLevel(no regex).
 *
 * Input files are read line by line, each line keeping its "\n" (HF train(files) does
 * the same), so memory is bounded by the word-count table, not by corpus size.
 * Invalid UTF-8 in a file is replaced by U+FFFD (HF would refuse the file).
 * Ids: the special tokens in the order given, then the 256 byte characters sorted by
 * code point, then one id per merge. Each step merges the pair with the highest count;
 * ties go to the smallest (id_a, id_b). Stops at vocab_size, when no pair is left, or
 * below min_frequency. Writes DIR/tokenizer.json (merges as pairs; loads in HF
 * tokenizers) and DIR/tokenizer_config.json, atomically. */
#ifndef LMA_TOK_BPE_TRAIN_H
#define LMA_TOK_BPE_TRAIN_H
#include <stddef.h>
#include "lmadapt.h"

typedef struct {
    int vocab_size;         /* final vocab incl. specials (default 30000) */
    const char **special;   /* special tokens, in id order */
    size_t n_special;
    long long min_frequency; /* default 0 */
    int quiet;              /* no progress bar */
} lma_bpe_train_params;

void lma_bpe_train_default_params(lma_bpe_train_params *p);
lma_status lma_bpe_train_files(const char *const *files, size_t n_files, const lma_bpe_train_params *p,
                               const char *out_dir);
#endif
