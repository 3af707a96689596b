/* Thread settings: one call sets OpenMP and OpenBLAS thread counts together.
 * n <= 0 means: LMA_THREADS from the environment, else the number of cores. */
#ifndef LMA_CORE_THREADS_H
#define LMA_CORE_THREADS_H
int lma_threads_set(int n);  /* returns the count in force */
int lma_threads_get(void);
#endif
