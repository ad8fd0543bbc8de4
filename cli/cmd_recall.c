/* embr recall: recall@k of result ids against ground-truth ids, as ann-benchmarks and faiss
 * report it: the fraction of each query's true k nearest that appear among its first k results,
 * averaged over queries. */
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
                     "recall@k = mean over queries of |first k results ∩ first k true neighbours| / k.\n"
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
  if (!rc) {
    double hits = 0, top1 = 0;
    for (int64_t q = 0; q < tn; q++) {
      const int32_t *t = truth + q * td, *r = ids + q * rd;
      for (int64_t i = 0; i < k; i++) {
        if (r[i] < 0) continue;
        int dup = 0;
        for (int64_t j = 0; j < i && !dup; j++) dup = r[j] == r[i];
        for (int64_t j = 0; j < k && !dup; j++)
          if (t[j] == r[i]) {
            hits++;
            break;
          }
      }
      top1 += r[0] >= 0 && r[0] == t[0];
    }
    double recall = tn ? hits / ((double)tn * (double)k) : 0.0, r1 = tn ? top1 / (double)tn : 0.0;
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
