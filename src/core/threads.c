#include "core/threads.h"
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

void openblas_set_num_threads(int n);

static int current;

int lma_threads_set(int n) {
    if (n <= 0) {
        const char *e = getenv("LMA_THREADS");
        n = e ? atoi(e) : 0;
        if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (n <= 0) n = 1;
    }
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    current = n;
    return n;
}

int lma_threads_get(void) { return current ? current : omp_get_max_threads(); }
