/* The measured peak memory of a backend (see lma_backend_peak_bytes in backend.h). */
#include <string.h>
#include <sys/resource.h>
#include "backend/backend.h"
#include "backend/cuda/cuda_host.h"

double lma_backend_peak_bytes(const lma_backend *be) {
    if (be && !strncmp(be->name, "cuda", 4)) {
        size_t cur = 0, peak = 0;
        lma_cuda_memory(&cur, &peak, 0);
        return (double)peak;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0; /* KiB on Linux */
}
