#include "core/rng.h"
#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lma_rng_seed(lma_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lma_rng_u64(lma_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

lma_rng lma_rng_split(lma_rng *r, uint64_t stream) {
    lma_rng c;
    uint64_t x = lma_rng_u64(r) ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++) c.s[i] = splitmix64(&x);
    return c;
}

uint64_t lma_rng_below(lma_rng *r, uint64_t n) {
    uint64_t lim = (uint64_t)-1 - ((uint64_t)-1 % n), x;
    do x = lma_rng_u64(r); while (x >= lim);
    return x % n;
}

double lma_rng_uniform(lma_rng *r) { return (double)(lma_rng_u64(r) >> 11) * 0x1.0p-53; }

double lma_rng_normal(lma_rng *r) {
    double u1 = lma_rng_uniform(r), u2 = lma_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
