/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of layout detection over synthetic listings (no member is
 * read): which reader each checkpoint layout goes to, the layout's names,
 * rank grid, distributed directory and config, and the precedence where a
 * listing fits several layouts. The expectations are the layout rules
 * written out by hand (NeMo's inject_model_parallel_rank directory names,
 * Megatron-LM's get_checkpoint_name and iter_NNNNNNN/release/ trackers,
 * NeMo 2's context/ + weights/, TensorRT-LLM's rank{R}.safetensors), not
 * the detector's output.
 */
#include <errno.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "nck_test.h"

#define MAX_ENTRIES 16

/* A listing of files (directories are implied by the paths). */
typedef struct detect_case {
	nck_container c;
	nck_entry entries[MAX_ENTRIES];
	nck_arena arena;
	nck_layout l;
	const nck_catalog_reader *reader;
	nck_diag diag;
	char msg[512];
	int rc;
} detect_case;

/* Runs detection over the NULL-terminated file paths. */
static void detect_run(detect_case *t, const char *const *paths)
{
	size_t n = 0;

	memset(t, 0, sizeof(*t));
	for (; paths[n]; n++)
		t->entries[n] = (nck_entry){ .path = paths[n], .kind = NCK_ENTRY_FILE,
					     .mode = 0644 };
	t->c.path = (char *)"ckpt";
	t->c.entries = t->entries;
	t->c.n_entries = n;
	nck_arena_init(&t->arena);
	nck_diag_init(&t->diag);
	t->rc = nck_layout_detect(&t->l, &t->reader, &t->c, &t->arena, &t->diag);
	nck_diag_format(&t->diag, t->msg, sizeof(t->msg));
}

static void detect_done(detect_case *t)
{
	nck_arena_dispose(&t->arena);
}

#define DETECT(t, ...)                                                     \
	do {                                                               \
		static const char *const paths_[] = { __VA_ARGS__, NULL }; \
		detect_run((t), paths_);                                   \
	} while (0)

NCK_TEST(detect_nemo2)
{
	detect_case t;

	DETECT(&t, "context/model.yaml", "context/io.json", "weights/metadata.json",
	       "weights/.metadata", "weights/__0_0.distcp");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_nemo2_dist_reader);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_DIST);
	ASSERT_EQ_STR(t.l.format, "nemo2");
	ASSERT_EQ_STR(t.l.name, "torch_dist");
	ASSERT_EQ_STR(t.l.dist_dir, "weights");
	ASSERT_EQ_STR(t.l.config->path, "context/model.yaml");
	detect_done(&t);

	/* NeMo 2 comes before NeMo 1's distributed layout; weights/ needs context/. */
	DETECT(&t, "context/model.yaml", "weights/metadata.json", "model_weights/metadata.json");
	ASSERT_TRUE(t.reader == &nck_catalog_nemo2_dist_reader);
	detect_done(&t);
	DETECT(&t, "weights/metadata.json");
	ASSERT_TRUE(t.reader == NULL);
	detect_done(&t);
}

NCK_TEST(detect_nemo_distributed_before_single)
{
	detect_case t;

	/* A .nemo with both is read by its distributed weights. */
	DETECT(&t, "model_config.yaml", "model_weights.ckpt", "model_weights/metadata.json",
	       "model_weights/.metadata");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_nemo_dist_reader);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_DIST);
	ASSERT_EQ_STR(t.l.format, "nemo");
	ASSERT_EQ_STR(t.l.name, "distributed");
	ASSERT_EQ_STR(t.l.dist_dir, "model_weights");
	ASSERT_EQ_STR(t.l.config->path, "model_config.yaml");
	detect_done(&t);
}

NCK_TEST(detect_nemo_single)
{
	detect_case t;

	DETECT(&t, "model_config.yaml", "model_weights.ckpt", "abc_tokenizer.model");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_nemo_legacy_reader);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_NEMO_SINGLE);
	ASSERT_EQ_STR(t.l.format, "nemo");
	ASSERT_EQ_STR(t.l.name, "single");
	ASSERT_EQ_INT(t.l.tp, 1);
	ASSERT_EQ_INT(t.l.pp, 1);
	ASSERT_EQ_INT(t.l.n_ranks, 1);
	ASSERT_EQ_STR(t.l.ranks[0].entry->path, "model_weights.ckpt");
	ASSERT_EQ_STR(t.l.tokenizer->path, "abc_tokenizer.model");
	detect_done(&t);
}

NCK_TEST(detect_nemo_tp_and_tp_pp)
{
	detect_case t;

	DETECT(&t, "model_config.yaml", "mp_rank_01/model_weights.ckpt",
	       "mp_rank_00/model_weights.ckpt");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_nemo_legacy_reader);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_NEMO_TP);
	ASSERT_EQ_STR(t.l.name, "tp");
	ASSERT_EQ_INT(t.l.tp, 2);
	ASSERT_EQ_INT(t.l.pp, 1);
	ASSERT_EQ_STR(t.l.ranks[1].entry->path, "mp_rank_01/model_weights.ckpt");
	detect_done(&t);

	/* Rank index pp * T + tp, whatever the listing's order. */
	DETECT(&t, "tp_rank_01_pp_rank_001/model_weights.ckpt",
	       "tp_rank_00_pp_rank_001/model_weights.ckpt",
	       "tp_rank_01_pp_rank_000/model_weights.ckpt",
	       "tp_rank_00_pp_rank_000/model_weights.ckpt");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_NEMO_TP_PP);
	ASSERT_EQ_STR(t.l.name, "tp_pp");
	ASSERT_EQ_INT(t.l.tp, 2);
	ASSERT_EQ_INT(t.l.pp, 2);
	ASSERT_EQ_STR(t.l.ranks[2].entry->path, "tp_rank_00_pp_rank_001/model_weights.ckpt");
	ASSERT_EQ_INT(t.l.ranks[2].tp, 0);
	ASSERT_EQ_INT(t.l.ranks[2].pp, 1);
	detect_done(&t);

	/* tp_rank_TT_pp_rank_PPP names say tp_pp even at PP = 1. */
	DETECT(&t, "tp_rank_00_pp_rank_000/model_weights.ckpt");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_EQ_STR(t.l.name, "tp_pp");
	ASSERT_EQ_INT(t.l.pp, 1);
	detect_done(&t);
}

NCK_TEST(detect_rank_grid_errors)
{
	detect_case t;

	DETECT(&t, "mp_rank_00/model_weights.ckpt", "mp_rank_02/model_weights.ckpt");
	ASSERT_EQ_INT(t.rc, -EBADMSG);
	ASSERT_CONTAINS(t.msg, "rank tp=1 pp=0 is missing (model_weights.ckpt)");
	detect_done(&t);

	/* mp_rank_00 and tp_rank_00_pp_rank_000 both name rank (0, 0). */
	DETECT(&t, "mp_rank_00/model_weights.ckpt", "tp_rank_00_pp_rank_000/model_weights.ckpt");
	ASSERT_EQ_INT(t.rc, -EBADMSG);
	ASSERT_CONTAINS(t.msg, "two files for rank tp=0 pp=0");
	detect_done(&t);

	DETECT(&t, "mp_rank_99_999/model_optim_rng.pt");
	ASSERT_EQ_INT(t.rc, -EBADMSG);
	ASSERT_CONTAINS(t.msg, "100 x 1000 ranks: too many");
	detect_done(&t);
}

NCK_TEST(detect_qnemo_between_nemo_and_megatron_ranks)
{
	detect_case t;

	DETECT(&t, "config.json", "rank0.safetensors", "rank1.safetensors", "tokenizer.model");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_qnemo_reader);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_QNEMO);
	ASSERT_EQ_STR(t.l.format, "qnemo");
	ASSERT_EQ_STR(t.l.name, "trtllm");
	ASSERT_EQ_STR(t.l.config->path, "config.json");
	detect_done(&t);

	/* NeMo rank files come first. */
	DETECT(&t, "config.json", "rank0.safetensors", "mp_rank_00/model_weights.ckpt");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_nemo_legacy_reader);
	ASSERT_EQ_STR(t.l.format, "nemo");
	detect_done(&t);

	/* ...Megatron-LM's come after. */
	DETECT(&t, "config.json", "rank0.safetensors", "mp_rank_00/model_optim_rng.pt");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_qnemo_reader);
	detect_done(&t);
}

NCK_TEST(detect_megatron_legacy)
{
	detect_case t;

	/* The newest iteration's ranks. */
	DETECT(&t, "latest_checkpointed_iteration.txt",
	       "iter_0000010/mp_rank_00/model_optim_rng.pt",
	       "iter_0000020/mp_rank_00/model_optim_rng.pt",
	       "iter_0000020/mp_rank_01/model_optim_rng.pt");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_megatron_legacy_reader);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_MEGATRON);
	ASSERT_EQ_STR(t.l.format, "megatron");
	ASSERT_EQ_STR(t.l.name, "tp");
	ASSERT_EQ_INT(t.l.tp, 2);
	ASSERT_EQ_STR(t.l.ranks[0].entry->path, "iter_0000020/mp_rank_00/model_optim_rng.pt");
	ASSERT_TRUE(t.l.config == NULL);
	detect_done(&t);

	DETECT(&t, "release/mp_rank_00_000/model_optim_rng.pt",
	       "release/mp_rank_00_001/model_optim_rng.pt");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_EQ_STR(t.l.name, "tp_pp");
	ASSERT_EQ_INT(t.l.tp, 1);
	ASSERT_EQ_INT(t.l.pp, 2);
	detect_done(&t);

	/* Rank files win over the iteration's metadata.json. */
	DETECT(&t, "iter_0000005/mp_rank_00/model_optim_rng.pt", "iter_0000005/metadata.json");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_megatron_legacy_reader);
	detect_done(&t);

	/* A missing rank of the newest iteration is an error, not another layout. */
	DETECT(&t, "iter_0000001/mp_rank_01/model_optim_rng.pt");
	ASSERT_EQ_INT(t.rc, -EBADMSG);
	ASSERT_CONTAINS(t.msg, "rank tp=0 pp=0 is missing");
	detect_done(&t);
}

NCK_TEST(detect_torch_dist_and_dcp)
{
	detect_case t;

	DETECT(&t, "iter_0000003/metadata.json", "iter_0000007/metadata.json",
	       "iter_0000007/.metadata");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_megatron_dist_reader);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_DIST);
	ASSERT_EQ_STR(t.l.format, "megatron");
	ASSERT_EQ_STR(t.l.name, "torch_dist");
	ASSERT_EQ_STR(t.l.dist_dir, "iter_0000007");
	detect_done(&t);

	DETECT(&t, "release/metadata.json", "release/.metadata");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_megatron_dist_reader);
	ASSERT_EQ_STR(t.l.dist_dir, "release");
	detect_done(&t);

	/* An iteration's metadata.json comes before the root's. */
	DETECT(&t, "iter_0000002/metadata.json", ".metadata", "metadata.json");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_megatron_dist_reader);
	ASSERT_EQ_STR(t.l.dist_dir, "iter_0000002");
	detect_done(&t);

	DETECT(&t, ".metadata", "metadata.json", "__0_0.distcp");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_root_dist_reader);
	ASSERT_EQ_STR(t.l.format, "megatron");
	ASSERT_EQ_STR(t.l.dist_dir, "");
	detect_done(&t);

	DETECT(&t, ".metadata", "__0_0.distcp", "__1_0.distcp");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_root_dist_reader);
	ASSERT_EQ_STR(t.l.format, "dcp");
	ASSERT_EQ_STR(t.l.name, "torch_dist");
	detect_done(&t);

	/* .metadata alone is not a checkpoint. */
	DETECT(&t, ".metadata");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == NULL);
	detect_done(&t);
}

NCK_TEST(detect_safetensors_and_none)
{
	detect_case t;

	DETECT(&t, "config.json", "model-00001-of-00002.safetensors",
	       "model-00002-of-00002.safetensors", "model.safetensors.index.json");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == &nck_catalog_safetensors_reader);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_SAFETENSORS);
	ASSERT_EQ_STR(t.l.format, "safetensors");
	ASSERT_EQ_STR(t.l.name, "files");
	detect_done(&t);

	/* Only root files count; ".safetensors" itself is no name. */
	DETECT(&t, "sub/model.safetensors", ".safetensors", "tokenizer.json");
	ASSERT_EQ_INT(t.rc, 0);
	ASSERT_TRUE(t.reader == NULL);
	ASSERT_EQ_INT(t.l.kind, NCK_LAYOUT_NONE);
	ASSERT_EQ_STR(t.l.format, "unknown");
	ASSERT_EQ_STR(t.l.name, "none");
	ASSERT_EQ_STR(t.l.tokenizer->path, "tokenizer.json");
	detect_done(&t);
}
