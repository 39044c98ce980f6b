/* SPDX-License-Identifier: MIT */
/*
 * The CUDA quantization backend (libnemockpt_cuda.so): an nck_quant_backend
 * table whose operations move host buffers through the GPU in chunks.
 * nck_quant (src/quant/backend.c) loads this library with dlopen and calls
 * its one exported symbol, nck_quant_cuda_backend(); nothing else links it,
 * and it links nothing of the project (only the CUDA runtime, statically).
 *
 * Data path of one call. The input is cut into chunks of whole units
 * (elements; rows for INT4 scales; row pairs for INT4 packing; blocks of
 * 16 for NVFP4, whose block scales are a second output) of at most
 * CHUNK_BYTES per buffer, and chunk c runs on stream c % 2 of a "slot":
 * host -> device copy, kernel, device -> host copy. Two streams let the
 * copies of one chunk overlap the kernel and copies of the other (an H100
 * has a copy engine per direction).
 *  - Large calls (>= REGISTER_MIN input bytes, 64 MiB; the environment
 *    variable NEMOCKPT_CUDA_REGISTER_MIN, read when the backend is created,
 *    overrides it in bytes) page-lock the caller's buffers with
 *    cudaHostRegister and copy from/to them directly: the host only
 *    enqueues, then waits once.
 *  - Other calls (or when registering fails) stage through the slot's
 *    pinned buffers (cudaHostAlloc): while the GPU works on chunk c the
 *    host copies chunk c+1 in and chunk c-1 out.
 * amax accumulates an atomic max of float bits per stream; the host takes
 * the max of the two.
 *
 * Ownership: one `struct gpu` per device, created on first request and kept
 * until exit, with up to NSLOTS slots (streams, pinned and device buffers)
 * allocated when concurrency first needs them.
 * Thread-safety: operations may be called from any threads at once; each
 * call takes a free slot (waiting on a condition variable when all are in
 * use), so up to NSLOTS calls run on the device concurrently.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu/kernels.h"
#include "quant/elem.h"
#include "quant/quant.h"

#define NSTREAMS 2
#define NSLOTS 4
#define MAX_DEVICES 64
#define CHUNK_BYTES ((size_t)8 << 20)
#define REGISTER_MIN ((size_t)64 << 20)

#define NCK_EXPORT __attribute__((visibility("default")))

/* The library's one exported symbol (NCK_QUANT_CUDA_SYMBOL, of type nck_quant_cuda_entry). */
NCK_EXPORT const nck_quant_backend *nck_quant_cuda_backend(unsigned abi, int device, char *err,
							   size_t errlen);

enum op_kind { OP_AMAX, OP_FP8, OP_SCALES, OP_PACK, OP_NVFP4 };

struct slot {
	bool ready, busy;
	cudaStream_t stream[NSTREAMS];
	void *h_in[NSTREAMS], *h_aux[NSTREAMS], *h_out[NSTREAMS]; /* pinned staging */
	void *d_in[NSTREAMS], *d_aux[NSTREAMS], *d_out[NSTREAMS];
	unsigned *d_max; /* NSTREAMS amax accumulators */
	unsigned *h_max; /* pinned copies of them */
};

struct gpu {
	nck_quant_backend be; /* first: the table handed out */
	int device;
	size_t register_min; /* input bytes from which buffers are page-locked */
	char name[sizeof(((struct cudaDeviceProp *)0)->name) + 32];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct slot slots[NSLOTS];
};

/*
 * One call: `units` units of in_unit input, aux_unit aux, out_unit output
 * bytes. aux is a second input (INT4 scales for packing), or, when
 * aux_out, a second output written to dst2 (NVFP4 block scales).
 */
struct op {
	enum op_kind kind;
	nck_dtype dtype;
	size_t cols, group;
	float scale;
	const unsigned char *src, *aux;
	unsigned char *dst, *dst2;
	bool aux_out;
	size_t units, in_unit, aux_unit, out_unit;
	unsigned amax_bits;
};

static int cuda_errno(cudaError_t e)
{
	if (e == cudaSuccess)
		return 0;
	return e == cudaErrorMemoryAllocation ? -ENOMEM : -EIO;
}

/* ---- slots ------------------------------------------------------------------------- */

/* Releases what a slot holds (NULL-safe members); `busy` stays as it is. */
static void slot_free(struct slot *sl)
{
	bool busy = sl->busy;

	for (int s = 0; s < NSTREAMS; s++) {
		if (sl->stream[s])
			cudaStreamDestroy(sl->stream[s]);
		cudaFreeHost(sl->h_in[s]);
		cudaFreeHost(sl->h_aux[s]);
		cudaFreeHost(sl->h_out[s]);
		cudaFree(sl->d_in[s]);
		cudaFree(sl->d_aux[s]);
		cudaFree(sl->d_out[s]);
	}
	cudaFree(sl->d_max);
	cudaFreeHost(sl->h_max);
	memset(sl, 0, sizeof(*sl));
	sl->busy = busy;
}

/* Creates a slot's streams and buffers on the current device. */
static cudaError_t slot_init(struct slot *sl)
{
	void *dmax = NULL, *hmax = NULL;
	cudaError_t e = cudaSuccess;

	for (int s = 0; s < NSTREAMS && e == cudaSuccess; s++) {
		e = cudaStreamCreateWithFlags(&sl->stream[s], cudaStreamNonBlocking);
		if (e == cudaSuccess)
			e = cudaHostAlloc(&sl->h_in[s], CHUNK_BYTES, cudaHostAllocDefault);
		if (e == cudaSuccess)
			e = cudaHostAlloc(&sl->h_aux[s], CHUNK_BYTES, cudaHostAllocDefault);
		if (e == cudaSuccess)
			e = cudaHostAlloc(&sl->h_out[s], CHUNK_BYTES, cudaHostAllocDefault);
		if (e == cudaSuccess)
			e = cudaMalloc(&sl->d_in[s], CHUNK_BYTES);
		if (e == cudaSuccess)
			e = cudaMalloc(&sl->d_aux[s], CHUNK_BYTES);
		if (e == cudaSuccess)
			e = cudaMalloc(&sl->d_out[s], CHUNK_BYTES);
	}
	if (e == cudaSuccess)
		e = cudaMalloc(&dmax, NSTREAMS * sizeof(unsigned));
	sl->d_max = dmax;
	if (e == cudaSuccess)
		e = cudaHostAlloc(&hmax, NSTREAMS * sizeof(unsigned), cudaHostAllocDefault);
	sl->h_max = hmax;
	if (e != cudaSuccess)
		slot_free(sl);
	else
		sl->ready = true;
	return e;
}

/* Takes a free slot, preferring one already set up; waits when all are busy. */
static struct slot *slot_take(struct gpu *g)
{
	struct slot *sl = NULL;

	pthread_mutex_lock(&g->lock);
	while (!sl) {
		for (int i = 0; i < NSLOTS && !sl; i++)
			if (!g->slots[i].busy && g->slots[i].ready)
				sl = &g->slots[i];
		for (int i = 0; i < NSLOTS && !sl; i++)
			if (!g->slots[i].busy)
				sl = &g->slots[i];
		if (!sl)
			pthread_cond_wait(&g->cond, &g->lock);
	}
	sl->busy = true;
	pthread_mutex_unlock(&g->lock);
	return sl;
}

static void slot_give(struct gpu *g, struct slot *sl)
{
	pthread_mutex_lock(&g->lock);
	sl->busy = false;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* ---- one chunk ------------------------------------------------------------------------- */

/* Enqueues the kernel of `units` units of `op` on stream s of the slot. */
static cudaError_t chunk_kernel(const struct op *op, struct slot *sl, int s, size_t units)
{
	cudaStream_t st = sl->stream[s];

	switch (op->kind) {
	case OP_AMAX:
		return nck_gpu_amax(sl->d_max + s, sl->d_in[s], op->dtype, units, st);
	case OP_FP8:
		return nck_gpu_fp8(sl->d_out[s], sl->d_in[s], op->dtype, units, op->scale, st);
	case OP_SCALES:
		return nck_gpu_int4_scales(sl->d_out[s], sl->d_in[s], op->dtype, units, op->cols,
					   op->group, st);
	case OP_PACK:
		return nck_gpu_int4_pack(sl->d_out[s], sl->d_in[s], op->dtype, 2 * units, op->cols,
					 op->group, sl->d_aux[s], st);
	default:
		return nck_gpu_nvfp4(sl->d_out[s], sl->d_aux[s], sl->d_in[s], op->dtype,
				     units * NCK_QE_NVFP4_BLOCK, op->scale, st);
	}
}

/*
 * Enqueues chunk [first, first + units) on stream s: inputs from `in`/`aux`
 * (host pointers to the chunk, pinned), the kernel, the output to `out`
 * (and to `aux` when the op's aux is an output).
 */
static cudaError_t chunk_enqueue(const struct op *op, struct slot *sl, int s, size_t units,
				 const void *in, const void *aux, void *out)
{
	cudaStream_t st = sl->stream[s];
	cudaError_t e = cudaMemcpyAsync(sl->d_in[s], in, units * op->in_unit,
					cudaMemcpyHostToDevice, st);

	if (e == cudaSuccess && op->aux_unit && !op->aux_out)
		e = cudaMemcpyAsync(sl->d_aux[s], aux, units * op->aux_unit,
				    cudaMemcpyHostToDevice, st);
	if (e == cudaSuccess)
		e = chunk_kernel(op, sl, s, units);
	if (e == cudaSuccess && op->out_unit)
		e = cudaMemcpyAsync(out, sl->d_out[s], units * op->out_unit,
				    cudaMemcpyDeviceToHost, st);
	if (e == cudaSuccess && op->aux_out)
		e = cudaMemcpyAsync((void *)aux, sl->d_aux[s], units * op->aux_unit,
				    cudaMemcpyDeviceToHost, st);
	return e;
}

/* Units per chunk: every buffer of a chunk fits in CHUNK_BYTES; 0 if a unit does not. */
static size_t chunk_units(const struct op *op)
{
	size_t big = op->in_unit;

	big = op->aux_unit > big ? op->aux_unit : big;
	big = op->out_unit > big ? op->out_unit : big;
	return CHUNK_BYTES / big;
}

/* ---- whole calls ----------------------------------------------------------------------- */

/* Waits for both streams; the first error wins. */
static cudaError_t sync_streams(struct slot *sl, cudaError_t e)
{
	for (int s = 0; s < NSTREAMS; s++) {
		cudaError_t e2 = cudaStreamSynchronize(sl->stream[s]);

		e = e == cudaSuccess ? e2 : e;
	}
	return e;
}

/* The caller's buffers are page-locked: the host only enqueues. */
static cudaError_t run_direct(const struct op *op, struct slot *sl)
{
	size_t cu = chunk_units(op);
	cudaError_t e = cudaSuccess;

	for (size_t c = 0, at = 0; at < op->units && e == cudaSuccess; c++, at += cu) {
		size_t u = op->units - at < cu ? op->units - at : cu;

		const unsigned char *aux = op->aux_out ? op->dst2 : op->aux;

		e = chunk_enqueue(op, sl, (int)(c % NSTREAMS), u, op->src + at * op->in_unit,
				  aux ? aux + at * op->aux_unit : NULL,
				  op->dst ? op->dst + at * op->out_unit : NULL);
	}
	return sync_streams(sl, e);
}

/* Copies a finished staged chunk (units at `at`) of stream s out to the caller. */
static cudaError_t staged_finish(const struct op *op, struct slot *sl, int s, size_t at,
				 size_t units)
{
	cudaError_t e = cudaStreamSynchronize(sl->stream[s]);

	if (e == cudaSuccess && op->out_unit && units)
		memcpy(op->dst + at * op->out_unit, sl->h_out[s], units * op->out_unit);
	if (e == cudaSuccess && op->aux_out && units)
		memcpy(op->dst2 + at * op->aux_unit, sl->h_aux[s], units * op->aux_unit);
	return e;
}

/* Stages every chunk through the slot's pinned buffers. */
static cudaError_t run_staged(const struct op *op, struct slot *sl)
{
	size_t cu = chunk_units(op), pend_at[NSTREAMS] = { 0 }, pend_n[NSTREAMS] = { 0 };
	cudaError_t e = cudaSuccess;

	for (size_t c = 0, at = 0; at < op->units && e == cudaSuccess; c++, at += cu) {
		int s = (int)(c % NSTREAMS);
		size_t u = op->units - at < cu ? op->units - at : cu;

		e = staged_finish(op, sl, s, pend_at[s], pend_n[s]);
		if (e != cudaSuccess)
			break;
		memcpy(sl->h_in[s], op->src + at * op->in_unit, u * op->in_unit);
		if (op->aux_unit && !op->aux_out)
			memcpy(sl->h_aux[s], op->aux + at * op->aux_unit, u * op->aux_unit);
		e = chunk_enqueue(op, sl, s, u, sl->h_in[s], sl->h_aux[s], sl->h_out[s]);
		pend_at[s] = at;
		pend_n[s] = u;
	}
	for (int s = 0; s < NSTREAMS; s++) {
		cudaError_t e2 = staged_finish(op, sl, s, pend_at[s], e == cudaSuccess ? pend_n[s] : 0);

		e = e == cudaSuccess ? e2 : e;
	}
	return e;
}

/* Page-locks [p, p + len) for direct copies; false (error cleared) if refused. */
static bool host_register(const void *p, size_t len, bool readonly)
{
	unsigned flags = readonly ? cudaHostRegisterReadOnly : cudaHostRegisterDefault;

	if (cudaHostRegister((void *)p, len, flags) == cudaSuccess)
		return true;
	cudaGetLastError();
	if (readonly && cudaHostRegister((void *)p, len, cudaHostRegisterDefault) == cudaSuccess)
		return true;
	cudaGetLastError();
	return false;
}

/* Runs the chunks, directly when the buffers can be page-locked, else staged. */
static cudaError_t run_chunks(const struct gpu *g, const struct op *op, struct slot *sl)
{
	size_t in_bytes = op->units * op->in_unit, out_bytes = op->units * op->out_unit;
	size_t aux_bytes = op->units * op->aux_unit;
	const unsigned char *aux = op->aux_out ? op->dst2 : op->aux;
	bool src_reg = false, dst_reg = false, aux_reg = false;
	cudaError_t e;

	if (in_bytes >= g->register_min) {
		src_reg = host_register(op->src, in_bytes, true);
		dst_reg = !out_bytes || (src_reg && host_register(op->dst, out_bytes, false));
		aux_reg = !aux_bytes ||
			  (src_reg && dst_reg && host_register(aux, aux_bytes, !op->aux_out));
	}
	if (src_reg && dst_reg && aux_reg)
		e = run_direct(op, sl);
	else
		e = run_staged(op, sl);
	if (src_reg)
		cudaHostUnregister((void *)op->src);
	if (src_reg && dst_reg && out_bytes)
		cudaHostUnregister(op->dst);
	if (src_reg && dst_reg && aux_reg && aux_bytes)
		cudaHostUnregister((void *)aux);
	return e;
}

/* Runs `op` on device g with a free slot; -ENOTSUP if a unit exceeds a chunk. */
static int run_op(const nck_quant_backend *be, struct op *op)
{
	struct gpu *g = (struct gpu *)be;
	struct slot *sl;
	cudaError_t e;

	if (op->units == 0)
		return 0;
	if (chunk_units(op) == 0)
		return -ENOTSUP;
	e = cudaSetDevice(g->device);
	if (e != cudaSuccess)
		return cuda_errno(e);
	sl = slot_take(g);
	e = sl->ready ? cudaSuccess : slot_init(sl);
	if (e == cudaSuccess && op->kind == OP_AMAX)
		e = cudaMemsetAsync(sl->d_max, 0, NSTREAMS * sizeof(unsigned), sl->stream[0]);
	if (e == cudaSuccess && op->kind == OP_AMAX)
		e = cudaStreamSynchronize(sl->stream[0]);
	if (e == cudaSuccess)
		e = run_chunks(g, op, sl);
	if (e == cudaSuccess && op->kind == OP_AMAX)
		e = cudaMemcpy(sl->h_max, sl->d_max, NSTREAMS * sizeof(unsigned),
			       cudaMemcpyDeviceToHost);
	for (int s = 0; e == cudaSuccess && op->kind == OP_AMAX && s < NSTREAMS; s++)
		op->amax_bits = sl->h_max[s] > op->amax_bits ? sl->h_max[s] : op->amax_bits;
	slot_give(g, sl);
	return cuda_errno(e);
}

/* ---- the table's operations ---------------------------------------------------------------- */

static size_t esize(nck_dtype dtype)
{
	return dtype == NCK_DTYPE_F32 ? 4 : 2;
}

static int gpu_amax(const nck_quant_backend *be, float *amax, const void *src, nck_dtype dtype,
		    size_t n)
{
	struct op op = { .kind = OP_AMAX, .dtype = dtype, .src = src, .units = n,
			 .in_unit = esize(dtype) };
	int rc = run_op(be, &op);

	if (rc == 0)
		*amax = nck_qe_float(op.amax_bits);
	return rc;
}

static int gpu_fp8(const nck_quant_backend *be, uint8_t *dst, const void *src, nck_dtype dtype,
		   size_t n, float scale)
{
	struct op op = { .kind = OP_FP8, .dtype = dtype, .scale = scale, .src = src, .dst = dst,
			 .units = n, .in_unit = esize(dtype), .out_unit = 1 };

	return run_op(be, &op);
}

static int gpu_int4_scales(const nck_quant_backend *be, float *scales, const void *src,
			   nck_dtype dtype, size_t rows, size_t cols, size_t group)
{
	struct op op = { .kind = OP_SCALES, .dtype = dtype, .cols = cols, .group = group,
			 .src = src, .dst = (unsigned char *)scales, .units = cols ? rows : 0,
			 .in_unit = cols * esize(dtype), .out_unit = cols / group * sizeof(float) };

	return run_op(be, &op);
}

static int gpu_int4_pack(const nck_quant_backend *be, uint8_t *dst, const void *src,
			 nck_dtype dtype, size_t rows, size_t cols, size_t group,
			 const float *scales)
{
	struct op op = { .kind = OP_PACK, .dtype = dtype, .cols = cols, .group = group,
			 .src = src, .aux = (const unsigned char *)scales, .dst = dst,
			 .units = cols ? rows / 2 : 0, .in_unit = 2 * cols * esize(dtype),
			 .aux_unit = 2 * (cols / group) * sizeof(float), .out_unit = cols };

	return run_op(be, &op);
}

static int gpu_nvfp4(const nck_quant_backend *be, uint8_t *codes, uint8_t *scales,
		     const void *src, nck_dtype dtype, size_t n, float global)
{
	struct op op = { .kind = OP_NVFP4, .dtype = dtype, .scale = global, .src = src,
			 .dst = codes, .dst2 = scales, .aux_out = true,
			 .units = n / NCK_QE_NVFP4_BLOCK,
			 .in_unit = NCK_QE_NVFP4_BLOCK * esize(dtype),
			 .aux_unit = 1, .out_unit = NCK_QE_NVFP4_BLOCK / 2 };

	return run_op(be, &op);
}

/* ---- creation ---------------------------------------------------------------------------- */

/* A tiny end-to-end run that proves the kernels load on this device. */
static int self_test(struct gpu *g, char *err, size_t errlen)
{
	static const float in[16] = { 0.5f, -3.0f, 1e-3f, 2.0f, 7.0f, -0.75f };
	uint8_t out[16], sc = 0;
	float amax = 0, gs = 0.01f;
	int rc = gpu_amax(&g->be, &amax, in, NCK_DTYPE_F32, 4);

	if (rc == 0)
		rc = gpu_fp8(&g->be, out, in, NCK_DTYPE_F32, 4, 1.0f);
	if (rc == 0 && (amax != 3.0f || out[1] != nck_qe_fp8(-3.0f)))
		rc = -EIO;
	if (rc == 0)
		rc = gpu_nvfp4(&g->be, out, &sc, in, NCK_DTYPE_F32, 16, gs);
	/* Element 1 (-3.0) in the high nibble of byte 0, with the host's arithmetic. */
	if (rc == 0 &&
	    (sc != nck_qe_nvfp4_scale(7.0f, nck_qe_mul(6.0f, gs)) ||
	     out[0] >> 4 != nck_qe_e2m1(nck_qe_div(-3.0f, nck_qe_mul(nck_qe_e4m3_value(sc), gs)))))
		rc = -EIO;
	if (rc != 0)
		snprintf(err, errlen, "%s: self-test failed: %s", g->name,
			 cudaGetErrorString(cudaGetLastError()));
	return rc;
}

/* Frees a backend that failed its self-test (no call can be using it). */
static void gpu_free(struct gpu *g)
{
	for (int i = 0; i < NSLOTS; i++)
		if (g->slots[i].ready)
			slot_free(&g->slots[i]);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* Whether `device` exists and can run the kernels (sm_80+); else the reason in err. */
static bool device_usable(int device, struct cudaDeviceProp *prop, char *err, size_t errlen)
{
	int count = 0;
	cudaError_t e = cudaGetDeviceCount(&count);

	if (e != cudaSuccess) {
		snprintf(err, errlen, "%s", cudaGetErrorString(e));
		return false;
	}
	if (device >= count || device >= MAX_DEVICES) {
		snprintf(err, errlen, "no CUDA device %d (%d found)", device, count);
		return false;
	}
	e = cudaGetDeviceProperties(prop, device);
	if (e != cudaSuccess || prop->major < 8) {
		snprintf(err, errlen, "%s", e != cudaSuccess ? cudaGetErrorString(e)
							: "compute capability below 8.0");
		return false;
	}
	return true;
}

/* Builds the backend of a usable device; NULL with the reason in err. */
static struct gpu *gpu_new(int device, char *err, size_t errlen)
{
	static const nck_quant_backend ops = {
		.abi = NCK_QUANT_BACKEND_ABI, .amax = gpu_amax, .fp8 = gpu_fp8,
		.int4_scales = gpu_int4_scales, .int4_pack = gpu_int4_pack, .nvfp4 = gpu_nvfp4,
	};
	struct cudaDeviceProp prop;
	const char *env;
	struct gpu *g;

	if (!device_usable(device, &prop, err, errlen))
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->be = ops;
	g->device = device;
	g->register_min = REGISTER_MIN;
	env = getenv("NEMOCKPT_CUDA_REGISTER_MIN");
	if (env && *env)
		g->register_min = strtoull(env, NULL, 0);
	snprintf(g->name, sizeof(g->name), "cuda:%d (%s)", device, prop.name);
	g->be.name = g->name;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	return g;
}

NCK_EXPORT const nck_quant_backend *nck_quant_cuda_backend(unsigned abi, int device, char *err,
							   size_t errlen)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct gpu *gpus[MAX_DEVICES];
	struct gpu *g;

	if (abi != NCK_QUANT_BACKEND_ABI || device < 0) {
		snprintf(err, errlen, "%s: %s", NCK_QUANT_CUDA_LIBRARY,
			 abi != NCK_QUANT_BACKEND_ABI ? "built for another nemockpt" : "bad device");
		return NULL;
	}
	if (device >= MAX_DEVICES) {
		struct cudaDeviceProp prop;

		device_usable(device, &prop, err, errlen);
		return NULL;
	}
	pthread_mutex_lock(&lock);
	g = gpus[device];
	if (!g) {
		g = gpu_new(device, err, errlen);
		if (g && self_test(g, err, errlen) != 0) {
			gpu_free(g);
			g = NULL; /* tried again at the next request */
		}
		gpus[device] = g;
	}
	pthread_mutex_unlock(&lock);
	return g ? &g->be : NULL;
}
