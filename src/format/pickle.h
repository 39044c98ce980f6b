/* SPDX-License-Identifier: MIT */
/*
 * nck_pkl: a restricted pickle reader (protocols 0-5) that never executes
 * anything. It runs the pickle machine of CPython's `Lib/pickle.py`
 * (`_Unpickler`, opcode meanings from `Lib/pickletools.py`) over symbolic
 * values: a GLOBAL becomes a (module, name) pair, REDUCE/NEWOBJ/OBJ/INST
 * become CALL nodes that keep their callable and arguments, BUILD stores the
 * state on the CALL, and a persistent id becomes a PERSID node (or whatever
 * an optional callback returns). A few stdlib idioms are interpreted because
 * every reader needs them: `collections.OrderedDict()` becomes a DICT,
 * `_codecs.encode(str, 'latin1')`, `bytes()` and `bytearray(...)` become
 * BYTES, Python 2 module names (`__builtin__`, `copy_reg`) are mapped to
 * Python 3 ones as `Lib/_compat_pickle.py` does. A GLOBAL outside the set
 * torch's weights-only loader accepts (plus the data classes of NeMo,
 * Megatron and Transformer Engine; see pickle_allow.h) fails the parse with
 * -ENOTSUP naming it, as `torch.load(weights_only=True)` does.
 *
 * Values live in a caller-supplied arena and form a DAG (memo entries share
 * pointers; a pickle may even build cycles through APPEND on a memoized
 * list). Depth, value count and bytes are bounded (nck_pkl_limits). Spec:
 * ../shared/spec/tensor-formats.md §1.3 and §2.2.
 *
 * Thread-safety: a parse uses only its arguments; values are read-only after.
 */
#ifndef NCK_FORMAT_PICKLE_H
#define NCK_FORMAT_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nemockpt/diag.h"
#include "util/arena.h"

typedef enum nck_pv_kind {
	NCK_PV_NONE,
	NCK_PV_BOOL,
	NCK_PV_INT,
	NCK_PV_FLOAT,
	NCK_PV_STR,   /* UTF-8 text (surrogate code points allowed, as pickle writes them) */
	NCK_PV_BYTES, /* bytes and bytearray */
	NCK_PV_TUPLE,
	NCK_PV_LIST,
	NCK_PV_DICT,   /* also OrderedDict */
	NCK_PV_GLOBAL, /* a class or function reference, never imported */
	NCK_PV_CALL,   /* REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST; sets (builtins.set/frozenset) */
	NCK_PV_PERSID, /* a persistent id not replaced by a callback */
	NCK_PV_OPAQUE  /* not modelled: an int beyond int64 (str holds its pickled bytes) */
} nck_pv_kind;

typedef struct nck_pv nck_pv;

struct nck_pv {
	nck_pv_kind kind;
	/* Nesting depth when built: 0 for scalars, 1 + the deepest item for containers. */
	uint32_t depth;
	union {
		bool b;
		int64_t i;
		double f;
		struct {
			const char *s; /* NUL-terminated copy; may also contain NULs */
			size_t len;
		} str; /* STR (UTF-8), BYTES, OPAQUE */
		struct {
			nck_pv **items;
			/* TUPLE, LIST: n items; DICT: n pairs, items[2k] key, items[2k+1] value */
			size_t n;
			size_t cap; /* allocated slots (internal) */
		} seq;
		struct {
			const char *module, *name;
		} global;
		struct {
			nck_pv *callable; /* usually a GLOBAL */
			nck_pv *args;	  /* usually a TUPLE */
			nck_pv *state;	  /* BUILD argument, or NULL */
			nck_pv *kwargs;	  /* NEWOBJ_EX keyword arguments, or NULL */
			/* LIST or DICT filled by APPEND(S)/SETITEM(S)/ADDITEMS, or NULL */
			nck_pv *items;
		} call;
		nck_pv *persid; /* PERSID: the persistent id value */
	};
};

typedef struct nck_pkl_limits {
	size_t max_depth; /* value nesting and open MARKs (default 1000, as Python's recursion) */
	size_t max_items; /* values created plus container slots (default 4 Mi) */
	size_t max_bytes; /* bytes taken from the arena (default 128 MiB) */
	bool any_global;  /* accept globals outside the weights-only set (tests of the machine) */
} nck_pkl_limits;

/*
 * Called for BINPERSID/PERSID with the persistent id value; sets *out to the
 * value that replaces it (allocated in the parse's arena or borrowed for the
 * arena's lifetime). Returns 0 or a negative errno that ends the parse.
 */
typedef int (*nck_pkl_persid_cb)(nck_pv **out, nck_pv *pid, void *payload);

/*
 * Unpickles `len` bytes at `data` (borrowed; not kept) into values allocated
 * in `arena` (which the caller disposes; partial values stay there on
 * failure). `name` labels diag messages, whose offset is the byte offset of
 * the offending opcode within the pickle. `limits` may be NULL (defaults) and
 * its zero fields take the defaults. Bytes after STOP are ignored.
 * Errors: -EBADMSG malformed (unknown opcode, truncated, stack or mark
 * misuse, bad UTF-8, memo index not set); -E2BIG a limit was exceeded;
 * -ENOTSUP valid but unsupported (protocol > 5, EXT opcodes, out-of-band
 * buffers); -ENOMEM; or what the callback returns.
 */
int nck_pkl_parse_ex(nck_pv **out, nck_arena *arena, const void *data, size_t len, const char *name,
		     const nck_pkl_limits *limits, nck_pkl_persid_cb persid_cb, void *payload,
		     nck_diag *diag);

/* nck_pkl_parse_ex() without a persistent-id callback (ids stay PERSID nodes). */
int nck_pkl_parse(nck_pv **out, nck_arena *arena, const void *data, size_t len, const char *name,
		  const nck_pkl_limits *limits, nck_diag *diag);

/* ---- helpers (NULL-safe, never fail) ---- */

/* Whether `v` is GLOBAL module.name (Python 3 spelling of the module). */
bool nck_pv_is_global(const nck_pv *v, const char *module, const char *name);

/* Whether `v` is a STR equal to the NUL-terminated `s`. */
bool nck_pv_is_str(const nck_pv *v, const char *s);

/* Whether `v` is a CALL whose callable is GLOBAL module.name. */
bool nck_pv_is_call_of(const nck_pv *v, const char *module, const char *name);

/*
 * The value of string key `key` in a DICT, or in the SETITEM items of a CALL
 * (defaultdict and other dict subclasses); the last one wins, as in Python.
 * NULL when absent. Borrowed.
 */
const nck_pv *nck_pv_dict_get(const nck_pv *dict, const char *key);

/* Item `i` of a TUPLE or LIST, or NULL when out of range or not a sequence. */
const nck_pv *nck_pv_seq_get(const nck_pv *seq, size_t i);

/* Stores an INT (or BOOL as 0/1) in *out; false when `v` is neither. */
bool nck_pv_get_int(const nck_pv *v, int64_t *out);

#endif
