/* SPDX-License-Identifier: MIT */
/*
 * nck_quant backends (see quant.h): the CPU table, the selection of a
 * backend by spec ("auto", "off", a device number), which loads the CUDA
 * backend (libnemockpt_cuda.so) with dlopen so that neither the build nor
 * the programs need CUDA, and the dispatchers that check arguments once and
 * redo on the CPU any call a device backend could not finish (same bytes).
 *
 * Where the library is looked for, in order:
 *  1. <directory of /proc/self/exe>/NCK_QUANT_CUDA_RELDIR/ (the install's
 *     libdir relative to its bindir, plus /nemockpt; set by CMake);
 *  2. NCK_QUANT_CUDA_BUILD_PATH, the build tree's copy (only defined when
 *     this build made one), so tests and benchmarks run before install.
 *
 * Ownership: the library handle is kept open until exit (backends point into
 * it). Thread-safety: every function may be called from any thread.
 */
#include "quant/quant.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nemockpt/log.h"
#include "quant/quant_int.h"

#ifndef NCK_QUANT_CUDA_RELDIR
#define NCK_QUANT_CUDA_RELDIR "../lib/nemockpt"
#endif

/* ---- the CPU backend ----------------------------------------------------------------- */

static int cpu_amax(const nck_quant_backend *be, float *amax, const void *src, nck_dtype dtype,
		    size_t n)
{
	(void)be;
	return nck_quant_cpu_amax(amax, src, dtype, n, 0);
}

static int cpu_fp8(const nck_quant_backend *be, uint8_t *dst, const void *src, nck_dtype dtype,
		   size_t n, float scale)
{
	(void)be;
	return nck_quant_cpu_fp8(dst, src, dtype, n, scale, 0);
}

static int cpu_int4_scales(const nck_quant_backend *be, float *scales, const void *src,
			   nck_dtype dtype, size_t rows, size_t cols, size_t group)
{
	(void)be;
	return nck_quant_cpu_int4_scales(scales, src, dtype, rows, cols, group, 0);
}

static int cpu_int4_pack(const nck_quant_backend *be, uint8_t *dst, const void *src,
			 nck_dtype dtype, size_t rows, size_t cols, size_t group,
			 const float *scales)
{
	(void)be;
	return nck_quant_cpu_int4_pack(dst, src, dtype, rows, cols, group, scales, 0);
}

static int cpu_nvfp4(const nck_quant_backend *be, uint8_t *codes, uint8_t *scales,
		     const void *src, nck_dtype dtype, size_t n, float global)
{
	(void)be;
	return nck_quant_cpu_nvfp4(codes, scales, src, dtype, n, global, 0);
}

static const nck_quant_backend cpu_backend = {
	.abi = NCK_QUANT_BACKEND_ABI,
	.name = "cpu",
	.amax = cpu_amax,
	.fp8 = cpu_fp8,
	.int4_scales = cpu_int4_scales,
	.int4_pack = cpu_int4_pack,
	.nvfp4 = cpu_nvfp4,
};

const nck_quant_backend *nck_quant_backend_cpu(void)
{
	return &cpu_backend;
}

/* ---- loading the CUDA backend ------------------------------------------------------------ */

/* "<dir of the executable>/<rel>/<file>" in buf; false if it does not fit. */
static bool exe_relative(char *buf, size_t size, const char *rel, const char *file)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return false;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = '\0';
	n = snprintf(buf, size, "%s/%s/%s", exe, rel, file);
	return n > 0 && (size_t)n < size;
}

/* The backend of `device` from the library handle h; NULL (h closed) with the reason. */
static const nck_quant_backend *cuda_from(void *h, const char *path, int device, char *err,
					  size_t errlen)
{
	const nck_quant_backend *be;
	nck_quant_cuda_entry entry;
	void *sym = dlsym(h, NCK_QUANT_CUDA_SYMBOL);

	if (!sym) {
		snprintf(err, errlen, "%s: no symbol %s", path, NCK_QUANT_CUDA_SYMBOL);
		dlclose(h);
		return NULL;
	}
	/* POSIX guarantees that a data pointer from dlsym converts to a function pointer. */
	memcpy(&entry, &sym, sizeof(entry));
	be = entry(NCK_QUANT_BACKEND_ABI, device, err, errlen);
	if (be && (be->abi != NCK_QUANT_BACKEND_ABI || !be->amax || !be->fp8 ||
		   !be->int4_scales || !be->int4_pack || !be->nvfp4)) {
		snprintf(err, errlen, "%s: backend ABI %u, expected %u", path, be->abi,
			 NCK_QUANT_BACKEND_ABI);
		be = NULL;
	}
	/* Kept open on success: the table and its code live in the library. */
	if (!be)
		dlclose(h);
	return be;
}

const nck_quant_backend *nck_quant_backend_open(const char *path, int device, char *err,
						size_t errlen)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(err, errlen, "%s", dlerror());
		return NULL;
	}
	return cuda_from(h, path, device, err, errlen);
}

/* The CUDA backend of `device` from the first library found, or NULL with the reason in err. */
static const nck_quant_backend *cuda_backend(int device, char *err, size_t errlen)
{
	const nck_quant_backend *be = NULL;
	char path[PATH_MAX + 64];

	snprintf(err, errlen, "%s not found", NCK_QUANT_CUDA_LIBRARY);
	if (exe_relative(path, sizeof(path), NCK_QUANT_CUDA_RELDIR, NCK_QUANT_CUDA_LIBRARY) &&
	    access(path, F_OK) == 0)
		be = nck_quant_backend_open(path, device, err, errlen);
#ifdef NCK_QUANT_CUDA_BUILD_PATH
	if (!be && access(NCK_QUANT_CUDA_BUILD_PATH, F_OK) == 0)
		be = nck_quant_backend_open(NCK_QUANT_CUDA_BUILD_PATH, device, err, errlen);
#endif
	return be;
}

/* Parses a device number "N" (0..1023); -1 if spec is not one. */
static int parse_device(const char *spec)
{
	long v = 0;

	if (!*spec || strlen(spec) > 4)
		return -1;
	for (const char *p = spec; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v < 1024 ? (int)v : -1;
}

const nck_quant_backend *nck_quant_backend_get(const char *spec, nck_diag *diag)
{
	const nck_quant_backend *be;
	char err[512];
	int device;

	if (!spec || strcmp(spec, "auto") == 0) {
		be = cuda_backend(0, err, sizeof(err));
		if (be) {
			nck_log(NCK_LOG_INFO, "quantization on %s", be->name);
			return be;
		}
		nck_log(NCK_LOG_INFO, "quantization on the CPU (no CUDA backend: %s)", err);
		return &cpu_backend;
	}
	if (strcmp(spec, "off") == 0 || strcmp(spec, "cpu") == 0)
		return &cpu_backend;
	device = parse_device(spec);
	if (device < 0) {
		nck_diag_set(diag, -EINVAL, NULL, -1,
			     "quantization backend '%s': expected auto, off or a device number",
			     spec);
		return NULL;
	}
	be = cuda_backend(device, err, sizeof(err));
	if (!be)
		nck_diag_set(diag, -ENODEV, NULL, -1, "CUDA device %d: %s", device, err);
	return be;
}

/* ---- dispatchers ----------------------------------------------------------------------- */

static const nck_quant_backend *or_cpu(const nck_quant_backend *be)
{
	return be ? be : &cpu_backend;
}

/*
 * Whether to redo a failed operation of `be` on the CPU (every output is
 * rewritten, so nothing of the failed attempt remains): always, since the
 * bytes are the same. -ENOTSUP is expected (a unit larger than the device's
 * chunks); other errors are logged once per process.
 */
static bool fall_back(const nck_quant_backend *be, int rc)
{
	static atomic_bool warned;

	if (rc == 0 || be == &cpu_backend)
		return false;
	if (rc != -ENOTSUP && !atomic_exchange(&warned, true))
		nck_log(NCK_LOG_WARN, "quantization on %s failed (%s); using the CPU for that call",
			be->name, strerror(-rc));
	return true;
}

int nck_quant_amax(const nck_quant_backend *be, float *amax, const void *src, nck_dtype dtype,
		   size_t n)
{
	int rc = nck_quant_check_elems(amax, src, dtype, n);

	if (rc < 0 || !amax)
		return rc < 0 ? rc : -EINVAL;
	be = or_cpu(be);
	rc = be->amax(be, amax, src, dtype, n);
	return fall_back(be, rc) ? cpu_amax(&cpu_backend, amax, src, dtype, n) : rc;
}

int nck_quant_fp8(const nck_quant_backend *be, uint8_t *dst, const void *src, nck_dtype dtype,
		  size_t n, float scale)
{
	int rc = nck_quant_check_elems(dst, src, dtype, n);

	if (rc < 0)
		return rc;
	be = or_cpu(be);
	rc = be->fp8(be, dst, src, dtype, n, scale);
	return fall_back(be, rc) ? cpu_fp8(&cpu_backend, dst, src, dtype, n, scale) : rc;
}

int nck_quant_int4_scales(const nck_quant_backend *be, float *scales, const void *src,
			  nck_dtype dtype, size_t rows, size_t cols, size_t group)
{
	int rc = nck_quant_check_int4(scales, src, dtype, rows, cols, group, NULL, false);

	if (rc < 0)
		return rc;
	be = or_cpu(be);
	rc = be->int4_scales(be, scales, src, dtype, rows, cols, group);
	if (fall_back(be, rc))
		rc = cpu_int4_scales(&cpu_backend, scales, src, dtype, rows, cols, group);
	return rc;
}

int nck_quant_int4_pack(const nck_quant_backend *be, uint8_t *dst, const void *src,
			nck_dtype dtype, size_t rows, size_t cols, size_t group,
			const float *scales)
{
	int rc = nck_quant_check_int4(dst, src, dtype, rows, cols, group, scales, true);

	if (rc < 0)
		return rc;
	be = or_cpu(be);
	rc = be->int4_pack(be, dst, src, dtype, rows, cols, group, scales);
	if (fall_back(be, rc))
		rc = cpu_int4_pack(&cpu_backend, dst, src, dtype, rows, cols, group, scales);
	return rc;
}

int nck_quant_nvfp4(const nck_quant_backend *be, uint8_t *codes, uint8_t *scales,
		    const void *src, nck_dtype dtype, size_t n, float global)
{
	int rc = nck_quant_check_nvfp4(codes, scales, src, dtype, n);

	if (rc < 0)
		return rc;
	be = or_cpu(be);
	rc = be->nvfp4(be, codes, scales, src, dtype, n, global);
	if (fall_back(be, rc))
		rc = cpu_nvfp4(&cpu_backend, codes, scales, src, dtype, n, global);
	return rc;
}
