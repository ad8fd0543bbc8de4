/* embr recall: recall@k of result ids against ground-truth ids (embr_recall_at_k: the
 * ann-benchmarks and faiss definition, see embr/index.h). */
#include "commands.h"

#include <stdlib.h>

static int cmd_recall(int argc, char **argv) {
  const char *truth_path = NULL, *ids_path = NULL;
  int64_t k = 10;
  int json = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--truth", NULL, &truth_path, "FILE", "ground-truth ids (.ivecs), best first"),
      OPT_STR_REQ("--ids", NULL, &ids_path, "FILE", "result ids (.ivecs), best first"),
      OPT_INT("-k", "--k", &k, "K", "cut-off", "10", 1, 100000),
      OPT_JSON(&json),
  };
  cli_command cmd = {"Recall@k of search results against ground truth.",
                     "embr recall --truth T.ivecs --ids R.ivecs [-k K] [--json]",
                     "recall@k = mean over queries of |distinct ids of the first k results ∩ first k true neighbours| / k.\n"
                     "Also prints 1-recall@1 (fraction of queries whose first result is the true nearest).",
                     opts, CLI_NOPTS(opts), 0, 0, NULL, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  int32_t *truth = NULL, *ids = NULL;
  int64_t tn = 0, td = 0, rn = 0, rd = 0;
  int rc = embr_ivecs_read(truth_path, &truth, &tn, &td);
  if (rc) return cli_fail(rc);
  rc = embr_ivecs_read(ids_path, &ids, &rn, &rd);
  if (rc) {
    embr_free(truth);
    return cli_fail(rc);
  }
  if (tn != rn) {
    rc = cli_fail(embr_error(EMBR_EDIM, "%s has %lld queries but %s has %lld", ids_path,
                                       (long long)rn, truth_path, (long long)tn));
  } else if (td < k || rd < k) {
    rc = cli_fail(embr_error(EMBR_EDIM, "k=%lld but %s has %lld columns and %s has %lld",
                                       (long long)k, truth_path, (long long)td, ids_path, (long long)rd));
  }
  /* The library's recall takes int64 result ids (what searches return). */
  int64_t *ids64 = rc ? NULL : malloc(sizeof(int64_t) * (size_t)(rn * rd + 1));
  if (!rc && !ids64) rc = cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  for (int64_t i = 0; !rc && i < rn * rd; i++) ids64[i] = ids[i];
  double recall = 0, r1 = 0;
  int s = rc ? 0 : embr_recall_at_k(ids64, rd, truth, td, tn, (int)k, &recall);
  if (!rc && !s) s = embr_recall_at_k(ids64, rd, truth, td, tn, 1, &r1);
  if (s) rc = cli_fail(s);
  free(ids64);
  if (!rc) {
    if (json)
      printf("{\"k\":%lld,\"queries\":%lld,\"recall\":%.6f,\"recall_at_1\":%.6f}\n", (long long)k,
             (long long)tn, recall, r1);
    else
      printf("recall@%lld = %.4f  (1-recall@1 = %.4f, %lld queries)\n", (long long)k, recall, r1,
             (long long)tn);
  }
  embr_free(truth);
  embr_free(ids);
  return rc;
}

const cli_entry cli_recall = {"recall", "recall@k of result ids against ground truth", cmd_recall, NULL, 0, NULL};
