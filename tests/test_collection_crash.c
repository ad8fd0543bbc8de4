/* Crash safety of collections: a child process adds batches (and now and then deletes an item,
 * saves the index, closes and reopens) while the parent kills it with SIGKILL at random moments
 * — during opens, adds and index saves. The child reports every acknowledged change on a pipe
 * (what the kernel already holds in a pipe survives the writer's death, so no fsync is needed
 * there). After each kill the parent opens the collection and checks:
 *   - every acknowledged item is present with its exact vector bytes and metadata;
 *   - every batch is entirely present or entirely absent, and once seen present it stays so;
 *   - acknowledged deletes stay deleted;
 *   - search works: an acknowledged vector used as the query finds itself first.
 * The child is this executable re-run with --child (fork + exec, so it starts with a clean
 * process: no OpenMP or BLAS thread state inherited across fork). */
#include "harness.h"

#include "embr/collection.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { DIM = 8, PER_BATCH = 3, MAX_BATCHES = 4096, LIVES = 60, BATCHES_PER_LIFE = 24 };

/* Pipe messages from the child: {kind, batch}. */
enum { M_OPENING = 1, M_OPENED, M_ACK_ADD, M_DELETING, M_ACK_DEL, M_SAVING, M_SAVED };

typedef struct msg {
  int32_t kind, batch;
} msg;

/* ---- what each batch holds (both sides compute it) ------------------------------------------- */

static void item_id(int b, int j, char *out, size_t cap) { snprintf(out, cap, "b%d-%d", b, j); }

static void item_vec(int b, int j, float *v) {
  embr_rng r;
  embr_rng_seed(&r, (uint64_t)b * 1000 + (uint64_t)j + 1);
  for (int d = 0; d < DIM; d++) v[d] = (float)embr_rng_normal(&r);
}

static void item_meta(int b, int j, char *out, size_t cap) {
  snprintf(out, cap, "{\"b\": %d, \"j\": %d, \"tag\": \"t%d\", \"text\": \"it's \\\"quoted\\\"\"}", b, j, b % 5);
}

/* ---- the child ---------------------------------------------------------------------------------- */

static void say(int fd, int kind, int batch) {
  msg m = {kind, batch};
  if (write(fd, &m, sizeof m) != (ssize_t)sizeof m) _exit(4); /* parent gone */
}

static int child_add(embr_collection *c, int b) {
  float x[PER_BATCH * DIM];
  char idbuf[PER_BATCH][32], metabuf[PER_BATCH][128];
  const char *ids[PER_BATCH], *meta[PER_BATCH];
  for (int j = 0; j < PER_BATCH; j++) {
    item_vec(b, j, x + j * DIM);
    item_id(b, j, idbuf[j], sizeof idbuf[j]);
    item_meta(b, j, metabuf[j], sizeof metabuf[j]);
    ids[j] = idbuf[j];
    meta[j] = metabuf[j];
  }
  return embr_collection_add(c, x, PER_BATCH, DIM, DIM, ids, meta);
}

static embr_collection *child_open(const char *dir, int fd, uint64_t seed) {
  embr_collection *c = NULL;
  say(fd, M_OPENING, 0);
  if (embr_collection_open(&c, dir, EMBR_COLLECTION_RDWR)) {
    fprintf(stderr, "child: open: %s\n", embr_last_error());
    _exit(3);
  }
  embr_collection_set_autosave(c, 2 + (int64_t)(seed % 5) * PER_BATCH, 0); /* frequent checkpoints */
  say(fd, M_OPENED, 0);
  return c;
}

static int child_main(const char *dir, int start, int fd, uint64_t seed) {
  embr_collection *c = child_open(dir, fd, seed);
  for (int i = 0; i < BATCHES_PER_LIFE; i++) {
    int b = start + i;
    if (child_add(c, b)) {
      fprintf(stderr, "child: add batch %d: %s\n", b, embr_last_error());
      _exit(3);
    }
    say(fd, M_ACK_ADD, b);
    if (i >= 3 && i % 4 == 0) { /* delete the first item of a batch added three batches ago */
      char id[32];
      item_id(b - 3, 0, id, sizeof id);
      const char *ids[1] = {id};
      say(fd, M_DELETING, b - 3);
      if (embr_collection_delete(c, ids, 1, NULL)) _exit(3);
      say(fd, M_ACK_DEL, b - 3);
    }
    if (i % 5 == 2) {
      say(fd, M_SAVING, b);
      if (embr_collection_save(c)) _exit(3);
      say(fd, M_SAVED, b);
    }
    if (i % 6 == 3) {
      embr_collection_close(c);
      c = child_open(dir, fd, seed + (uint64_t)i);
    }
  }
  embr_collection_close(c);
  pause(); /* wait for the kill: the parent decides when this life ends */
  return 0;
}

/* ---- the parent's bookkeeping ---------------------------------------------------------------- */

typedef struct state {
  uint8_t acked[MAX_BATCHES];      /* add acknowledged */
  uint8_t seen[MAX_BATCHES];       /* unacknowledged, but once observed present */
  uint8_t del_acked[MAX_BATCHES];  /* item 0 deleted, acknowledged */
  uint8_t del_maybe[MAX_BATCHES];  /* a delete of item 0 was in flight */
  int next_batch;
  int kills[3];                    /* during open, add, save */
} state;

/* Reads whatever the child said; returns the last message kind (0 if none). With wait_kind, blocks
 * (up to timeout_ms) until that kind arrives. */
static int drain(int fd, state *s, int wait_kind, int timeout_ms, int *last) {
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, wait_kind ? timeout_ms : 0);
    if (r <= 0) return 0;
    msg m;
    ssize_t got = read(fd, &m, sizeof m);
    if (got != (ssize_t)sizeof m) return -1; /* EOF: the child is gone */
    *last = m.kind;
    if (m.kind == M_ACK_ADD && m.batch < MAX_BATCHES) s->acked[m.batch] = 1;
    if (m.kind == M_DELETING && m.batch < MAX_BATCHES) s->del_maybe[m.batch] = 1;
    if (m.kind == M_ACK_DEL && m.batch < MAX_BATCHES) s->del_acked[m.batch] = 1;
    if (wait_kind && m.kind == wait_kind) return 1;
  }
}

static void sleep_us(long us) {
  struct timespec t = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&t, NULL);
}

/* ---- verification ------------------------------------------------------------------------------ */

/* 1 present (exact), 0 absent, -1 present but wrong. */
static int check_item(embr_collection *c, int b, int j) {
  char id[32], want_meta[128];
  float v[DIM], want[DIM];
  char *meta = NULL;
  item_id(b, j, id, sizeof id);
  int rc = embr_collection_get(c, id, v, &meta);
  if (rc == EMBR_ENOTFOUND) return 0;
  item_vec(b, j, want);
  item_meta(b, j, want_meta, sizeof want_meta);
  int ok = rc == 0 && !memcmp(v, want, sizeof v) && meta && !strcmp(meta, want_meta);
  embr_free(meta);
  return ok ? 1 : -1;
}

static void check_batch(embr_collection *c, state *s, int b) {
  int present = 0, wrong = 0;
  for (int j = 1; j < PER_BATCH; j++) {
    int r = check_item(c, b, j);
    present += r == 1;
    wrong += r < 0;
  }
  int first = check_item(c, b, 0);
  CHECK_MSG(!wrong && first >= 0, "batch %d: an item has the wrong vector or metadata", b);
  CHECK_MSG(present == 0 || present == PER_BATCH - 1, "batch %d is half present (%d of %d)", b, present, PER_BATCH - 1);
  if (s->acked[b] || s->seen[b]) CHECK_MSG(present == PER_BATCH - 1, "batch %d (acknowledged or seen) is missing", b);
  if (present && !s->acked[b]) s->seen[b] = 1;
  if (s->del_acked[b]) CHECK_MSG(first == 0, "batch %d: deleted item is back", b);
  else if (!s->del_maybe[b] && present) CHECK_MSG(first == 1, "batch %d: item 0 missing without a delete", b);
  else if (!present) CHECK_MSG(first == 0, "batch %d: item 0 present in an absent batch", b);
}

/* An acknowledged, undeleted item used as the query comes back first. */
static void check_search(embr_collection *c, const state *s, embr_rng *r) {
  for (int t = 0; t < 3; t++) {
    int b = (int)embr_rng_below(r, (uint64_t)s->next_batch), j = 1 + (int)embr_rng_below(r, PER_BATCH - 1);
    if (!s->acked[b]) continue;
    float q[DIM];
    char id[32];
    item_vec(b, j, q);
    item_id(b, j, id, sizeof id);
    embr_collection_search_params p = embr_collection_search_params_default();
    p.ef = 64;
    p.n_threads = 1;
    embr_collection_hits h;
    int rc = embr_collection_search(c, q, 1, DIM, DIM, 1, NULL, &p, &h);
    CHECK_MSG(rc == 0 && h.ext_ids[0] && !strcmp(h.ext_ids[0], id), "search for %s: %s", id,
              rc ? embr_last_error() : h.ext_ids[0] ? h.ext_ids[0] : "(nothing)");
    if (!rc) embr_collection_hits_free(&h);
  }
}

static void verify(const char *dir, state *s, embr_rng *r, int writable) {
  embr_collection *c;
  int rc = embr_collection_open(&c, dir, writable ? EMBR_COLLECTION_RDWR : EMBR_COLLECTION_RDONLY);
  CHECK_MSG(rc == 0, "open after a kill: %s", embr_last_error());
  if (rc) return;
  for (int b = 0; b < s->next_batch; b++) check_batch(c, s, b);
  check_search(c, s, r);
  CHECK_EQ_INT(embr_collection_close(c), 0);
}

/* ---- one life of the child ---------------------------------------------------------------------- */

static pid_t spawn(const char *self, const char *dir, int start, int wfd, uint64_t seed) {
  char a_start[16], a_fd[16], a_seed[32];
  snprintf(a_start, sizeof a_start, "%d", start);
  snprintf(a_fd, sizeof a_fd, "%d", wfd);
  snprintf(a_seed, sizeof a_seed, "%llu", (unsigned long long)seed);
  pid_t pid = fork();
  if (pid == 0) {
    execl(self, self, "--child", dir, a_start, a_fd, a_seed, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Lets the child run, then kills it at a moment picked by `how`. */
static void run_and_kill(int rfd, pid_t pid, int how, embr_rng *r, state *s) {
  int last = 0;
  if (how == 0) { /* anywhere: often during the first open */
    sleep_us((long)embr_rng_below(r, 25000));
  } else if (how == 1) { /* during adds */
    int want = 1 + (int)embr_rng_below(r, 8);
    for (int n = 0; n < want && drain(rfd, s, M_ACK_ADD, 2000, &last) == 1;) n++;
    sleep_us((long)embr_rng_below(r, 3000));
  } else if (how == 2) { /* during an index save */
    drain(rfd, s, M_SAVING, 2000, &last);
    sleep_us((long)embr_rng_below(r, 12000));
  } else { /* during a reopen */
    drain(rfd, s, M_OPENED, 2000, &last);
    drain(rfd, s, M_OPENING, 2000, &last);
    sleep_us((long)embr_rng_below(r, 4000));
  }
  drain(rfd, s, 0, 0, &last);
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child ended by itself (status %d)", status);
  /* Everything it said before dying (the pipe then reports end of file). */
  for (int i = 0; i < 50 && drain(rfd, s, -1, 100, &last) == 0; i++)
    ;
  s->kills[last == 0 || last == M_OPENING ? 0 : last == M_SAVING ? 2 : 1]++;
}

static void test_kill_loop(void) {
  char dir[1024], self[1024];
  snprintf(dir, sizeof dir, "%s", th_path("c"));
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  REQUIRE(n > 0);
  self[n] = '\0';
  REQUIRE(embr_collection_create(NULL, dir, DIM, EMBR_METRIC_L2, "hnsw:M=8,efc=40") == 0);
  state *s = calloc(1, sizeof *s);
  embr_rng r;
  embr_rng_seed(&r, 2024);
  double t0 = embr_now();
  for (int life = 0; life < LIVES && s->next_batch + BATCHES_PER_LIFE + 2 < MAX_BATCHES; life++) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    int start = s->next_batch;
    pid_t pid = spawn(self, dir, start, fds[1], embr_rng_next(&r));
    close(fds[1]);
    REQUIRE(pid > 0);
    run_and_kill(fds[0], pid, life % 4, &r, s);
    close(fds[0]);
    /* The batch after the last acknowledged one may be committed: never reuse its number. */
    int top = start - 1;
    for (int b = start; b < start + BATCHES_PER_LIFE + 1; b++)
      if (s->acked[b]) top = b;
    s->next_batch = top + 2;
    verify(dir, s, &r, life % 10 == 9);
    if (th_failed_checks) break;
  }
  int acked = 0;
  for (int b = 0; b < s->next_batch; b++) acked += s->acked[b];
  fprintf(stderr, "  %d kills (%d while opening, %d while adding, %d while saving the index), %d batches acknowledged, "
          "%.1f s\n", s->kills[0] + s->kills[1] + s->kills[2], s->kills[0], s->kills[1], s->kills[2], acked, embr_now() - t0);
  CHECK(s->kills[0] + s->kills[1] + s->kills[2] >= 50 || th_failed_checks);
  CHECK(acked > 100);
  free(s);
}

int main(int argc, char **argv) {
  if (argc == 6 && !strcmp(argv[1], "--child"))
    return child_main(argv[2], atoi(argv[3]), atoi(argv[4]), strtoull(argv[5], NULL, 10));
  signal(SIGPIPE, SIG_IGN);
  return RUN_TESTS(argc, argv, test_kill_loop);
}
