/* SPDX-License-Identifier: MIT */
/*
 * The globals a pickle may name (see pickle_allow.h): torch's weights-only
 * set, `_get_allowed_globals` in torch/_weights_only_unpickler.py (PyTorch
 * 2.x), plus the plain data classes NeMo, Megatron and Transformer Engine
 * pickle beside their weights. Split from pickle.c by concern (issue 12).
 *
 * Thread-safety: constant tables only.
 */
#include "format/pickle_allow.h"

#include <stddef.h>
#include <string.h>

/* torch dtype names a `torch <name>` global may carry (`getDtypeNames` in
 * c10/core/ScalarType.cpp, plus the legacy aliases torch accepts). */
static const char *const pkl_torch_names[] = {
	"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8",
	"uint8", "bool", "complex32", "complex64", "complex128", "float8_e5m2",
	"float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz", "float8_e8m0fnu",
	"float4_e2m1fn_x2", "uint16", "uint32", "uint64", "qint8", "quint8", "qint32",
	"quint4x2", "quint2x4", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
	"double", "float", "half", "long", "int", "short", "cfloat", "cdouble",
	"Size", "device", "Tensor", "strided", "contiguous_format", "channels_last",
	"preserve_format", NULL,
};

/* Globals by exact module and name ("*": any name). The weights-only set of
 * `torch/_weights_only_unpickler.py` (`_get_allowed_globals`), plus the plain
 * data classes NeMo and Megatron pickle next to their weights (argparse
 * namespaces, BytesIO extra states, numpy RNG states); module prefixes below. */
static const struct {
	const char *module, *name;
} pkl_allowed[] = {
	{ "collections", "OrderedDict" }, { "collections", "Counter" },
	{ "builtins", "set" }, { "builtins", "frozenset" }, { "builtins", "bytearray" },
	{ "builtins", "bytes" }, { "builtins", "slice" }, { "builtins", "list" },
	{ "builtins", "dict" }, { "builtins", "tuple" }, { "builtins", "int" },
	{ "builtins", "float" }, { "builtins", "complex" }, { "builtins", "str" },
	{ "builtins", "bool" }, { "builtins", "object" },
	{ "_codecs", "encode" }, { "copyreg", "_reconstructor" },
	{ "torch._utils", "*" }, { "torch._tensor", "_rebuild_from_type_v2" },
	{ "torch.serialization", "_get_layout" }, { "torch.nn.parameter", "Parameter" },
	{ "argparse", "Namespace" }, { "io", "BytesIO" }, { "_io", "BytesIO" },
	{ "numpy", "ndarray" }, { "numpy", "dtype" },
	{ "numpy.core.multiarray", "_reconstruct" }, { "numpy.core.multiarray", "scalar" },
	{ "numpy._core.multiarray", "_reconstruct" }, { "numpy._core.multiarray", "scalar" },
	{ "numpy.dtypes", "*" }, { "pathlib", "PosixPath" }, { "pathlib", "Path" },
};

/* Modules of the checkpoints' own software, whose globals are data classes
 * and enums (DCP metadata, Megatron and NeMo configs, Transformer Engine). */
static const char *const pkl_allowed_prefix[] = {
	"torch.distributed.", "megatron.", "nemo.", "transformer_engine.", "omegaconf.", NULL,
};

bool nck_pkl_global_allowed(const char *module, const char *name)
{
	for (size_t i = 0; i < sizeof(pkl_allowed) / sizeof(pkl_allowed[0]); i++)
		if (strcmp(module, pkl_allowed[i].module) == 0 &&
		    (strcmp(pkl_allowed[i].name, "*") == 0 || strcmp(name, pkl_allowed[i].name) == 0))
			return true;
	if (strcmp(module, "torch") == 0 || strcmp(module, "torch.cuda") == 0) {
		size_t n = strlen(name);

		if (n > 7 && strcmp(name + n - 7, "Storage") == 0)
			return true;
		for (size_t i = 0; module[5] == '\0' && pkl_torch_names[i]; i++)
			if (strcmp(name, pkl_torch_names[i]) == 0)
				return true;
		return false;
	}
	for (size_t i = 0; pkl_allowed_prefix[i]; i++)
		if (strncmp(module, pkl_allowed_prefix[i], strlen(pkl_allowed_prefix[i])) == 0)
			return true;
	return false;
}
