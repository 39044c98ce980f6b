/* SPDX-License-Identifier: MIT */
/*
 * Which GLOBALs the restricted pickle machine accepts (issue 12): a file
 * naming any other (os.system, builtins.eval) is refused, as
 * `torch.load(weights_only=True)` refuses it. The machine never executes a
 * global either way.
 *
 * Thread-safety: pure function.
 */
#ifndef NCK_FORMAT_PICKLE_ALLOW_H
#define NCK_FORMAT_PICKLE_ALLOW_H

#include <stdbool.h>

/* True when GLOBAL module.name (Python 3 module names) is in the set. */
bool nck_pkl_global_allowed(const char *module, const char *name);

#endif
