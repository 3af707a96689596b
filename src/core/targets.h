/* Training targets: the id of a target position that carries no loss (PyTorch's
 * ignore_index). The data loader writes it, the model and the backends' loss skip it. */
#ifndef LMA_CORE_TARGETS_H
#define LMA_CORE_TARGETS_H
#define LMA_IGNORE_INDEX (-100)
#endif
