/* The start of the GPU test programs (label cuda): both tables of the CUDA plugin, or the
 * message of a skipped test (the caller exits 77, which ctest reports as skipped). */
#ifndef LMA_TESTS_CUDA_TEST_H
#define LMA_TESTS_CUDA_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include "backend/backend.h"

static int cuda_test_tables(const lma_backend **fp32, const lma_backend **bf16) {
    *fp32 = lma_backend_cuda_fp32();
    *bf16 = lma_backend_cuda();
    if (*fp32 && *bf16) return 1;
    printf("no CUDA device (or built without nvcc): cuda tests skipped\n");
    return 0;
}
#endif
