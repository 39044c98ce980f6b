/* SPDX-License-Identifier: MIT */
/*
 * YAML config reader (see yamlcfg.h): libyaml's event parser
 * (yaml_parser_parse, libyaml 0.2) drives a stack of frames, one per open
 * map or sequence; a frame collects its children in malloc'd arrays and,
 * when it closes, copies them into the caller's arena, applies merge keys,
 * and hands the finished node to its parent. The yaml_parser_t and its
 * events never leave nck_yaml_parse().
 *
 * Node weights bound alias bombs: a scalar weighs 1, a collection 1 plus
 * its keys and children, and an alias the full weight of its anchor's node,
 * so the root's weight is the size of the fully expanded tree; it, and the
 * number of nodes really allocated, must stay within NCK_YAML_MAX_NODES.
 *
 * libyaml's marks count characters, not bytes (`SKIP` in scanner.c), so
 * offsets are converted by walking the UTF-8 input with a forward cursor;
 * a UTF-8 BOM is not counted by libyaml, and UTF-16 input (BOM) is mapped
 * at two bytes per character.
 *
 * Resolution rules are YAML 1.1 as PyYAML's resolver applies them
 * (`yaml/resolver.py`): null, bool and merge (`<<`).
 * Thread-safety: no shared state.
 */
#include "format/yamlcfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "util/grow.h"
#include "util/strmap.h"

#define YAMLCFG_TAG_NULL "tag:yaml.org,2002:null"
#define YAMLCFG_TAG_MERGE "tag:yaml.org,2002:merge"
#define YAMLCFG_TAG_INT "tag:yaml.org,2002:int"
#define YAMLCFG_TAG_BOOL "tag:yaml.org,2002:bool"

/* One collected child: a MAP entry, or a SEQ item (key NULL). */
typedef struct yamlcfg_entry {
	nck_yaml_node *key, *val;
} yamlcfg_entry;

/* A map or sequence under construction. */
typedef struct yamlcfg_frame {
	nck_yaml_node *node;	/* MAP or SEQ; arrays filled in at the end */
	char *anchor;		/* malloc'd; registered when the node is complete */
	yamlcfg_entry *ents;	/* children so far (malloc'd) */
	size_t n, cap;
	nck_yaml_node **merges; /* MAP: values of "<<" keys, in order (malloc'd) */
	size_t n_merges, cap_merges;
	nck_yaml_node *key;	/* MAP: key waiting for its value, or NULL */
	bool key_is_merge;
	uint64_t weight;	/* expanded nodes so far, the keys included */
} yamlcfg_frame;

/* A defined anchor: its node and that node's expanded weight. */
typedef struct yamlcfg_anchor {
	nck_yaml_node *node;
	uint64_t weight;
} yamlcfg_anchor;

typedef struct yamlcfg_ctx {
	nck_arena *arena; /* caller's: nodes and strings */
	const unsigned char *data;
	size_t len;
	const char *name;
	nck_diag *diag;
	yamlcfg_frame frames[NCK_YAML_MAX_DEPTH];
	size_t depth;
	nck_arena tmp;		 /* anchor names */
	nck_strmap anchor_map;	 /* anchor name -> index in anchors */
	yamlcfg_anchor *anchors; /* malloc'd */
	size_t n_anchors, cap_anchors;
	nck_yaml_node *root;
	uint64_t n_nodes; /* nodes allocated */
	int docs;
	bool utf16;
	size_t cur_index; /* offset cursor: character index ... */
	size_t cur_byte;  /* ... and its byte offset */
	size_t bom;	  /* bytes of a UTF-8 BOM that libyaml does not count */
} yamlcfg_ctx;

/* ---- helpers -------------------------------------------------------------- */

/* Byte offset of a libyaml mark (character based) in the input. */
static uint64_t yamlcfg_offset(yamlcfg_ctx *c, const yaml_mark_t *m)
{
	if (c->utf16)
		return m->index < (c->len - 2) / 2 ? 2 + 2 * (uint64_t)m->index : c->len;
	if (m->index < c->cur_index) {
		c->cur_index = 0;
		c->cur_byte = c->bom;
	}
	while (c->cur_index < m->index && c->cur_byte < c->len) {
		c->cur_byte++;
		while (c->cur_byte < c->len && (c->data[c->cur_byte] & 0xC0) == 0x80)
			c->cur_byte++;
		c->cur_index++;
	}
	return c->cur_byte;
}

/* Records an error about the input at mark `m`, with line and column. */
static int yamlcfg_err(yamlcfg_ctx *c, int code, const yaml_mark_t *m, const char *what,
		       const char *arg)
{
	return nck_diag_set(c->diag, code, c->name, (int64_t)yamlcfg_offset(c, m),
			    "line %zu column %zu: %s%s%s%s", m->line + 1, m->column + 1, what,
			    arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
}

/* Allocates a node of `kind` with a copy of `tag`; counts it against the limit. */
static int yamlcfg_node(yamlcfg_ctx *c, nck_yaml_node **out, nck_yaml_kind kind,
			const yaml_char_t *tag, const yaml_mark_t *m)
{
	nck_yaml_node *n;

	if (++c->n_nodes > NCK_YAML_MAX_NODES)
		return yamlcfg_err(c, -EBADMSG, m, "too many nodes", NULL);
	n = nck_arena_alloc(c->arena, sizeof(*n));
	if (!n)
		return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	n->kind = kind;
	n->offset = yamlcfg_offset(c, m);
	if (tag) {
		n->tag = nck_arena_strndup(c->arena, (const char *)tag, strlen((const char *)tag));
		if (!n->tag)
			return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	}
	*out = n;
	return 0;
}

/* Registers (or redefines) an anchor for a finished node. */
static int yamlcfg_anchor_put(yamlcfg_ctx *c, const yaml_char_t *anchor, nck_yaml_node *node,
			      uint64_t weight)
{
	const char *key;

	if (!anchor)
		return 0;
	key = nck_arena_strndup(&c->tmp, (const char *)anchor, strlen((const char *)anchor));
	if (!key || nck_grow((void **)&c->anchors, &c->cap_anchors, c->n_anchors,
			     sizeof(*c->anchors), 8) < 0 ||
	    nck_strmap_put(&c->anchor_map, key, c->n_anchors) < 0)
		return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	c->anchors[c->n_anchors].node = node;
	c->anchors[c->n_anchors++].weight = weight;
	return 0;
}

/* True when a MAP key node is the YAML 1.1 merge key "<<". */
static bool yamlcfg_is_merge_key(const nck_yaml_node *k)
{
	return k->kind == NCK_YAML_SCALAR && !k->quoted && strcmp(k->scalar, "<<") == 0 &&
	       (!k->tag || strcmp(k->tag, YAMLCFG_TAG_MERGE) == 0);
}

/* ---- building ------------------------------------------------------------- */

/* Appends a finished node (of expanded weight w) to the open collection, or
 * makes it the root. */
static int yamlcfg_add(yamlcfg_ctx *c, nck_yaml_node *node, uint64_t w, const yaml_mark_t *m)
{
	yamlcfg_frame *f;

	if (c->depth == 0) {
		if (w > NCK_YAML_MAX_NODES)
			return yamlcfg_err(c, -EBADMSG, m, "aliases expand to too many nodes",
					   NULL);
		c->root = node;
		return 0;
	}
	f = &c->frames[c->depth - 1];
	if (__builtin_add_overflow(f->weight, w, &f->weight) || f->weight > NCK_YAML_MAX_NODES)
		return yamlcfg_err(c, -EBADMSG, m, "aliases expand to too many nodes", NULL);
	if (f->node->kind == NCK_YAML_MAP && !f->key) {
		if (node->kind != NCK_YAML_SCALAR && node->kind != NCK_YAML_NULL)
			return yamlcfg_err(c, -ENOTSUP, m, "a map or list as a mapping key", NULL);
		f->key = node;
		f->key_is_merge = yamlcfg_is_merge_key(node);
		return 0;
	}
	if (f->node->kind == NCK_YAML_MAP && f->key_is_merge) {
		f->key = NULL;
		if (nck_grow((void **)&f->merges, &f->cap_merges, f->n_merges, sizeof(*f->merges),
			     8) < 0)
			return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
		f->merges[f->n_merges++] = node;
		return 0;
	}
	if (nck_grow((void **)&f->ents, &f->cap, f->n, sizeof(*f->ents), 8) < 0)
		return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	f->ents[f->n].key = f->key;
	f->ents[f->n++].val = node;
	f->key = NULL;
	return 0;
}

/* Handles a scalar event: null resolution as PyYAML's implicit resolver. */
static int yamlcfg_on_scalar(yamlcfg_ctx *c, const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	nck_yaml_node *n;
	int rc;

	if (memchr(v, '\0', len))
		return yamlcfg_err(c, -ENOTSUP, &ev->start_mark, "NUL character in a scalar", NULL);
	if ((rc = yamlcfg_node(c, &n, NCK_YAML_SCALAR, ev->data.scalar.tag, &ev->start_mark)) < 0)
		return rc;
	n->scalar = nck_arena_strndup(c->arena, v, len);
	if (!n->scalar)
		return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	if ((!n->tag && !n->quoted &&
	     (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	      strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0)) ||
	    (n->tag && strcmp(n->tag, YAMLCFG_TAG_NULL) == 0))
		n->kind = NCK_YAML_NULL;
	if ((rc = yamlcfg_anchor_put(c, ev->data.scalar.anchor, n, 1)) < 0)
		return rc;
	return yamlcfg_add(c, n, 1, &ev->start_mark);
}

/* Handles an alias: the anchored node itself, with its full weight. */
static int yamlcfg_on_alias(yamlcfg_ctx *c, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	size_t i;

	/* A node's anchor is registered when the node is complete, so an
	 * alias inside its own anchor's node (a cycle) is undefined too. */
	if (!nck_strmap_find(&c->anchor_map, name, &i))
		return yamlcfg_err(c, -EBADMSG, &ev->start_mark, "undefined alias", name);
	return yamlcfg_add(c, c->anchors[i].node, c->anchors[i].weight, &ev->start_mark);
}

/* Opens a map or sequence. */
static int yamlcfg_on_start(yamlcfg_ctx *c, const yaml_event_t *ev, nck_yaml_kind kind,
			    const yaml_char_t *anchor, const yaml_char_t *tag)
{
	yamlcfg_frame *f;
	nck_yaml_node *n;
	int rc;

	if (c->depth == NCK_YAML_MAX_DEPTH)
		return yamlcfg_err(c, -EBADMSG, &ev->start_mark, "nesting is too deep", NULL);
	if ((rc = yamlcfg_node(c, &n, kind, tag, &ev->start_mark)) < 0)
		return rc;
	f = &c->frames[c->depth++];
	memset(f, 0, sizeof(*f));
	f->node = n;
	f->weight = 1;
	if (anchor && !(f->anchor = strdup((const char *)anchor)))
		return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	return 0;
}

/* Gives node n room for `cap` children in the arena. */
static int yamlcfg_arrays(yamlcfg_ctx *c, nck_yaml_node *n, size_t cap)
{
	if (cap == 0)
		return 0;
	if (cap > SIZE_MAX / sizeof(*n->values))
		return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	n->values = nck_arena_alloc(c->arena, cap * sizeof(*n->values));
	if (n->kind == NCK_YAML_MAP)
		n->keys = nck_arena_alloc(c->arena, cap * sizeof(*n->keys));
	if (!n->values || (n->kind == NCK_YAML_MAP && !n->keys))
		return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	return 0;
}

/* Adds key -> val to map n unless the key is there; 1 if added, 0 if present. */
static int yamlcfg_map_put(nck_strmap *seen, nck_yaml_node *n, const char *key, nck_yaml_node *val)
{
	if (nck_strmap_find(seen, key, NULL))
		return 0;
	if (nck_strmap_put(seen, key, n->n) < 0)
		return -ENOMEM;
	n->keys[n->n] = key;
	n->values[n->n++] = val;
	return 1;
}

/* Room a merge source needs; -EBADMSG unless a map or a list of maps. */
static int yamlcfg_merge_size(yamlcfg_ctx *c, const nck_yaml_node *m, size_t *cap)
{
	if (m->kind == NCK_YAML_MAP) {
		if (__builtin_add_overflow(*cap, m->n, cap))
			return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
		return 0;
	}
	for (size_t i = 0; m->kind == NCK_YAML_SEQ && i < m->n; i++) {
		if (m->values[i]->kind != NCK_YAML_MAP)
			break;
		if (__builtin_add_overflow(*cap, m->values[i]->n, cap))
			return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
		if (i + 1 == m->n)
			return 0;
	}
	return nck_diag_set(c->diag, -EBADMSG, c->name, (int64_t)m->offset,
			    "merge key '<<' needs a map or a list of maps");
}

/* Adds the entries of merge source m (a map or a list of maps) that are not there yet. */
static int yamlcfg_merge(nck_strmap *seen, nck_yaml_node *n, const nck_yaml_node *m)
{
	size_t n_src = m->kind == NCK_YAML_MAP ? 1 : m->n;

	for (size_t s = 0; s < n_src; s++) {
		const nck_yaml_node *src = m->kind == NCK_YAML_MAP ? m : m->values[s];

		for (size_t i = 0; i < src->n; i++)
			if (yamlcfg_map_put(seen, n, src->keys[i], src->values[i]) < 0)
				return -ENOMEM;
	}
	return 0;
}

/* Fills a finished map: its own entries (duplicate keys refused), then the
 * entries of merged maps whose keys are not present (PyYAML flatten_mapping). */
static int yamlcfg_finish_map(yamlcfg_ctx *c, yamlcfg_frame *f)
{
	nck_yaml_node *n = f->node;
	nck_strmap seen = { 0 };
	size_t cap = f->n;
	int rc = 0;

	for (size_t i = 0; i < f->n_merges; i++)
		if ((rc = yamlcfg_merge_size(c, f->merges[i], &cap)) < 0)
			goto out;
	if ((rc = yamlcfg_arrays(c, n, cap)) < 0)
		goto out;
	for (size_t i = 0; i < f->n; i++) {
		const nck_yaml_node *key = f->ents[i].key;

		rc = yamlcfg_map_put(&seen, n, key->scalar, f->ents[i].val);
		if (rc == 0) {
			rc = nck_diag_set(c->diag, -EBADMSG, c->name, (int64_t)key->offset,
					  "duplicate key '%s'", key->scalar);
			goto out;
		}
		if (rc < 0)
			goto nomem;
	}
	for (size_t i = 0; i < f->n_merges; i++)
		if (yamlcfg_merge(&seen, n, f->merges[i]) < 0)
			goto nomem;
	rc = 0;
	goto out;
nomem:
	rc = nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
out:
	nck_strmap_dispose(&seen);
	return rc;
}

/* Fills a finished sequence. */
static int yamlcfg_finish_seq(yamlcfg_ctx *c, yamlcfg_frame *f)
{
	int rc = yamlcfg_arrays(c, f->node, f->n);

	for (size_t i = 0; rc == 0 && i < f->n; i++)
		f->node->values[i] = f->ents[i].val;
	if (rc == 0)
		f->node->n = f->n;
	return rc;
}

/* Releases a frame's temporary arrays. */
static void yamlcfg_frame_free(yamlcfg_frame *f)
{
	free(f->anchor);
	free(f->ents);
	free(f->merges);
	memset(f, 0, sizeof(*f));
}

/* Closes the innermost map or sequence and hands it to its parent. */
static int yamlcfg_on_end(yamlcfg_ctx *c, const yaml_event_t *ev)
{
	yamlcfg_frame *f = &c->frames[c->depth - 1];
	nck_yaml_node *n = f->node;
	uint64_t w = f->weight;
	int rc;

	rc = n->kind == NCK_YAML_MAP ? yamlcfg_finish_map(c, f) : yamlcfg_finish_seq(c, f);
	if (rc == 0)
		rc = yamlcfg_anchor_put(c, (const yaml_char_t *)f->anchor, n, w);
	yamlcfg_frame_free(f);
	c->depth--;
	if (rc < 0)
		return rc;
	return yamlcfg_add(c, n, w, &ev->start_mark);
}

/* Dispatches one parser event. */
static int yamlcfg_event(yamlcfg_ctx *c, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++c->docs > 1)
			return yamlcfg_err(c, -EBADMSG, &ev->start_mark,
					   "more than one document in the stream", NULL);
		return 0;
	case YAML_SCALAR_EVENT:
		return yamlcfg_on_scalar(c, ev);
	case YAML_ALIAS_EVENT:
		return yamlcfg_on_alias(c, ev);
	case YAML_SEQUENCE_START_EVENT:
		return yamlcfg_on_start(c, ev, NCK_YAML_SEQ, ev->data.sequence_start.anchor,
					ev->data.sequence_start.tag);
	case YAML_MAPPING_START_EVENT:
		return yamlcfg_on_start(c, ev, NCK_YAML_MAP, ev->data.mapping_start.anchor,
					ev->data.mapping_start.tag);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return yamlcfg_on_end(c, ev);
	default:
		return 0;
	}
}

/* Turns a libyaml failure into a diag: reader errors carry a byte offset,
 * scanner and parser errors a (character) mark. */
static int yamlcfg_parser_error(yamlcfg_ctx *c, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "syntax error";
	uint64_t off;

	if (p->error == YAML_MEMORY_ERROR)
		return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
	if (p->error == YAML_READER_ERROR)
		return nck_diag_set(c->diag, -EBADMSG, c->name, (int64_t)p->problem_offset,
				    "%s", problem);
	off = yamlcfg_offset(c, &p->problem_mark);
	return nck_diag_set(c->diag, -EBADMSG, c->name, (int64_t)off, "line %zu column %zu: %s%s%s", p->problem_mark.line + 1,
			    p->problem_mark.column + 1, problem, p->context ? " " : "",
			    p->context ? p->context : "");
}

/* Frees everything the context holds (not the caller's arena). */
static void yamlcfg_ctx_free(yamlcfg_ctx *c)
{
	if (!c)
		return;
	while (c->depth > 0)
		yamlcfg_frame_free(&c->frames[--c->depth]);
	nck_strmap_dispose(&c->anchor_map);
	nck_arena_dispose(&c->tmp);
	free(c->anchors);
	free(c);
}

int nck_yaml_parse(nck_yaml_node **out, nck_arena *arena, const void *data, size_t len,
		   const char *name, nck_diag *diag)
{
	static const yaml_mark_t start = { 0, 0, 0 };
	yamlcfg_ctx *c = calloc(1, sizeof(*c));
	yaml_parser_t parser;
	yaml_event_t ev;
	bool parser_ok = false, done = false;
	int rc = 0;

	*out = NULL;
	if (!c || !(parser_ok = yaml_parser_initialize(&parser))) {
		rc = nck_diag_set(diag, -ENOMEM, name, -1, "out of memory");
		goto out;
	}
	c->arena = arena;
	c->data = data ? data : (const void *)"";
	c->len = data ? len : 0;
	c->name = name;
	c->diag = diag;
	c->utf16 = c->len >= 2 && ((c->data[0] == 0xFE && c->data[1] == 0xFF) ||
				   (c->data[0] == 0xFF && c->data[1] == 0xFE));
	if (c->len >= 3 && memcmp(c->data, "\xEF\xBB\xBF", 3) == 0)
		c->bom = c->cur_byte = 3;
	yaml_parser_set_input_string(&parser, c->data, c->len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = yamlcfg_parser_error(c, &parser);
			goto out;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = yamlcfg_event(c, &ev);
		yaml_event_delete(&ev);
		if (rc < 0)
			goto out;
	}
	/* An empty stream (or only comments) is a null document. */
	if (!c->root) {
		if ((rc = yamlcfg_node(c, &c->root, NCK_YAML_NULL, NULL, &start)) < 0)
			goto out;
		c->root->scalar = "";
	}
	*out = c->root;
out:
	if (parser_ok)
		yaml_parser_delete(&parser);
	yamlcfg_ctx_free(c);
	return rc;
}

/* ---- queries -------------------------------------------------------------- */

/* The child of n named by the path component comp[0..len). */
static const nck_yaml_node *yamlcfg_child(const nck_yaml_node *n, const char *comp, size_t len)
{
	size_t idx = 0, i;

	if (n->kind == NCK_YAML_MAP) {
		for (i = 0; i < n->n; i++)
			if (strncmp(n->keys[i], comp, len) == 0 && n->keys[i][len] == '\0')
				return n->values[i];
		return NULL;
	}
	if (n->kind != NCK_YAML_SEQ || len == 0)
		return NULL;
	for (i = 0; i < len; i++) {
		if (comp[i] < '0' || comp[i] > '9' ||
		    __builtin_mul_overflow(idx, 10, &idx) ||
		    __builtin_add_overflow(idx, (size_t)(comp[i] - '0'), &idx))
			return NULL;
	}
	return idx < n->n ? n->values[idx] : NULL;
}

const nck_yaml_node *nck_yaml_get(const nck_yaml_node *root, const char *dotted_path)
{
	const nck_yaml_node *n = root;
	const char *p = dotted_path, *dot;

	if (!p || !*p)
		return root;
	while (n) {
		dot = strchr(p, '.');
		n = yamlcfg_child(n, p, dot ? (size_t)(dot - p) : strlen(p));
		if (!dot)
			break;
		p = dot + 1;
	}
	return n;
}

/* The scalar at path if it may resolve to a `tag` value: plain and untagged,
 * or explicitly tagged so. -ENOENT absent or null, -EBADMSG otherwise. */
static int yamlcfg_typed(const nck_yaml_node *root, const char *path, const char *tag,
			 const char **text)
{
	const nck_yaml_node *n = nck_yaml_get(root, path);

	if (!n || n->kind == NCK_YAML_NULL)
		return -ENOENT;
	if (n->kind != NCK_YAML_SCALAR)
		return -EBADMSG;
	if (n->tag ? strcmp(n->tag, tag) != 0 : n->quoted)
		return -EBADMSG;
	*text = n->scalar;
	return 0;
}

int nck_yaml_get_int(const nck_yaml_node *root, const char *path, int64_t *out)
{
	const char *s = NULL;
	int64_t v = 0;
	bool neg;
	int rc;

	if ((rc = yamlcfg_typed(root, path, YAMLCFG_TAG_INT, &s)) < 0)
		return rc;
	neg = *s == '-';
	if (*s == '-' || *s == '+')
		s++;
	/* Leading zeros would be octal in YAML 1.1: refuse rather than guess. */
	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0'))
		return -EBADMSG;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EBADMSG;
		/* Accumulate negatively so that INT64_MIN fits. */
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, *s - '0', &v))
			return -EOVERFLOW;
	}
	if (!neg && __builtin_mul_overflow(v, -1, &v))
		return -EOVERFLOW;
	*out = v;
	return 0;
}

int nck_yaml_get_bool(const nck_yaml_node *root, const char *path, bool *out)
{
	/* PyYAML's bool resolver (YAML 1.1), true forms first. */
	static const char *const forms[] = {
		"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON",
		"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF",
	};
	const char *s = NULL;
	int rc;

	if ((rc = yamlcfg_typed(root, path, YAMLCFG_TAG_BOOL, &s)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		if (strcmp(s, forms[i]) == 0) {
			*out = i < 9;
			return 0;
		}
	}
	return -EBADMSG;
}

const char *nck_yaml_get_str(const nck_yaml_node *root, const char *path)
{
	const nck_yaml_node *n = nck_yaml_get(root, path);

	return n && n->kind == NCK_YAML_SCALAR ? n->scalar : NULL;
}
