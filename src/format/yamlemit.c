/* SPDX-License-Identifier: MIT */
/*
 * Parallel-size rewriter (see yamlemit.h): each event of libyaml's parser
 * (yaml_parser_parse, libyaml 0.2) goes straight to yaml_emitter_emit,
 * except the value events of the rewritten keys, which are dropped and
 * replaced by one plain scalar, and the end of the top-level mapping, before
 * which absent keys are appended. The yaml_parser_t, yaml_emitter_t and
 * their events never leave nck_yaml_set_parallel().
 *
 * Anchors: every definition is recorded (name -> latest definition), which
 * also finds undefined aliases. A dropped value's events are kept from its
 * first anchor on; an alias to an anchor defined there ("pending") is
 * written as the kept node itself, after which the anchor is an ordinary
 * one. This is exact only while each name in the replayed node still means
 * what it meant where the node stood; otherwise -ENOTSUP (PyYAML refuses
 * redefined anchors anyway). Every kept event is written at most once.
 *
 * libyaml's marks count characters, not bytes (`SKIP` in scanner.c), so
 * diag offsets are found by walking the UTF-8 input (a UTF-8 BOM is not
 * counted; UTF-16 input is mapped at two bytes per character).
 * Thread-safety: no shared state.
 */
#include "format/yamlemit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "util/arena.h"
#include "util/grow.h"
#include "util/strmap.h"

#define YE_TAG_STR "tag:yaml.org,2002:str"
/* Deepest chain of pending aliases written inside one another: bounds the
 * recursion of ye_replay(). */
#define YE_MAX_REPLAY 64
#define YE_NONE	      SIZE_MAX

/* The rewritten keys, in the order absent ones are appended. */
static const char *const ye_keys[2] = {"tensor_model_parallel_size",
				       "pipeline_model_parallel_size"};

/* One anchor definition. */
typedef struct ye_def {
	const char *name; /* in the context's arena */
	size_t at;	  /* pending: index in kept of the node's first event */
	bool pending;	  /* defined in a dropped value and not written yet */
} ye_def;

/* An event of a dropped value, kept in case an alias needs it. */
typedef struct ye_kept {
	yaml_event_t ev; /* owned; data zeroed once moved into the emitter */
	size_t ref;	 /* anchored node or alias: its definition, else YE_NONE */
	bool done;	 /* written */
} ye_kept;

/* A mapping whose keys are rewritten: the top level (depth 1) or `model`'s (depth 2). */
typedef struct ye_map {
	bool active;	 /* a mapping we rewrite (else nothing below is used) */
	bool want_key;	 /* the next child node is a key */
	int replace;	 /* the next child (a value) is replaced by val[replace]; -1 */
	bool model_next; /* top level: the next value is that of `model` */
	bool seen[2];	 /* which keys were found */
} ye_map;

typedef struct ye_ctx {
	const char *name;
	const unsigned char *in;
	size_t len;
	nck_diag *diag;
	char val[2][24]; /* tp and pp as decimal text */
	yaml_emitter_t em;
	char *out; /* malloc'd, NUL-terminated */
	size_t out_len, out_cap;
	bool too_big, nomem; /* why the write handler failed */
	size_t depth;	     /* open collections, dropped ones not counted */
	ye_map maps[3];	     /* [1] top level, [2] the `model` mapping */
	size_t drop;	     /* >0: inside a dropped value, its open collections */
	bool keeping;	     /* the dropped value's events are being kept */
	int docs;
	unsigned replays; /* ye_replay() nesting */
	nck_arena names;
	nck_strmap anchors; /* name -> index in defs of the latest definition */
	ye_def *defs;
	size_t n_defs, cap_defs;
	ye_kept *kept;
	size_t n_kept, cap_kept;
} ye_ctx;

/* ---- helpers -------------------------------------------------------------- */

/* Byte offset of a libyaml mark (character based) in the input. */
static int64_t ye_offset(const ye_ctx *c, const yaml_mark_t *m)
{
	size_t byte = 0, chars = 0;

	if (c->len >= 2 &&
	    ((c->in[0] == 0xFE && c->in[1] == 0xFF) || (c->in[0] == 0xFF && c->in[1] == 0xFE)))
		return m->index < (c->len - 2) / 2 ? 2 + 2 * (int64_t)m->index : (int64_t)c->len;
	if (c->len >= 3 && memcmp(c->in, "\xEF\xBB\xBF", 3) == 0)
		byte = 3;
	for (; chars < m->index && byte < c->len; chars++) {
		byte++;
		while (byte < c->len && (c->in[byte] & 0xC0) == 0x80)
			byte++;
	}
	return (int64_t)byte;
}

/* Records an error about the input at mark `m`, with line and column. */
static int ye_err(ye_ctx *c, int code, const yaml_mark_t *m, const char *what, const char *arg)
{
	return nck_diag_set(c->diag, code, c->name, ye_offset(c, m),
			    "line %zu column %zu: %s%s%s%s", m->line + 1, m->column + 1, what,
			    arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
}

static int ye_nomem(ye_ctx *c)
{
	return nck_diag_set(c->diag, -ENOMEM, c->name, -1, "out of memory");
}

/* The anchor a node event defines, or NULL. */
static const char *ye_anchor(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return (const char *)ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT:
		return (const char *)ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT:
		return (const char *)ev->data.mapping_start.anchor;
	default:
		return NULL;
	}
}

static bool ye_is_start(const yaml_event_t *ev)
{
	return ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT;
}

static bool ye_is_end(const yaml_event_t *ev)
{
	return ev->type == YAML_SEQUENCE_END_EVENT || ev->type == YAML_MAPPING_END_EVENT;
}

/* Which key a key event names: 0 or 1 (ye_keys), 2 for `model`, else -1. */
static int ye_key_kind(const yaml_event_t *ev)
{
	static const char *const names[3] = {"tensor_model_parallel_size",
					     "pipeline_model_parallel_size", "model"};
	const char *tag;

	if (ev->type != YAML_SCALAR_EVENT)
		return -1;
	tag = (const char *)ev->data.scalar.tag;
	/* `!` makes PyYAML resolve the text as if plain: a str here. */
	if (tag && strcmp(tag, "!") != 0 && strcmp(tag, YE_TAG_STR) != 0)
		return -1;
	for (int k = 0; k < 3; k++)
		if (ev->data.scalar.length == strlen(names[k]) &&
		    memcmp(ev->data.scalar.value, names[k], ev->data.scalar.length) == 0)
			return k;
	return -1;
}

/* ---- output --------------------------------------------------------------- */

/* libyaml write handler: appends to c->out, up to NCK_YAMLEMIT_MAX_BYTES. */
static int ye_write(void *data, unsigned char *buf, size_t size)
{
	ye_ctx *c = data;
	size_t need, ncap;
	char *p;

	if (size > NCK_YAMLEMIT_MAX_BYTES - c->out_len) {
		c->too_big = true;
		return 0;
	}
	need = c->out_len + size + 1;
	if (need > c->out_cap) {
		ncap = c->out_cap ? c->out_cap : 4096;
		while (ncap < need)
			ncap *= 2;
		if (!(p = realloc(c->out, ncap))) {
			c->nomem = true;
			return 0;
		}
		c->out = p;
		c->out_cap = ncap;
	}
	memcpy(c->out + c->out_len, buf, size);
	c->out_len += size;
	c->out[c->out_len] = '\0';
	return 1;
}

/* Hands `ev` to the emitter, which owns it from then on (*ev is zeroed). */
static int ye_emit(ye_ctx *c, yaml_event_t *ev)
{
	yaml_mark_t m = ev->start_mark;
	int ok;

	/* libyaml's parser marks an empty node tagged `!` (`a: !`) as neither
	 * plain- nor quoted-implicit, and the emitter then writes the tag as
	 * `!<%21>`, which reads back differently. PyYAML (and libyaml for a
	 * non-empty one) treats every `!` scalar as plain-implicit: do so too. */
	if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.tag &&
	    strcmp((const char *)ev->data.scalar.tag, "!") == 0)
		ev->data.scalar.plain_implicit = 1;
	ok = yaml_emitter_emit(&c->em, ev);

	/* On success the emitter queued a shallow copy: ev must not be freed. */
	memset(ev, 0, sizeof(*ev));
	if (ok)
		return 0;
	if (c->too_big)
		return nck_diag_set(c->diag, -E2BIG, c->name, -1, "output larger than %u bytes",
				    NCK_YAMLEMIT_MAX_BYTES);
	if (c->nomem || c->em.error == YAML_MEMORY_ERROR)
		return ye_nomem(c);
	return ye_err(c, -ENOTSUP, &m, "libyaml's emitter refused the document:",
		      c->em.problem ? c->em.problem : "unknown error");
}

/* Writes a plain, untagged scalar. */
static int ye_emit_plain(ye_ctx *c, const char *text)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text),
					  1, 0, YAML_PLAIN_SCALAR_STYLE))
		return ye_nomem(c);
	return ye_emit(c, &ev);
}

/* Writes an alias of `name`. */
static int ye_emit_alias(ye_ctx *c, const char *name)
{
	yaml_event_t ev;

	if (!yaml_alias_event_initialize(&ev, (yaml_char_t *)name))
		return ye_nomem(c);
	return ye_emit(c, &ev);
}

/* Writes kept event i, moving it into the emitter. */
static int ye_emit_kept(ye_ctx *c, size_t i)
{
	yaml_event_t ev = c->kept[i].ev;

	/* Cannot happen (see the file comment); refuse rather than double-free. */
	if (c->kept[i].done)
		return ye_err(c, -ENOTSUP, &ev.start_mark, "a dropped node is needed twice", NULL);
	c->kept[i].done = true;
	memset(&c->kept[i].ev.data, 0, sizeof(c->kept[i].ev.data));
	return ye_emit(c, &ev);
}

/* ---- anchors -------------------------------------------------------------- */

/* Records a definition of anchor `name` (pending: at kept[at]); *idx its index. */
static int ye_define(ye_ctx *c, const char *name, bool pending, size_t at, size_t *idx)
{
	const char *copy = nck_arena_strndup(&c->names, name, strlen(name));

	if (!copy ||
	    nck_grow((void **)&c->defs, &c->cap_defs, c->n_defs, sizeof(*c->defs), 16) < 0 ||
	    nck_strmap_put(&c->anchors, copy, c->n_defs) < 0)
		return ye_nomem(c);
	c->defs[c->n_defs] = (ye_def){.name = copy, .at = at, .pending = pending};
	if (idx)
		*idx = c->n_defs;
	c->n_defs++;
	return 0;
}

/* The definition an alias event refers to; -EBADMSG when undefined. */
static int ye_lookup(ye_ctx *c, const yaml_event_t *ev, size_t *idx)
{
	const char *name = (const char *)ev->data.alias.anchor;

	if (!nck_strmap_find(&c->anchors, name, idx))
		return ye_err(c, -EBADMSG, &ev->start_mark, "undefined alias", name);
	return 0;
}

/* Index of the last event of the kept node that starts at i. */
static size_t ye_span_end(const ye_ctx *c, size_t i)
{
	size_t level = 0;

	for (; i < c->n_kept; i++) {
		if (ye_is_start(&c->kept[i].ev))
			level++;
		else if (ye_is_end(&c->kept[i].ev))
			level--;
		if (level == 0)
			break;
	}
	return i;
}

static int ye_replay(ye_ctx *c, size_t d);

/* Writes the kept event at *i (for a node written already: an alias of
 * it) and moves *i past what it wrote; keeps the nesting in *level. */
static int ye_replay_one(ye_ctx *c, size_t *i, size_t *level)
{
	const ye_kept *k = &c->kept[*i];
	size_t d = k->ref, cur = YE_NONE;
	bool alias = k->ev.type == YAML_ALIAS_EVENT;

	if (d != YE_NONE) {
		const char *name = c->defs[d].name;

		if (!nck_strmap_find(&c->anchors, name, &cur) || cur != d)
			return ye_err(c, -ENOTSUP, &k->ev.start_mark,
				      "anchor redefined before a replaced value using it", name);
		if (alias || !c->defs[d].pending) {
			*i = alias ? *i + 1 : ye_span_end(c, *i) + 1;
			return c->defs[d].pending ? ye_replay(c, d) : ye_emit_alias(c, name);
		}
		c->defs[d].pending = false;
	}
	if (ye_is_start(&k->ev))
		(*level)++;
	else if (ye_is_end(&k->ev))
		(*level)--;
	return ye_emit_kept(c, (*i)++);
}

/* Writes the kept node of pending definition d in place of an alias to it. */
static int ye_replay(ye_ctx *c, size_t d)
{
	size_t i = c->defs[d].at, level = 0;
	int rc;

	if (c->replays == YE_MAX_REPLAY)
		return ye_err(c, -ENOTSUP, &c->kept[i].ev.start_mark,
			      "aliases of replaced values nest too deeply", NULL);
	c->replays++;
	do {
		rc = ye_replay_one(c, &i, &level);
	} while (rc == 0 && level > 0 && i < c->n_kept);
	c->replays--;
	return rc;
}

/* ---- dropped values ------------------------------------------------------- */

/* Takes one event of a dropped value: kept from its first anchor on, else
 * left for the caller to free. */
static int ye_take_dropped(ye_ctx *c, yaml_event_t *ev)
{
	const char *anchor = ye_anchor(ev);
	size_t ref = YE_NONE;
	int rc;

	if (ev->type == YAML_ALIAS_EVENT && (rc = ye_lookup(c, ev, &ref)) < 0)
		return rc;
	c->keeping = c->keeping || anchor;
	if (!c->keeping)
		return 0;
	if (c->n_kept >= NCK_YAMLEMIT_MAX_KEPT)
		return ye_err(c, -E2BIG, &ev->start_mark,
			      "replaced values with anchors are too large", NULL);
	if (nck_grow((void **)&c->kept, &c->cap_kept, c->n_kept, sizeof(*c->kept), 16) < 0)
		return ye_nomem(c);
	if (anchor && (rc = ye_define(c, anchor, true, c->n_kept, &ref)) < 0)
		return rc;
	c->kept[c->n_kept++] = (ye_kept){.ev = *ev, .ref = ref};
	memset(ev, 0, sizeof(*ev));
	return 0;
}

/* ---- structure ------------------------------------------------------------ */

/* A node at the current depth is complete: the parent mapping moves on. */
static void ye_done(ye_ctx *c)
{
	ye_map *m = c->depth >= 1 && c->depth <= 2 ? &c->maps[c->depth] : NULL;

	if (!m || !m->active)
		return;
	if (m->want_key) {
		m->want_key = false;
		return;
	}
	m->want_key = true;
	m->replace = -1;
	m->model_next = false;
}

/* Writes the new value for a rewritten key and starts dropping the old one. */
static int ye_replace(ye_ctx *c, ye_map *m, yaml_event_t *ev)
{
	int rc;

	if ((rc = ye_emit_plain(c, c->val[m->replace])) < 0)
		return rc;
	c->drop = ye_is_start(ev) ? 1 : 0;
	rc = ye_take_dropped(c, ev);
	if (c->drop == 0) {
		c->keeping = false;
		ye_done(c);
	}
	return rc;
}

/* An event inside a dropped collection. */
static int ye_drop(ye_ctx *c, yaml_event_t *ev)
{
	int rc;

	if (ye_is_start(ev))
		c->drop++;
	else if (ye_is_end(ev))
		c->drop--;
	rc = ye_take_dropped(c, ev);
	if (c->drop == 0) {
		c->keeping = false;
		ye_done(c);
	}
	return rc;
}

/* Opens a collection; depths 1 and 2 may be mappings we rewrite. */
static void ye_open(ye_ctx *c, const yaml_event_t *ev)
{
	size_t d = ++c->depth;
	const ye_map *top = &c->maps[1];

	if (d > 2)
		return;
	c->maps[d] = (ye_map){
	    .active = ev->type == YAML_MAPPING_START_EVENT &&
		      (d == 1 || (top->active && top->model_next && !top->want_key)),
	    .want_key = true,
	    .replace = -1,
	};
}

/* A scalar, alias or collection start in the main stream. */
static int ye_node(ye_ctx *c, yaml_event_t *ev)
{
	ye_map *m =
	    c->depth >= 1 && c->depth <= 2 && c->maps[c->depth].active ? &c->maps[c->depth] : NULL;
	const char *anchor = ye_anchor(ev);
	size_t d;
	int rc, k;

	if (c->depth == 0 && ev->type != YAML_MAPPING_START_EVENT)
		return ye_err(c, -EBADMSG, &ev->start_mark, "the top level is not a mapping", NULL);
	if (m && !m->want_key && m->replace >= 0)
		return ye_replace(c, m, ev);
	if (m && m->want_key && (k = ye_key_kind(ev)) >= 0) {
		if (k < 2) {
			m->replace = k;
			m->seen[k] = true;
		}
		m->model_next = k == 2 && c->depth == 1;
	}
	if (ev->type == YAML_ALIAS_EVENT) {
		if ((rc = ye_lookup(c, ev, &d)) < 0)
			return rc;
		rc = c->defs[d].pending ? ye_replay(c, d) : ye_emit(c, ev);
	} else {
		if (anchor && (rc = ye_define(c, anchor, false, 0, NULL)) < 0)
			return rc;
		if (ye_is_start(ev)) {
			ye_open(c, ev);
			return ye_emit(c, ev);
		}
		rc = ye_emit(c, ev);
	}
	if (rc == 0)
		ye_done(c);
	return rc;
}

/* Appends the keys the top-level mapping lacks. */
static int ye_append(ye_ctx *c)
{
	int rc;

	for (int k = 0; k < 2; k++) {
		if (c->maps[1].seen[k])
			continue;
		if ((rc = ye_emit_plain(c, ye_keys[k])) < 0 ||
		    (rc = ye_emit_plain(c, c->val[k])) < 0)
			return rc;
	}
	return 0;
}

/* Closes a collection of the main stream. */
static int ye_end(ye_ctx *c, yaml_event_t *ev)
{
	int rc;

	if (c->depth == 1 && (rc = ye_append(c)) < 0)
		return rc;
	if (c->depth <= 2)
		c->maps[c->depth].active = false;
	c->depth--;
	if ((rc = ye_emit(c, ev)) < 0)
		return rc;
	ye_done(c);
	return 0;
}

/* Dispatches one parser event; what it does not take is freed by the caller. */
static int ye_event(ye_ctx *c, yaml_event_t *ev)
{
	if (c->drop > 0)
		return ye_drop(c, ev);
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++c->docs > 1)
			return ye_err(c, -EBADMSG, &ev->start_mark,
				      "more than one document in the stream", NULL);
		return ye_emit(c, ev);
	case YAML_STREAM_END_EVENT:
		if (c->docs == 0)
			return ye_err(c, -EBADMSG, &ev->start_mark, "no document in the stream",
				      NULL);
		return ye_emit(c, ev);
	case YAML_SCALAR_EVENT:
	case YAML_ALIAS_EVENT:
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return ye_node(c, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return ye_end(c, ev);
	default:
		return ye_emit(c, ev);
	}
}

/* ---- entry point ---------------------------------------------------------- */

/* Turns a libyaml parser failure into a diag: reader errors carry a byte
 * offset, scanner and parser errors a (character) mark. */
static int ye_parser_error(ye_ctx *c, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "syntax error";

	if (p->error == YAML_MEMORY_ERROR)
		return ye_nomem(c);
	if (p->error == YAML_READER_ERROR)
		return nck_diag_set(c->diag, -EBADMSG, c->name, (int64_t)p->problem_offset, "%s",
				    problem);
	return nck_diag_set(c->diag, -EBADMSG, c->name, ye_offset(c, &p->problem_mark),
			    "line %zu column %zu: %s%s%s%s", p->problem_mark.line + 1,
			    p->problem_mark.column + 1, problem, p->context ? " (" : "",
			    p->context ? p->context : "", p->context ? ")" : "");
}

/* Sets up the emitter: UTF-8, unicode unescaped, no folding of long lines. */
static int ye_emitter_init(ye_ctx *c)
{
	if (!yaml_emitter_initialize(&c->em))
		return ye_nomem(c);
	yaml_emitter_set_output(&c->em, ye_write, c);
	yaml_emitter_set_encoding(&c->em, YAML_UTF8_ENCODING);
	yaml_emitter_set_unicode(&c->em, 1);
	yaml_emitter_set_width(&c->em, -1);
	yaml_emitter_set_indent(&c->em, 2);
	yaml_emitter_set_break(&c->em, YAML_LN_BREAK);
	return 0;
}

/* Frees everything the context holds but the output. */
static void ye_ctx_free(ye_ctx *c)
{
	for (size_t i = 0; i < c->n_kept; i++)
		yaml_event_delete(&c->kept[i].ev);
	free(c->kept);
	free(c->defs);
	nck_strmap_dispose(&c->anchors);
	nck_arena_dispose(&c->names);
	free(c);
}

/* Runs the parser into the emitter. */
static int ye_run(ye_ctx *c)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		return ye_nomem(c);
	yaml_parser_set_input_string(&parser, c->in, c->len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = ye_parser_error(c, &parser);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = ye_event(c, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return rc;
}

int nck_yaml_set_parallel(const char *name, const char *in, size_t len, int64_t tp, int64_t pp,
			  char **out, size_t *out_len, nck_diag *diag)
{
	ye_ctx *c = NULL;
	bool em_ok = false;
	int rc;

	if (out)
		*out = NULL;
	if (out_len)
		*out_len = 0;
	if (!out || !out_len || tp < 1 || pp < 1)
		return nck_diag_set(diag, -EINVAL, name, -1, "bad arguments");
	if (len > NCK_YAMLEMIT_MAX_BYTES)
		return nck_diag_set(diag, -E2BIG, name, -1, "larger than %u bytes",
				    NCK_YAMLEMIT_MAX_BYTES);
	if (!(c = calloc(1, sizeof(*c))))
		return nck_diag_set(diag, -ENOMEM, name, -1, "out of memory");
	c->name = name;
	c->in = in ? (const unsigned char *)in : (const unsigned char *)"";
	c->len = in ? len : 0;
	c->diag = diag;
	snprintf(c->val[0], sizeof(c->val[0]), "%" PRId64, tp);
	snprintf(c->val[1], sizeof(c->val[1]), "%" PRId64, pp);
	nck_arena_init(&c->names);
	if ((rc = ye_emitter_init(c)) < 0)
		goto out;
	em_ok = true;
	if ((rc = ye_run(c)) < 0)
		goto out;
	/* A stream always writes something; this only guards the NUL. */
	if (!c->out && ye_write(c, (unsigned char *)"", 0) == 0) {
		rc = ye_nomem(c);
		goto out;
	}
	*out = c->out;
	*out_len = c->out_len;
	c->out = NULL;
out:
	if (em_ok)
		yaml_emitter_delete(&c->em);
	free(c->out);
	ye_ctx_free(c);
	return rc;
}
