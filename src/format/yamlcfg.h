/* SPDX-License-Identifier: MIT */
/*
 * nck_yaml: a YAML document (NeMo 1 `model_config.yaml`, NeMo 2
 * `context/model.yaml`, `.qnemo` `tokenizer_config.yaml`) as a small
 * immutable tree, built from libyaml's event parser (YAML 1.1, as PyYAML and
 * OmegaConf read these files; shared/spec/nemo-layouts.md §1.5, §2.2, §4.1).
 *
 * Node kinds: SCALAR (text, tag, whether it was plain), NULL (a plain
 * `null`/`Null`/`NULL`/`~`/empty scalar, or one tagged !!null), MAP (keys in
 * document order) and SEQ. Tags are kept as data, never interpreted: NeMo 2's
 * `_target_:` keys and `!!python/name:` tags are ordinary content here.
 * Anchors and aliases are resolved: an alias is the very node its anchor
 * names (a DAG, not a copy). YAML 1.1 merge keys (`<<: *base`, or a list of
 * maps) are applied as PyYAML does: explicit keys win, then earlier merged
 * maps win over later ones. Duplicate keys are refused (PyYAML keeps the
 * last; OmegaConf refuses them).
 *
 * Limits against hostile input: nesting depth NCK_YAML_MAX_DEPTH, and
 * NCK_YAML_MAX_NODES nodes counted with every alias expanded, so "billion
 * laughs" documents are refused and a full walk of any accepted tree is
 * bounded. One document per stream; an empty stream gives a NULL root.
 *
 * Ownership: all nodes and strings live in the caller's arena.
 * Thread-safety: parsing uses no shared state; a built tree is read-only.
 */
#ifndef NCK_FORMAT_YAMLCFG_H
#define NCK_FORMAT_YAMLCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"
#include "util/arena.h"

/* Deepest nesting of maps and sequences accepted. */
#define NCK_YAML_MAX_DEPTH 64
/* Most nodes (keys included) in the document, counting aliased subtrees
 * once per alias. */
#define NCK_YAML_MAX_NODES 1000000u

typedef enum nck_yaml_kind {
	NCK_YAML_NULL,
	NCK_YAML_SCALAR,
	NCK_YAML_MAP,
	NCK_YAML_SEQ,
} nck_yaml_kind;

typedef struct nck_yaml_node nck_yaml_node;

struct nck_yaml_node {
	nck_yaml_kind kind;
	const char *scalar;	/* SCALAR and NULL: the text as written (NUL-free) */
	const char *tag;	/* resolved tag ("tag:yaml.org,2002:python/name:..."), or NULL */
	bool quoted;		/* SCALAR: not plain (quoted, literal or folded), so never an
				 * int, bool or null */
	size_t n;		/* MAP: entries; SEQ: items */
	const char **keys;	/* MAP: n keys, document order */
	nck_yaml_node **values; /* MAP: n values; SEQ: n items */
	uint64_t offset;	/* byte offset in the input where the node starts */
};

/*
 * Parses `len` bytes of YAML into a tree whose nodes live in `arena`;
 * *out is the root (never NULL on success). `name` is the file name used in
 * messages. On failure the arena may hold partial nodes, freed with it.
 * Errors: -EBADMSG malformed YAML (diag has libyaml's problem and its byte
 * offset, line and column), an undefined alias, a duplicate key, a bad merge,
 * more than one document, too deep or too many nodes (alias bombs);
 * -ENOTSUP a non-scalar mapping key or a NUL character in a scalar; -ENOMEM.
 */
int nck_yaml_parse(nck_yaml_node **out, nck_arena *arena, const void *data, size_t len,
		   const char *name, nck_diag *diag);

/*
 * Looks up a dotted path ("tokenizer.model", "config.num_layers"); a
 * component that is a decimal number indexes a sequence. "" or NULL is the
 * root. Keys that contain dots cannot be reached. Borrowed pointer, or NULL
 * when absent.
 */
const nck_yaml_node *nck_yaml_get(const nck_yaml_node *root, const char *dotted_path);

/*
 * Reads a plain decimal integer ([-+]?[0-9]+, no leading zeros, no
 * underscores, no 0x/0o forms: those mean other values in YAML 1.1).
 * Returns 0, -ENOENT when absent or null, -EBADMSG when not such an integer
 * (including quoted text), -EOVERFLOW when out of int64 range.
 */
int nck_yaml_get_int(const nck_yaml_node *root, const char *path, int64_t *out);

/*
 * Reads a YAML 1.1 boolean as PyYAML resolves it: true/True/TRUE, false/
 * False/FALSE, yes/Yes/YES, no/No/NO, on/On/ON, off/Off/OFF (plain only).
 * Returns 0, -ENOENT when absent or null, -EBADMSG otherwise.
 */
int nck_yaml_get_bool(const nck_yaml_node *root, const char *path, bool *out);

/* The text of a scalar; NULL when absent, null, or not a scalar. Borrowed. */
const char *nck_yaml_get_str(const nck_yaml_node *root, const char *path);

#endif
