/* embr collection: a durable vector store in a directory (SQLite + an ANN index checkpoint):
 * create, add, delete, get, search (with metadata filters), info, compact. */
#include "commands.h"
#include "embr/collection.h"
#include "nn_common.h"

#include <stdlib.h>
#include <string.h>

static int open_collection(const char *dir, int flags, embr_collection **c) {
  int rc = embr_collection_open(c, dir, flags);
  return rc ? cli_fail(rc) : EXIT_OK;
}

/* EMBR_ECHECKPOINT: the change is committed and durable, only the index checkpoint is missing.
 * Reporting that as a failure would make the user retry an add that succeeded (and be told its
 * ids exist): it is a warning, and the command succeeds (docs/collections.md, "Exit status"). */
static int checkpoint_warning(void) {
  fprintf(stderr, "embr %s: warning: %s\n", cli_name(), embr_last_error());
  return EXIT_OK;
}

static int close_collection(embr_collection *c, int rc) {
  int s = embr_collection_close(c);
  if (s == EMBR_ECHECKPOINT && !rc) return checkpoint_warning();
  if (s && !rc) return cli_fail(s);
  return rc;
}

/* ---- line files (ids, JSON lines) ---------------------------------------------------------------- */

typedef embr_lines lines;

static void lines_free(lines *l) { embr_lines_free(l); }

/* Reads a line file through the library (size cap, NUL bytes refused with the line named). */
static int read_lines(const char *path, lines *l) {
  int rc = embr_lines_read(path, -1, NULL, NULL, l);
  return rc ? cli_fail(rc) : EXIT_OK;
}

/* ---- create ------------------------------------------------------------------------------------ */

static int coll_create(int argc, char **argv) {
  const char *metric_name = "l2", *spec = "hnsw", *pos[1];
  int64_t dim = 0;
  cli_opt opts[] = {
      {"--dim", "-d", CLI_INT, &dim, "D", "dimension of the vectors", NULL, 1, 1, 1 << 20, 0, 0},
      OPT_METRIC(&metric_name),
      OPT_STR("--index", "-s|--spec", &spec, "SPEC", "flat | hnsw:M=16,efc=200,ef=64 | ivfflat:nlist=1024 | ivfpq:nlist=1024,m=16", "hnsw"),
  };
  cli_command cmd = {"Create an empty collection in DIR (created if missing; its parent must exist).",
                     "embr collection create DIR --dim D [--metric M] [--index SPEC]", NULL, opts, CLI_NOPTS(opts), 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_metric m;
  if (embr_metric_parse(metric_name, &m)) return cli_usage_error("%s", embr_last_error());
  embr_index *probe = NULL; /* a bad --index is a usage error (exit 2) */
  int rc = embr_index_create(&probe, spec, dim, m);
  embr_index_free(probe);
  if (rc) return rc == EMBR_EINVAL ? cli_usage_error("%s", embr_last_error()) : cli_fail(rc);
  rc = embr_collection_create(NULL, pos[0], dim, m, spec);
  if (rc) return cli_fail(rc);
  return EXIT_OK;
}

/* ---- add --------------------------------------------------------------------------------------- */

typedef struct add_input {
  embr_matrix x;
  lines ids, meta;
  char **gen_ids;  /* "row-<n>" when no --ids */
  char *gen_buf;
} add_input;

static void add_input_free(add_input *in) {
  embr_matrix_free(&in->x);
  lines_free(&in->ids);
  lines_free(&in->meta);
  free(in->gen_ids);
  free(in->gen_buf);
}

/* Default ids continue from the largest internal id ever assigned, so they never collide with
 * ids generated earlier, deleted or not. */
static int generate_ids(embr_collection *c, add_input *in) {
  embr_collection_stats st;
  int rc = embr_collection_info(c, &st);
  if (rc) return cli_fail(rc);
  in->gen_ids = malloc(sizeof(char *) * (size_t)in->x.n);
  in->gen_buf = malloc((size_t)in->x.n * 32);
  if (!in->gen_ids || !in->gen_buf) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  for (int64_t i = 0; i < in->x.n; i++) {
    in->gen_ids[i] = in->gen_buf + i * 32;
    snprintf(in->gen_ids[i], 32, "row-%lld", (long long)(st.max_internal_id + i));
  }
  return EXIT_OK;
}

/* Metadata lines: a JSON object, or empty / "null" for none. */
static void metadata_nulls(lines *meta) {
  for (int64_t i = 0; i < meta->n; i++) {
    const char *s = meta->line[i];
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || !strcmp(s, "null")) meta->line[i] = NULL;
  }
}

static int load_add_input(const char *in, const char *format, const char *ids_path,
                          const char *meta_path, add_input *a) {
  int rc = cli_read_matrix(in, format, &a->x);
  if (!rc && ids_path) rc = read_lines(ids_path, &a->ids);
  if (!rc && meta_path) rc = read_lines(meta_path, &a->meta);
  if (rc) return rc;
  if (ids_path && a->ids.n != a->x.n)
    return cli_fail(embr_error(EMBR_EINVAL, "%s: %lld ids for %lld vectors", ids_path, (long long)a->ids.n, (long long)a->x.n));
  if (meta_path && a->meta.n != a->x.n)
    return cli_fail(embr_error(EMBR_EINVAL, "%s: %lld metadata lines for %lld vectors", meta_path,
                                     (long long)a->meta.n, (long long)a->x.n));
  metadata_nulls(&a->meta);
  return EXIT_OK;
}

/* The files a batch came from, for messages: the library names items by their place in the call,
 * which the user can only find again knowing the files and the batch's first row. */
typedef struct add_files {
  const char *in, *ids, *meta;
} add_files;

static int add_failed(int rc, const add_files *f, int64_t from, int64_t n) {
  char where[160] = "";
  if (f->ids || f->meta)
    snprintf(where, sizeof where, " (ids %s, metadata %s)", f->ids ? f->ids : "generated", f->meta ? f->meta : "none");
  const char *msg = embr_last_error();
  if (from)
    return embr_error(rc, "%s%s: the batch of rows %lld..%lld failed, item 0 = row %lld: %s (the %lld rows before it, in "
                          "earlier batches, were committed; none from row %lld on)",
                      f->in, where, (long long)from, (long long)(from + n - 1), (long long)from, msg, (long long)from,
                      (long long)from);
  return embr_error(rc, "%s%s: %s (nothing was added)", f->in, where, msg);
}

static int add_batches(embr_collection *c, add_input *a, const add_files *f, int64_t batch, int quiet) {
  const char *const *ids = (const char *const *)(a->ids.line ? a->ids.line : a->gen_ids);
  const char *const *meta = (const char *const *)a->meta.line;
  int64_t step = batch > 0 ? batch : a->x.n, done = 0;
  double t0 = embr_now();
  while (done < a->x.n) {
    int64_t n = a->x.n - done < step ? a->x.n - done : step;
    int rc = embr_collection_add(c, a->x.data + done * a->x.ld, n, a->x.dim, a->x.ld, ids + done, meta ? meta + done : NULL);
    if (rc) return cli_fail(add_failed(rc, f, done, n)); /* one line, with what was committed */
    done += n;
  }
  if (!quiet) fprintf(stderr, "added %lld items in %.3f s\n", (long long)done, embr_now() - t0);
  return EXIT_OK;
}

static int coll_add(int argc, char **argv) {
  const char *in = NULL, *format = NULL, *ids_path = NULL, *meta_path = NULL, *pos[1];
  int64_t batch = 0;
  int quiet = 0;
  cli_opt opts[] = {
      OPT_STR_REQ("--input", "-i", &in, "FILE", "vectors: npy, fvecs, csv, tsv, word2vec... or - for stdin (with --format)"),
      OPT_FORMAT(&format),
      OPT_STR("--ids", NULL, &ids_path, "FILE", "one id per line, in the order of the vectors", "row-<n>, continuing"),
      OPT_STR("--metadata", NULL, &meta_path, "FILE", "one JSON object per line (empty or null: none)", "none"),
      OPT_INT("--batch", "-b", &batch, "N", "items per transaction (0 = the whole input at once)", "0", 0, 1e12),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Add vectors (with ids and JSON metadata) to a collection.",
                     "embr collection add DIR -i vectors.npy [--ids ids.txt] [--metadata meta.jsonl] [--batch N]",
                     "Each batch is one transaction: all of it is stored, or (on any error: wrong dimension,\n"
                     "NaN, an id given twice or already present, metadata that is not a JSON object)\n"
                     "none of it. The command returns once the data is durable on disk. Should only the\n"
                     "index checkpoint fail to save (full disk), the data is still committed: a warning\n"
                     "says so and the exit status is 0 (the index is rebuilt at the next open).",
                     opts, CLI_NOPTS(opts), 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  add_input a;
  memset(&a, 0, sizeof a);
  embr_collection *c = NULL;
  int rc = load_add_input(in, format, ids_path, meta_path, &a);
  if (!rc) rc = open_collection(pos[0], EMBR_COLLECTION_RDWR, &c);
  if (!rc && !ids_path) rc = generate_ids(c, &a);
  add_files files = {in, ids_path, meta_path};
  if (!rc) rc = add_batches(c, &a, &files, batch, quiet);
  rc = c ? close_collection(c, rc) : rc;
  add_input_free(&a);
  return rc;
}

/* ---- delete ------------------------------------------------------------------------------------ */

static int coll_delete(int argc, char **argv) {
  const char *ids_path = NULL;
  const char **pos = malloc(sizeof(char *) * (size_t)(argc > 1 ? argc : 1));
  cli_opt opts[] = {OPT_STR("--ids", NULL, &ids_path, "FILE", "ids to delete, one per line", "the ID arguments")};
  cli_command cmd = {"Delete items by id (ids not present are skipped).",
                     "embr collection delete DIR ID... | embr collection delete DIR --ids FILE",
                     "Should only the index checkpoint fail to save (full disk), the deletes are still\n"
                     "committed: a warning says so and the exit status is 0.", opts, CLI_NOPTS(opts),
                     1, argc > 1 ? argc : 1, pos, 0};
  if (!pos) return cli_fail(embr_error(EMBR_ENOMEM, "out of memory"));
  int prc = cli_parse(&cmd, argc, argv);
  if (!prc && cmd.npos < 2 && !ids_path) prc = cli_usage_error("no ids to delete (give IDs or --ids FILE)");
  if (prc) {
    free(pos);
    return prc == CLI_HELP ? EXIT_OK : EXIT_USAGE;
  }
  lines l = {0};
  embr_collection *c = NULL;
  int rc = ids_path ? read_lines(ids_path, &l) : EXIT_OK;
  if (!rc) rc = open_collection(pos[0], EMBR_COLLECTION_RDWR, &c);
  int64_t a = 0, b = 0;
  int s = 0;
  if (!rc && cmd.npos > 1) s = embr_collection_delete(c, pos + 1, cmd.npos - 1, &a);
  if (!rc && !s && l.n) s = embr_collection_delete(c, (const char *const *)l.line, l.n, &b);
  if (s) rc = cli_fail(s);
  if (!rc) printf("deleted %lld of %lld\n", (long long)(a + b), (long long)(cmd.npos - 1 + l.n));
  rc = c ? close_collection(c, rc) : rc;
  lines_free(&l);
  free(pos);
  return rc;
}

/* ---- get --------------------------------------------------------------------------------------- */

static void print_item(const char *id, const float *v, int64_t dim, const char *meta, int json) {
  if (json) {
    printf("{\"id\":");
    cli_json_string(stdout, id);
    printf(",\"vector\":[");
    for (int64_t j = 0; j < dim; j++) {
      if (j) putchar(',');
      cli_json_float(stdout, v[j]);
    }
    printf("],\"metadata\":%s}\n", meta ? meta : "null");
    return;
  }
  printf("id: %s\nvector:", id);
  for (int64_t j = 0; j < dim; j++) printf(" %.9g", (double)v[j]);
  printf("\nmetadata: %s\n", meta ? meta : "none");
}

static int coll_get(int argc, char **argv) {
  const char *pos[2];
  int json = 0;
  cli_opt opts[] = {OPT_JSON(&json)};
  cli_command cmd = {"Print an item: its vector (exactly as stored) and its metadata.",
                     "embr collection get DIR ID [--json]", NULL, opts, CLI_NOPTS(opts), 2, 2, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_collection *c;
  int rc = open_collection(pos[0], EMBR_COLLECTION_RDONLY, &c);
  if (rc) return rc;
  embr_collection_stats st;
  float *v = NULL;
  char *meta = NULL;
  int s = embr_collection_info(c, &st);
  if (!s) s = (v = malloc(sizeof(float) * (size_t)st.dim)) ? 0 : embr_error(EMBR_ENOMEM, "out of memory");
  if (!s) s = embr_collection_get(c, pos[1], v, &meta);
  if (s) rc = cli_fail(s);
  else print_item(pos[1], v, st.dim, meta, json);
  free(v);
  embr_free(meta);
  return close_collection(c, rc);
}

/* ---- search ------------------------------------------------------------------------------------ */

static void print_hits_text(const embr_collection_hits *h) {
  for (int64_t qi = 0; qi < h->nq; qi++)
    for (int j = 0; j < h->k; j++) {
      int64_t i = qi * h->k + j;
      if (!h->ext_ids[i]) break;
      printf("%lld\t%d\t%s\t%.9g", (long long)qi, j + 1, h->ext_ids[i], (double)h->dist[i]);
      if (h->metadata) printf("\t%s", h->metadata[i] ? h->metadata[i] : "null");
      putchar('\n');
    }
}

static void print_hits_json(const embr_collection_hits *h, embr_metric m) {
  printf("{\"metric\":\"%s\",\"k\":%d,\"results\":[", embr_metric_name(m), h->k);
  for (int64_t qi = 0; qi < h->nq; qi++) {
    int n = 0;
    while (n < h->k && h->ext_ids[qi * h->k + n]) n++;
    printf("%s{\"query\":%lld,\"ids\":[", qi ? "," : "", (long long)qi);
    for (int j = 0; j < n; j++) {
      if (j) putchar(',');
      cli_json_string(stdout, h->ext_ids[qi * h->k + j]);
    }
    printf("],\"distances\":[");
    for (int j = 0; j < n; j++) {
      if (j) putchar(',');
      cli_json_float(stdout, h->dist[qi * h->k + j]);
    }
    printf("]");
    if (h->metadata) {
      printf(",\"metadata\":[");
      for (int j = 0; j < n; j++) printf("%s%s", j ? "," : "", h->metadata[qi * h->k + j] ? h->metadata[qi * h->k + j] : "null");
      printf("]");
    }
    printf("}");
  }
  printf("]}\n");
}

/* The queries: a matrix file, or the stored vector of an item (--query-id). */
static int load_queries(embr_collection *c, const char *qpath, const char *qid, const char *format,
                        embr_matrix *q) {
  if (qpath) return cli_read_matrix(qpath, format, q);
  embr_collection_stats st;
  int rc = embr_collection_info(c, &st);
  if (!rc) rc = embr_matrix_alloc(q, 1, st.dim);
  if (!rc) rc = embr_collection_get(c, qid, q->data, NULL);
  return rc ? cli_fail(rc) : EXIT_OK;
}

/* Text queries (--text, --texts) embedded with a CLIP model: unit rows, as `embr embed` writes
 * them, so l2, ip and cosine collections rank them alike. */
static int text_queries(embr_collection *c, const char *text, const char *texts, const char *model, const char *bpe,
                        int quiet, embr_matrix *q) {
  embr_collection_stats st;
  int s = embr_collection_info(c, &st);
  if (s) return cli_fail(s);
  cli_model_src src = {model, NULL, 0};
  embr_model *m = NULL;
  embr_lines l = {0};
  float *emb = NULL;
  int rc = texts ? cli_read_texts(texts, &l) : EXIT_OK;
  if (!rc) rc = cli_load_model(&src, &m);
  if (!rc && embr_model_has_text(m) && embr_model_dim(m) != st.dim)
    rc = cli_error("%s: the model's embeddings have %d dimensions, the collection's vectors %lld", model, embr_model_dim(m),
                   (long long)st.dim);
  if (!rc) rc = cli_text_model(m, model, bpe);
  int64_t n = texts ? l.n : 1;
  if (!rc) rc = cli_embed_texts(m, texts ? (const char *const *)l.line : &text, n, 32, 0, quiet, &emb);
  if (!rc) s = embr_matrix_alloc(q, n, st.dim);
  if (!rc && s) rc = cli_fail(s);
  if (!rc)
    for (int64_t i = 0; i < n; i++) memcpy(q->data + i * q->ld, emb + i * st.dim, sizeof(float) * (size_t)st.dim);
  free(emb);
  embr_lines_free(&l);
  embr_model_free(m);
  return rc;
}

static int coll_search(int argc, char **argv) {
  const char *qpath = NULL, *qid = NULL, *filter = NULL, *format = NULL, *pos[1];
  const char *text = NULL, *texts = NULL, *model = NULL, *bpe = NULL;
  int64_t k = 10, ef = 0, nprobe = 0, threads = 0;
  int json = 0, with_meta = 0, quiet = 0;
  cli_opt opts[] = {
      OPT_STR("--query", NULL, &qpath, "FILE", "query vectors (any matrix format)", NULL),
      OPT_STR("--query-id", NULL, &qid, "ID", "use the stored vector of this item as the query", NULL),
      OPT_STR("--text", NULL, &text, "TEXT", "a text query, embedded with --model (CLIP)", NULL),
      OPT_STR("--texts", NULL, &texts, "FILE", "text queries, one per line, embedded with --model (CLIP)", NULL),
      OPT_STR("--model", NULL, &model, "FILE", "the CLIP model that embeds --text / --texts", NULL),
      OPT_BPE(&bpe),
      OPT_INT("-k", "--k", &k, "K", "results per query", "10", 1, 100000),
      OPT_STR("--filter", "-f", &filter, "EXPR", "metadata filter, e.g. 'genre = \"jazz\" and year >= 1990'", "none"),
      OPT_INT("--ef", NULL, &ef, "N", "HNSW candidate list size (0 = the index's own)", "0", 0, 1000000),
      OPT_INT("--nprobe", NULL, &nprobe, "N", "IVF cells to visit (0 = the index's own)", "0", 0, 1000000),
      OPT_THREADS(&threads),
      OPT_FORMAT(&format),
      OPT_FLAG("--with-metadata", NULL, &with_meta, "print each hit's metadata"),
      OPT_JSON(&json),
      OPT_QUIET(&quiet),
  };
  cli_command cmd = {"Search a collection: k nearest items per query among those the filter admits.",
                     "embr collection search DIR (--query FILE | --query-id ID | --text T --model M) [-k K] [--filter EXPR] [options]",
                     "Prints one line per hit: QUERY<TAB>RANK<TAB>ID<TAB>DISTANCE[<TAB>METADATA].\n"
                     "--text / --texts: embedded by the model's text tower, scaled to unit length (as `embr embed`\n"
                     "writes image rows); use a cosine or ip collection of CLIP image embeddings.\n"
                     "Filters: field = value, !=, <, <=, >, >=, field in [v1, v2], field not in [...],\n"
                     "joined with and / or / not and parentheses; values are \"strings\", numbers, true,\n"
                     "false; fields are names or dotted paths (a.b). See docs/collections.md.",
                     opts, CLI_NOPTS(opts), 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  if (!!qpath + !!qid + !!text + !!texts != 1) return cli_usage_error("give exactly one of --query, --query-id, --text and --texts");
  if ((text || texts) && !model) return cli_usage_error("%s needs --model, the CLIP model that embeds it", text ? "--text" : "--texts");
  if (!(text || texts) && (model || bpe)) return cli_usage_error("%s goes with --text or --texts", model ? "--model" : "--bpe");
  if (filter && embr_collection_filter_check(filter)) return cli_usage_error("%s", embr_last_error());
  embr_collection *c;
  int rc = open_collection(pos[0], EMBR_COLLECTION_RDONLY, &c);
  if (rc) return rc;
  embr_matrix q = EMBR_MATRIX_INIT;
  embr_collection_hits h = {0};
  embr_collection_search_params p = embr_collection_search_params_default();
  p.ef = (int)ef;
  p.nprobe = (int)nprobe;
  p.n_threads = (int)threads;
  p.with_metadata = with_meta;
  rc = text || texts ? text_queries(c, text, texts, model, bpe, quiet, &q) : load_queries(c, qpath, qid, format, &q);
  double t0 = embr_now();
  if (!rc) {
    int s = embr_collection_search(c, q.data, q.n, q.dim, q.ld, (int)k, filter, &p, &h);
    if (s) rc = cli_fail(s);
  }
  if (!rc && !quiet) fprintf(stderr, "searched %lld queries in %.3f s\n", (long long)q.n, embr_now() - t0);
  embr_collection_stats st;
  if (!rc && json && embr_collection_info(c, &st)) rc = cli_fail(EMBR_EIO);
  if (!rc && json) print_hits_json(&h, st.metric);
  else if (!rc) print_hits_text(&h);
  embr_collection_hits_free(&h);
  embr_matrix_free(&q);
  return close_collection(c, rc);
}

/* ---- info and compact -------------------------------------------------------------------------- */

static const char *origin_name(embr_index_origin o) {
  return o == EMBR_INDEX_LOADED ? "loaded" : o == EMBR_INDEX_CAUGHT_UP ? "caught-up" : "rebuilt";
}

static void print_info(const char *dir, const embr_collection_stats *s, int json) {
  if (json) {
    printf("{\"dir\":");
    cli_json_string(stdout, dir);
    printf(",\"dim\":%lld,\"metric\":\"%s\",\"index\":", (long long)s->dim, embr_metric_name(s->metric));
    cli_json_string(stdout, s->index_spec);
    printf(",\"format_version\":%d,\"count\":%lld,\"max_internal_id\":%lld,\"deletes_logged\":%lld,"
           "\"index_items\":%lld,\"index_memory\":%lld,\"index_trained\":%s,\"index_origin\":\"%s\",\"index_note\":",
           s->format_version, (long long)s->count, (long long)s->max_internal_id, (long long)s->deletes_logged,
           (long long)s->index_items, (long long)s->index_memory, s->index_trained ? "true" : "false",
           origin_name(s->index_origin));
    cli_json_string(stdout, s->index_note);
    printf(",\"db_bytes\":%lld,\"index_file_bytes\":%lld}\n", (long long)s->db_bytes, (long long)s->index_file_bytes);
    return;
  }
  printf("collection:      %s\ndimension:       %lld\nmetric:          %s\nindex:           %s\n", dir, (long long)s->dim,
         embr_metric_name(s->metric), s->index_spec);
  printf("items:           %lld\nlargest id:      %lld (internal)\ndeletes logged:  %lld (until compact)\n", (long long)s->count,
         (long long)s->max_internal_id, (long long)s->deletes_logged);
  printf("index:           %lld items, %lld bytes in memory%s\n", (long long)s->index_items, (long long)s->index_memory,
         s->index_trained ? "" : " (untrained: searches are exact)");
  printf("index on open:   %s%s%s\n", origin_name(s->index_origin), s->index_note[0] ? ": " : "", s->index_note);
  printf("files:           collection.db %lld bytes, index.embr %lld bytes\nformat version:  %d\n", (long long)s->db_bytes,
         (long long)s->index_file_bytes, s->format_version);
}

static int coll_info(int argc, char **argv) {
  const char *pos[1];
  int json = 0;
  cli_opt opts[] = {OPT_JSON(&json)};
  cli_command cmd = {"Describe a collection: parameters, counts, index state, file sizes.",
                     "embr collection info DIR [--json]", NULL, opts, CLI_NOPTS(opts), 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_collection *c;
  int rc = open_collection(pos[0], EMBR_COLLECTION_RDONLY, &c);
  if (rc) return rc;
  embr_collection_stats s;
  int st = embr_collection_info(c, &s);
  if (st) rc = cli_fail(st);
  else print_info(pos[0], &s, json);
  return close_collection(c, rc);
}

static int coll_compact(int argc, char **argv) {
  const char *pos[1];
  cli_command cmd = {"Rebuild the index from the database (dropping deleted slots) and VACUUM it.",
                     "embr collection compact DIR",
                     "Should the new index checkpoint fail to save (full disk), nothing is lost: a warning\n"
                     "says so, the delete log is kept, the exit status is 0; run compact again later.",
                     NULL, 0, 1, 1, pos, 0};
  CLI_PARSE_OR_RETURN(cmd, argc, argv);
  embr_collection *c;
  int rc = open_collection(pos[0], EMBR_COLLECTION_RDWR, &c);
  if (rc) return rc;
  embr_collection_stats before, after;
  int s = embr_collection_info(c, &before);
  if (!s) s = embr_collection_compact(c);
  if (s == EMBR_ECHECKPOINT) {
    checkpoint_warning();
    embr_collection_close(c); /* would only fail the same way again */
    return EXIT_OK;
  }
  if (!s) s = embr_collection_info(c, &after);
  if (s) rc = cli_fail(s);
  else
    printf("compacted: database %lld -> %lld bytes, index %lld -> %lld bytes in memory, %lld items\n",
           (long long)before.db_bytes, (long long)after.db_bytes, (long long)before.index_memory,
           (long long)after.index_memory, (long long)after.count);
  return close_collection(c, rc);
}

/* ---- the command group ----------------------------------------------------------------------------- */

static const cli_entry collection_commands[] = {
    {"create", "create an empty collection (dimension, metric, index spec)", coll_create, NULL, 0, NULL},
    {"add", "add vectors with ids and JSON metadata (atomic, durable batches)", coll_add, NULL, 0, NULL},
    {"delete", "delete items by id", coll_delete, NULL, 0, NULL},
    {"get", "print an item's vector and metadata", coll_get, NULL, 0, NULL},
    {"search", "k nearest items, optionally filtered on metadata", coll_search, NULL, 0, NULL},
    {"info", "describe a collection", coll_info, NULL, 0, NULL},
    {"compact", "rebuild the index and vacuum the database", coll_compact, NULL, 0, NULL},
};
const cli_entry cli_collection = {
    "collection", "durable vector store: vectors + ids + JSON metadata, filtered search", NULL,
    CLI_CHILDREN(collection_commands),
    "A durable vector store in a directory: SQLite holds the vectors, ids and metadata;\n"
    "an ANN index (flat, hnsw, ivf...) is kept in step and checkpointed beside it."};
