/* SPDX-License-Identifier: MIT */
/*
 * nck_yaml_set_parallel: rewrites a NeMo `model_config.yaml` (NeMo 1, as
 * OmegaConf saves it through PyYAML; shared/spec/nemo-layouts.md §1.5, §2.2) for
 * another tensor/pipeline-parallel size, by streaming libyaml 0.2 parser
 * events into libyaml's emitter (as libyaml's tests/example-reformatter.c
 * does): every node keeps its style, tag, anchor and alias, so only the two
 * values change.
 *
 * What a round trip cannot keep: comments (libyaml's parser drops them),
 * indentation widths (the emitter indents by 2, sequences under a mapping
 * key not indented: PyYAML's own layout), line breaks (always "\n"), the
 * input encoding (always UTF-8), and the spelling of a few scalars: a
 * multi-line plain scalar is written on one line; characters outside the
 * BMP become `\U` escapes in double quotes (libyaml 0.2.5 prints no
 * others); and a plain scalar that cannot stay plain (that, or `a:b` inside
 * a flow collection) is quoted with the non-specific tag `!`, which PyYAML
 * resolves as it resolved the plain scalar. The values are the same.
 *
 * Thread-safety: pure function; no shared state.
 */
#ifndef NCK_FORMAT_YAMLEMIT_H
#define NCK_FORMAT_YAMLEMIT_H

#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"

/* Largest input, and largest output, in bytes: catalog/config.c reads
 * configs up to this size (CFG_MAX_BYTES), so any config it accepted can be
 * rewritten. */
#define NCK_YAMLEMIT_MAX_BYTES (64u << 20)

/* Most events kept from replaced values that define anchors (see below). */
#define NCK_YAMLEMIT_MAX_KEPT (1u << 16)

/*
 * Copies the YAML document `in` (`len` bytes) to a new malloc'ed buffer *out
 * (NUL-terminated; *out_len bytes before the NUL), with the values of the
 * keys tensor_model_parallel_size and pipeline_model_parallel_size set to
 * the plain integer scalars `tp` and `pp`. The caller frees *out.
 *
 * Which keys are rewritten:
 *   - those of the top-level mapping; a key that is absent there is appended
 *     to it, tensor_model_parallel_size first;
 *   - those of the mapping under the top-level key `model` (a whole training
 *     config saved with its `model:` section), when they are written there;
 *     nothing is appended to it. A `model` value that is an alias is left
 *     alone, as is every deeper or other mapping.
 * A key matches when it is a scalar with that exact text, plain or quoted,
 * untagged or tagged `!` or `!!str`; keys written as aliases, and keys
 * that only a merge (`<<`) brings in, do not match (so at the top level the
 * key is appended: the explicit, last key wins for PyYAML). Every value of a
 * matching key is replaced, whatever it was (a scalar, a collection, an
 * alias): the whole original value is dropped. When a dropped value defines
 * anchors that later aliases use, the first such alias is written as the
 * anchored node itself (anchor included), so the document means what it
 * meant; if an anchor was redefined in between so that this cannot be
 * done, the call fails with -ENOTSUP.
 *
 * Returns 0, or: -EBADMSG malformed YAML, an undefined alias, an empty
 * stream, a top level that is not a mapping, or a second document (diag:
 * `name`, the byte offset in `in`, and libyaml's problem with its line and
 * column); -E2BIG `len` or the output above NCK_YAMLEMIT_MAX_BYTES, or
 * dropped values keeping more than NCK_YAMLEMIT_MAX_KEPT events; -ENOTSUP
 * an anchor conflict as above, or a document libyaml's emitter refuses;
 * -ENOMEM; -EINVAL `tp` or `pp` below 1, or `out`/`out_len` NULL. On
 * failure *out is NULL and *out_len 0.
 */
int nck_yaml_set_parallel(const char *name, const char *in, size_t len, int64_t tp, int64_t pp,
			  char **out, size_t *out_len, nck_diag *diag);

#endif
