/* Seedable, splittable RNG: xoshiro256** seeded through splitmix64.
 * lma_rng_split derives an independent child stream (for data order, dropout,
 * init, ...) so that adding a consumer never shifts another's numbers. The
 * state is 4 words: checkpoints save and restore it exactly. */
#ifndef LMA_CORE_RNG_H
#define LMA_CORE_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } lma_rng;

void lma_rng_seed(lma_rng *r, uint64_t seed);
lma_rng lma_rng_split(lma_rng *r, uint64_t stream);
uint64_t lma_rng_u64(lma_rng *r);
uint64_t lma_rng_below(lma_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n > 0 */
double lma_rng_uniform(lma_rng *r);             /* [0, 1), 53 bits */
double lma_rng_normal(lma_rng *r);              /* N(0, 1), Box-Muller */
#endif
