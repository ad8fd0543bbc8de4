/* embr._embr: the CPython extension over libembr's public API (the headers in include/embr only).
 *
 * What lives here, and why in C: everything that touches array memory or runs a library
 * computation. Arrays come in through the NumPy C API: a float32 array whose rows are contiguous
 * (any row stride that is a whole number of floats >= dim, which covers C-contiguous arrays and
 * row slices) is passed to the library as it is, with ld taken from the stride; anything else
 * (float64, Fortran order, column slices, lists) is converted once into a C-contiguous float32
 * copy. Results are allocated as NumPy arrays before the GIL is released and filled by the library
 * in place: float32 distances and int64 ids of shape (nq, k), padded with -1, as faiss returns them.
 *
 * The GIL is released around every library computation. embr_last_error() is per thread, so the
 * message of a failure is copied out right after the failing call, still without the GIL and
 * before anything else runs on this thread, then raised once the GIL is back:
 * EMBR_ENOMEM -> MemoryError, EMBR_EIO -> OSError, EMBR_ENOTFOUND -> FileNotFoundError (KeyError
 * where the missing thing is an id or a word), anything else -> ValueError. EMBR_ECHECKPOINT (the
 * change is durable, only a collection's index checkpoint was not written) is a RuntimeWarning.
 *
 * Thread counts: the module keeps one default (set_num_threads; 0 = all cores) and passes it to
 * every call. The library's process-wide state is never touched.
 *
 * Thread-safety of the objects, as the library defines it and enforced here so that Python code
 * cannot crash the process: an Index holds a read-write lock (searches and saves share it, add,
 * train and remove take it alone); a Collection and a Model hold a mutex (one call at a time).
 * The locks are taken with the GIL released. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "embr/embr.h"

/* The default thread count passed to every parallel call (0 = all cores). Read under the GIL. */
static int g_threads = 0;

/* ---- errors ------------------------------------------------------------------------------------ */

typedef struct {
  int status;
  char msg[1024];
} errcap;

/* Call right after a failing library call, on the same thread, before any other library call. */
static void errcap_take(errcap *e, int status) {
  e->status = status;
  if (status) {
    const char *m = embr_last_error();
    snprintf(e->msg, sizeof e->msg, "%s", (m && *m) ? m : embr_strerror(status));
  } else {
    e->msg[0] = '\0';
  }
}

static PyObject *raise_status(int status, const char *msg) {
  PyObject *type;
  switch (status) {
    case EMBR_ENOMEM: type = PyExc_MemoryError; break;
    case EMBR_EIO: case EMBR_ECHECKPOINT: type = PyExc_OSError; break;
    case EMBR_ENOTFOUND: type = PyExc_FileNotFoundError; break;
    default: type = PyExc_ValueError; break;
  }
  PyErr_SetString(type, (msg && *msg) ? msg : embr_strerror(status));
  return NULL;
}

static PyObject *raise_cap(const errcap *e) { return raise_status(e->status, e->msg); }

/* Raises the message of a library call that just failed on this thread (the GIL held, no library
 * call since); returns -1 for `return fail_now(st);` in int-returning helpers. */
static int fail_now(int status) {
  errcap e;
  errcap_take(&e, status);
  raise_cap(&e);
  return -1;
}

/* Runs `call` (an expression giving an embr_status) with the GIL released and, when it fails,
 * copies its message into the errcap `e` before anything else runs on this thread. Every library
 * computation of the module goes through here. */
#define NOGIL_CALL(e, call)                   \
  do {                                        \
    Py_BEGIN_ALLOW_THREADS                    \
    int st_ = (call);                         \
    if (st_) errcap_take(&(e), st_);          \
    Py_END_ALLOW_THREADS                      \
  } while (0)

/* A collection write's outcome: EMBR_ECHECKPOINT is success with a RuntimeWarning (the change is
 * durable, only the index checkpoint was not written). 0, or -1 with an exception set. */
static int write_outcome(const errcap *e) {
  if (e->status == EMBR_ECHECKPOINT) return PyErr_WarnEx(PyExc_RuntimeWarning, e->msg, 2);
  if (e->status) {
    raise_cap(e);
    return -1;
  }
  return 0;
}

/* ---- argument helpers -------------------------------------------------------------------------- */

/* A float32 matrix view for the library: rows at data + i*ld. `arr` keeps the memory alive. */
typedef struct {
  PyArrayObject *arr;
  const float *data;
  int64_t n, dim, ld;
} fmat;

static void fmat_release(fmat *m) {
  Py_CLEAR(m->arr);
}

/* Accepts a 2-D array-like of numbers (a 1-D one as a single row when allow_1d). Returns 0, or -1
 * with an exception set. */
static int fmat_get(PyObject *obj, const char *name, int allow_1d, fmat *m) {
  memset(m, 0, sizeof *m);
  PyArrayObject *a;
  if (PyArray_Check(obj)) {
    a = (PyArrayObject *)obj;
    Py_INCREF(a);
  } else {
    a = (PyArrayObject *)PyArray_FromAny(obj, NULL, 0, 0, 0, NULL);
    if (!a) return -1;
  }
  int nd = PyArray_NDIM(a);
  if (nd != 2 && !(allow_1d && nd == 1)) {
    PyErr_Format(PyExc_ValueError, "%s must be a 2-D array of shape (n, dim)%s, got %d dimension%s", name,
                 allow_1d ? " or one vector" : "", nd, nd == 1 ? "" : "s");
    Py_DECREF(a);
    return -1;
  }
  char kind = PyArray_DESCR(a)->kind;
  if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
    PyErr_Format(PyExc_TypeError, "%s must hold real numbers (float32 preferred), got dtype %S", name,
                 (PyObject *)PyArray_DESCR(a));
    Py_DECREF(a);
    return -1;
  }
  npy_intp *dims = PyArray_DIMS(a);
  npy_intp n = nd == 2 ? dims[0] : 1, d = nd == 2 ? dims[1] : dims[0];
  if (d < 1) {
    PyErr_Format(PyExc_ValueError, "%s has no columns (shape (%zd, 0))", name, (Py_ssize_t)n);
    Py_DECREF(a);
    return -1;
  }
  if (PyArray_TYPE(a) == NPY_FLOAT32 && PyArray_ISNOTSWAPPED(a) && PyArray_ISALIGNED(a)) {
    npy_intp *st = PyArray_STRIDES(a);
    npy_intp cs = nd == 2 ? st[1] : st[0];
    if (cs == (npy_intp)sizeof(float) || d == 1) {
      if (nd == 1 || n <= 1) {
        m->ld = d;
      } else if (st[0] > 0 && st[0] % (npy_intp)sizeof(float) == 0 && st[0] / (npy_intp)sizeof(float) >= d &&
                 (d == 1 || cs == (npy_intp)sizeof(float))) {
        m->ld = st[0] / (npy_intp)sizeof(float);
      } else {
        m->ld = 0;
      }
      if (m->ld) {
        m->arr = a;
        m->data = (const float *)PyArray_DATA(a);
        m->n = n;
        m->dim = d;
        return 0;
      }
    }
  }
  /* Converted once: a C-contiguous float32 copy. */
  PyArrayObject *c = (PyArrayObject *)PyArray_FromArray(
      a, PyArray_DescrFromType(NPY_FLOAT32), NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
  Py_DECREF(a);
  if (!c) return -1;
  m->arr = c;
  m->data = (const float *)PyArray_DATA(c);
  m->n = n;
  m->dim = d;
  m->ld = d;
  return 0;
}

/* fmat_get for an argument that must have `dim` columns (those of `owner`: "the index", ...). */
static int fmat_get_dim(PyObject *obj, const char *name, int allow_1d, int64_t dim, const char *owner, fmat *m) {
  if (fmat_get(obj, name, allow_1d, m)) return -1;
  if (m->dim != dim) {
    PyErr_Format(PyExc_ValueError, "%s has %lld columns, %s has dimension %lld", name, (long long)m->dim, owner,
                 (long long)dim);
    fmat_release(m);
    return -1;
  }
  return 0;
}

/* A str from UTF-8 bytes (undecodable bytes kept as surrogates); an O& converter of Py_BuildValue. */
static PyObject *utf8_str(void *p) {
  const char *s = (const char *)p;
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
}

/* A list of str from n UTF-8 strings (words, row labels; undecodable bytes kept as surrogates). */
static PyObject *strings_to_list(char *const *s, int64_t n) {
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (int64_t i = 0; list && i < n; i++) {
    PyObject *u = utf8_str(s[i]);
    if (!u) Py_CLEAR(list);
    else PyList_SET_ITEM(list, (Py_ssize_t)i, u);
  }
  return list;
}

/* A 1-D int64 array of ids (from any integer array-like). */
static PyArrayObject *ids_get(PyObject *obj, const char *name) {
  PyArrayObject *a = (PyArrayObject *)PyArray_FromAny(obj, NULL, 0, 0, 0, NULL);
  if (!a) return NULL;
  if (PyArray_NDIM(a) > 1) {
    PyErr_Format(PyExc_ValueError, "%s must be a 1-D array of integer ids, got %d dimensions", name, PyArray_NDIM(a));
    Py_DECREF(a);
    return NULL;
  }
  char kind = PyArray_DESCR(a)->kind;
  if (kind != 'i' && kind != 'u' && !(kind == 'f' && PyArray_SIZE(a) == 0)) {
    PyErr_Format(PyExc_TypeError, "%s must be integers (int64), got dtype %S", name, (PyObject *)PyArray_DESCR(a));
    Py_DECREF(a);
    return NULL;
  }
  PyArrayObject *c = (PyArrayObject *)PyArray_FromArray(
      a, PyArray_DescrFromType(NPY_INT64), NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
  Py_DECREF(a);
  if (c && PyArray_NDIM(c) == 0) { /* a single id */
    PyObject *r = PyArray_Reshape(c, Py_BuildValue("(i)", 1));
    Py_DECREF(c);
    c = (PyArrayObject *)r;
  }
  return c;
}

/* metric: a name ("l2", "ip", "cosine", "l1" and their aliases). */
static int metric_get(const char *name, embr_metric *out) {
  int st = embr_metric_parse(name, out);
  return st ? fail_now(st) : 0;
}

static int check_k(long k) {
  if (k < 1) {
    PyErr_Format(PyExc_ValueError, "k must be >= 1, got %ld", k);
    return -1;
  }
  if (k > (1L << 28)) {
    PyErr_Format(PyExc_ValueError, "k must be at most 2^28, got %ld", k);
    return -1;
  }
  return 0;
}

/* (D, I): float32 and int64 arrays of shape (nq, k), uninitialised. */
static int results_new(int64_t nq, int k, PyArrayObject **D, PyArrayObject **I) {
  npy_intp dims[2] = {(npy_intp)nq, k};
  *D = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
  *I = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT64);
  if (!*D || !*I) {
    Py_XDECREF(*D);
    Py_XDECREF(*I);
    return -1;
  }
  return 0;
}

static PyObject *results_tuple(PyArrayObject *D, PyArrayObject *I) {
  return Py_BuildValue("(NN)", (PyObject *)D, (PyObject *)I);
}

static int threads_arg(PyObject *o, int *out) {
  if (o == NULL || o == Py_None) {
    *out = g_threads;
    return 0;
  }
  long v = PyLong_AsLong(o);
  if (v == -1 && PyErr_Occurred()) return -1;
  if (v < 0 || v > 4096) {
    PyErr_Format(PyExc_ValueError, "threads must be 0 (all cores) or a positive count, got %ld", v);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* An optional non-negative int (None -> dflt). */
static int optint_arg(PyObject *o, const char *name, int dflt, int minv, int *out) {
  if (o == NULL || o == Py_None) {
    *out = dflt;
    return 0;
  }
  long v = PyLong_AsLong(o);
  if (v == -1 && PyErr_Occurred()) return -1;
  if (v < minv || v > (1L << 30)) {
    PyErr_Format(PyExc_ValueError, "%s must be >= %d, got %ld", name, minv, v);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* ---- progress and interruption ------------------------------------------------------------------
 * Long calls (word2vec training, t-SNE, adding to or training an index, exact k-NN) give the library
 * a progress callback. The library reports from the thread that called it (OpenMP's thread 0), at
 * most every PROGRESS_INTERVAL seconds; the callback takes the GIL back, runs pending signal
 * handlers (Ctrl-C raises KeyboardInterrupt there when the call came from the main thread) and
 * calls the user's progress(done, total, rate, detail). An exception from either cancels the call
 * (the library stops and returns EMBR_ECANCELED) and is raised in place of the result. */
#define PROGRESS_INTERVAL 0.1

typedef struct {
  PyObject *fn; /* the user's callable, or NULL: signals only */
  PyObject *exc_type, *exc_value, *exc_tb; /* what stopped the call */
  embr_progress p;
} pyprogress;

static int pyprogress_call(void *user, uint64_t done, uint64_t total, double rate, const char *detail) {
  pyprogress *pp = (pyprogress *)user;
  if (pp->exc_type) return 1; /* already stopping (a later stage of the same call) */
  PyGILState_STATE g = PyGILState_Ensure();
  if (PyErr_CheckSignals() == 0 && pp->fn) {
    PyObject *r = PyObject_CallFunction(pp->fn, "KKds", (unsigned long long)done, (unsigned long long)total, rate,
                                        detail ? detail : "");
    Py_XDECREF(r);
  }
  int stop = PyErr_Occurred() != NULL;
  if (stop) PyErr_Fetch(&pp->exc_type, &pp->exc_value, &pp->exc_tb);
  PyGILState_Release(g);
  return stop;
}

/* progress: None or a callable. Returns 0, or -1 with a TypeError. */
static int pyprogress_init(pyprogress *pp, PyObject *fn) {
  memset(pp, 0, sizeof *pp);
  if (fn && fn != Py_None) {
    if (!PyCallable_Check(fn)) {
      PyErr_Format(PyExc_TypeError, "progress must be None or a callable (done, total, rate, detail), got %s",
                   Py_TYPE(fn)->tp_name);
      return -1;
    }
    pp->fn = fn;
  }
  pp->p.fn = pyprogress_call;
  pp->p.user = pp;
  pp->p.min_interval = PROGRESS_INTERVAL;
  return 0;
}

/* After the call (GIL held): 1 with the exception that stopped it raised again, else 0. The
 * exception wins over the library's own status (EMBR_ECANCELED, or success when it came from the
 * final report). */
static int pyprogress_raised(pyprogress *pp) {
  if (!pp->exc_type) return 0;
  PyErr_Restore(pp->exc_type, pp->exc_value, pp->exc_tb);
  pp->exc_type = pp->exc_value = pp->exc_tb = NULL;
  return 1;
}

/* ---- module functions: threads, version, knn -------------------------------------------------- */

static PyObject *py_set_num_threads(PyObject *self, PyObject *arg) {
  long v = PyLong_AsLong(arg);
  if (v == -1 && PyErr_Occurred()) return NULL;
  if (v < 0 || v > 4096) return PyErr_Format(PyExc_ValueError, "set_num_threads: expected 0 (all cores) or a positive count, got %ld", v);
  g_threads = (int)v;
  Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *unused) {
  return PyLong_FromLong(g_threads ? g_threads : embr_threads_available());
}

/* (D, I) of a search that found nothing: every entry padding. */
static void results_pad(PyArrayObject *D, PyArrayObject *I, embr_metric metric) {
  float worst = embr_metric_worst(metric), *d = (float *)PyArray_DATA(D);
  int64_t *id = (int64_t *)PyArray_DATA(I);
  for (npy_intp i = 0; i < PyArray_SIZE(D); i++) {
    d[i] = worst;
    id[i] = -1;
  }
}

static PyObject *py_knn(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"xb", "xq", "k", "metric", "threads", "progress", NULL};
  PyObject *ob, *oq, *othreads = NULL, *oprogress = NULL;
  long k;
  const char *metric_name = "l2";
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OOl|s$OO:knn", kwlist, &ob, &oq, &k, &metric_name, &othreads,
                                   &oprogress))
    return NULL;
  embr_metric metric;
  embr_knn_params p = embr_knn_params_default();
  pyprogress pp;
  if (check_k(k) || metric_get(metric_name, &metric) || threads_arg(othreads, &p.n_threads) ||
      pyprogress_init(&pp, oprogress))
    return NULL;
  p.progress = pp.p;
  fmat b, q = {0};
  PyArrayObject *D = NULL, *I = NULL;
  if (fmat_get(ob, "xb", 0, &b)) return NULL;
  if (fmat_get(oq, "xq", 1, &q)) goto fail;
  if (q.dim != b.dim) {
    PyErr_Format(PyExc_ValueError, "xq has %lld columns but xb has %lld: the dimensions must agree", (long long)q.dim,
                 (long long)b.dim);
    goto fail;
  }
  if (results_new(q.n, (int)k, &D, &I)) goto fail;
  errcap e = {0, ""};
  if (b.n == 0) results_pad(D, I, metric); /* nothing to find */
  else if (q.n > 0)
    NOGIL_CALL(e, embr_knn(metric, b.data, b.n, b.ld, q.data, q.n, q.ld, b.dim, (int)k, (float *)PyArray_DATA(D),
                           (int64_t *)PyArray_DATA(I), &p));
  fmat_release(&b);
  fmat_release(&q);
  if (pyprogress_raised(&pp) || e.status) {
    Py_DECREF(D);
    Py_DECREF(I);
    return PyErr_Occurred() ? NULL : raise_cap(&e);
  }
  return results_tuple(D, I);
fail:
  fmat_release(&b);
  fmat_release(&q);
  return NULL;
}

/* ---- Index ------------------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  embr_index *ix;
  pthread_rwlock_t lock;
} IndexObject;

static PyTypeObject IndexType;

static PyObject *Index_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  IndexObject *self = (IndexObject *)type->tp_alloc(type, 0);
  if (!self) return NULL;
  self->ix = NULL;
  if (pthread_rwlock_init(&self->lock, NULL)) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  return (PyObject *)self;
}

static void Index_dealloc(IndexObject *self) {
  embr_index_free(self->ix);
  pthread_rwlock_destroy(&self->lock);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Index_init(IndexObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"dim", "spec", "metric", NULL};
  long long dim;
  const char *spec = "hnsw:M=16", *metric_name = "l2";
  if (!PyArg_ParseTupleAndKeywords(args, kw, "L|ss:Index", kwlist, &dim, &spec, &metric_name)) return -1;
  if (dim < 1) {
    PyErr_Format(PyExc_ValueError, "dim must be >= 1, got %lld", dim);
    return -1;
  }
  embr_metric metric;
  if (metric_get(metric_name, &metric)) return -1;
  embr_index *ix = NULL;
  int st = embr_index_create(&ix, spec, dim, metric);
  if (st) return fail_now(st);
  embr_index *old;
  Py_BEGIN_ALLOW_THREADS
  pthread_rwlock_wrlock(&self->lock);
  old = self->ix;
  self->ix = ix;
  pthread_rwlock_unlock(&self->lock);
  Py_END_ALLOW_THREADS
  embr_index_free(old);
  return 0;
}

static int Index_ready(IndexObject *self) {
  if (!self->ix) {
    PyErr_SetString(PyExc_ValueError, "this Index was not initialised (call embr.Index(dim, spec, metric))");
    return -1;
  }
  return 0;
}

/* The index calls, each under the lock it needs; called with the GIL released (NOGIL_CALL). */
static int ix_add_locked(IndexObject *self, int nt, const fmat *x, const int64_t *ids, const embr_progress *pr) {
  pthread_rwlock_wrlock(&self->lock);
  embr_index_set_threads(self->ix, nt);
  int st = embr_index_add(self->ix, x->data, x->n, x->ld, ids, pr);
  pthread_rwlock_unlock(&self->lock);
  return st;
}

static int ix_train_locked(IndexObject *self, int nt, const fmat *x, const embr_progress *pr) {
  pthread_rwlock_wrlock(&self->lock);
  embr_index_set_threads(self->ix, nt);
  int st = embr_index_train(self->ix, x->data, x->n, x->ld, pr);
  pthread_rwlock_unlock(&self->lock);
  return st;
}

static int ix_search_locked(IndexObject *self, const fmat *q, int k, PyArrayObject *D, PyArrayObject *I,
                            const embr_search_params *p) {
  pthread_rwlock_rdlock(&self->lock);
  int st = embr_index_search(self->ix, q->data, q->n, q->ld, k, (float *)PyArray_DATA(D), (int64_t *)PyArray_DATA(I), p);
  pthread_rwlock_unlock(&self->lock);
  return st;
}

static int ix_remove_locked(IndexObject *self, PyArrayObject *ids, int64_t *removed) {
  pthread_rwlock_wrlock(&self->lock);
  int st = embr_index_remove(self->ix, (const int64_t *)PyArray_DATA(ids), PyArray_SIZE(ids), removed);
  pthread_rwlock_unlock(&self->lock);
  return st;
}

static int ix_save_locked(IndexObject *self, const char *path) {
  pthread_rwlock_rdlock(&self->lock);
  int st = embr_index_save(self->ix, path);
  pthread_rwlock_unlock(&self->lock);
  return st;
}

static PyObject *Index_add(IndexObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"x", "ids", "progress", NULL};
  PyObject *ox, *oids = Py_None, *oprogress = NULL;
  pyprogress pp;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O$O:add", kwlist, &ox, &oids, &oprogress) || Index_ready(self) ||
      pyprogress_init(&pp, oprogress))
    return NULL;
  fmat x;
  if (fmat_get_dim(ox, "x", 1, embr_index_dim(self->ix), "the index", &x)) return NULL;
  PyArrayObject *ids = NULL;
  if (oids != Py_None) {
    if (!(ids = ids_get(oids, "ids"))) goto fail;
    if (PyArray_SIZE(ids) != x.n) {
      PyErr_Format(PyExc_ValueError, "ids has %zd entries for %lld vectors", (Py_ssize_t)PyArray_SIZE(ids), (long long)x.n);
      goto fail;
    }
  }
  errcap e = {0, ""};
  int nt = g_threads; /* read under the GIL */
  if (x.n > 0) NOGIL_CALL(e, ix_add_locked(self, nt, &x, ids ? (const int64_t *)PyArray_DATA(ids) : NULL, &pp.p));
  fmat_release(&x);
  Py_XDECREF(ids);
  if (pyprogress_raised(&pp)) return NULL;
  if (e.status) return raise_cap(&e);
  Py_RETURN_NONE;
fail:
  fmat_release(&x);
  Py_XDECREF(ids);
  return NULL;
}

static PyObject *Index_train(IndexObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"x", "progress", NULL};
  PyObject *ox, *oprogress = NULL;
  pyprogress pp;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:train", kwlist, &ox, &oprogress) || Index_ready(self) ||
      pyprogress_init(&pp, oprogress))
    return NULL;
  fmat x;
  if (fmat_get_dim(ox, "x", 0, embr_index_dim(self->ix), "the index", &x)) return NULL;
  errcap e = {0, ""};
  int nt = g_threads;
  NOGIL_CALL(e, ix_train_locked(self, nt, &x, &pp.p));
  fmat_release(&x);
  if (pyprogress_raised(&pp)) return NULL;
  if (e.status) return raise_cap(&e);
  Py_RETURN_NONE;
}

/* A Python callable as a search filter: called with the GIL, from whichever thread searches. */
typedef struct {
  PyObject *fn;
  PyObject *exc_type, *exc_value, *exc_tb; /* the first exception it raised */
} pyfilter;

static int pyfilter_call(void *ctx, int64_t id) {
  pyfilter *f = (pyfilter *)ctx;
  int ok = 0;
  PyGILState_STATE g = PyGILState_Ensure();
  if (!f->exc_type) {
    PyObject *r = PyObject_CallFunction(f->fn, "L", (long long)id);
    if (r) {
      ok = PyObject_IsTrue(r);
      Py_DECREF(r);
    }
    if (!r || ok < 0) {
      ok = 0;
      PyErr_Fetch(&f->exc_type, &f->exc_value, &f->exc_tb);
      if (!f->exc_type) f->exc_type = Py_NewRef(PyExc_RuntimeError);
    }
  }
  PyGILState_Release(g);
  return ok;
}

/* filter: None, a callable id -> bool, a boolean mask over ids (mask[id] admits id) or an integer
 * array of the ids to admit. Fills the bitset (allocated with PyMem; caller frees) or the callback. */
static int filter_get(PyObject *o, embr_search_params *p, pyfilter *pf, uint8_t **bits) {
  *bits = NULL;
  if (o == Py_None) return 0;
  if (PyCallable_Check(o)) {
    pf->fn = o;
    p->filter = pyfilter_call;
    p->filter_ctx = pf;
    return 0;
  }
  PyArrayObject *a = (PyArrayObject *)PyArray_FromAny(o, NULL, 0, 0, 0, NULL);
  if (!a) return -1;
  char kind = PyArray_DESCR(a)->kind;
  if (PyArray_NDIM(a) != 1 || (kind != 'b' && kind != 'i' && kind != 'u')) {
    PyErr_SetString(PyExc_TypeError,
                    "filter must be None, a callable id -> bool, a 1-D boolean mask over ids or a 1-D array of ids");
    Py_DECREF(a);
    return -1;
  }
  npy_intp n = PyArray_SIZE(a);
  int64_t nbits = 0;
  if (kind == 'b') {
    nbits = n;
  } else {
    PyArrayObject *c = (PyArrayObject *)PyArray_FromArray(a, PyArray_DescrFromType(NPY_INT64),
                                                          NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(a);
    if (!c) return -1;
    a = c;
    const int64_t *v = (const int64_t *)PyArray_DATA(a);
    for (npy_intp i = 0; i < n; i++) {
      if (v[i] < 0 || v[i] >= ((int64_t)1 << 40)) {
        PyErr_Format(PyExc_ValueError, "filter: id %lld out of range", (long long)v[i]);
        Py_DECREF(a);
        return -1;
      }
      if (v[i] + 1 > nbits) nbits = v[i] + 1;
    }
  }
  *bits = (uint8_t *)PyMem_Calloc((size_t)(nbits + 8) / 8, 1);
  if (!*bits) {
    Py_DECREF(a);
    PyErr_NoMemory();
    return -1;
  }
  if (kind == 'b') {
    for (npy_intp i = 0; i < n; i++)
      if (*(const npy_bool *)PyArray_GETPTR1(a, i)) (*bits)[i >> 3] |= (uint8_t)(1u << (i & 7));
  } else {
    const int64_t *v = (const int64_t *)PyArray_DATA(a);
    for (npy_intp i = 0; i < n; i++) (*bits)[v[i] >> 3] |= (uint8_t)(1u << (v[i] & 7));
  }
  Py_DECREF(a);
  p->bitset = *bits;
  p->bitset_bits = nbits;
  return 0;
}

static PyObject *Index_search(IndexObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"xq", "k", "ef", "nprobe", "filter", "refine", "threads", NULL};
  PyObject *oq, *oef = Py_None, *onprobe = Py_None, *ofilter = Py_None, *orefine = Py_None, *othreads = NULL;
  long k;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "Ol|OOO$OO:search", kwlist, &oq, &k, &oef, &onprobe, &ofilter, &orefine,
                                   &othreads) ||
      Index_ready(self))
    return NULL;
  embr_search_params p = embr_search_params_default();
  if (check_k(k) || optint_arg(oef, "ef", 0, 1, &p.ef) || optint_arg(onprobe, "nprobe", 0, 1, &p.nprobe) ||
      optint_arg(orefine, "refine", -1, 0, &p.refine) || threads_arg(othreads, &p.n_threads))
    return NULL;
  fmat q;
  if (fmat_get_dim(oq, "xq", 1, embr_index_dim(self->ix), "the index", &q)) return NULL;
  pyfilter pf = {NULL, NULL, NULL, NULL};
  uint8_t *bits = NULL;
  PyArrayObject *D = NULL, *I = NULL;
  if (filter_get(ofilter, &p, &pf, &bits) || results_new(q.n, (int)k, &D, &I)) {
    fmat_release(&q);
    PyMem_Free(bits);
    return NULL;
  }
  if (pf.fn) p.n_threads = 1; /* a Python filter runs under the GIL: more threads only contend */
  errcap e = {0, ""};
  if (q.n > 0) NOGIL_CALL(e, ix_search_locked(self, &q, (int)k, D, I, &p));
  fmat_release(&q);
  PyMem_Free(bits);
  if (pf.exc_type || e.status) {
    Py_DECREF(D);
    Py_DECREF(I);
    if (!pf.exc_type) return raise_cap(&e);
    PyErr_Restore(pf.exc_type, pf.exc_value, pf.exc_tb);
    return NULL;
  }
  return results_tuple(D, I);
}

static PyObject *Index_remove(IndexObject *self, PyObject *arg) {
  if (Index_ready(self)) return NULL;
  PyArrayObject *ids = ids_get(arg, "ids");
  if (!ids) return NULL;
  errcap e = {0, ""};
  int64_t removed = 0;
  NOGIL_CALL(e, ix_remove_locked(self, ids, &removed));
  Py_DECREF(ids);
  if (e.status) return raise_cap(&e);
  return PyLong_FromLongLong(removed);
}

static PyObject *Index_save(IndexObject *self, PyObject *arg) {
  PyObject *path = NULL;
  if (Index_ready(self) || !PyUnicode_FSConverter(arg, &path)) return NULL;
  errcap e = {0, ""};
  NOGIL_CALL(e, ix_save_locked(self, PyBytes_AS_STRING(path)));
  Py_DECREF(path);
  if (e.status) return raise_cap(&e);
  Py_RETURN_NONE;
}

static PyObject *Index_load(PyObject *cls, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "mmap", NULL};
  PyObject *path = NULL;
  int mmap = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|p:load", kwlist, PyUnicode_FSConverter, &path, &mmap)) return NULL;
  errcap e = {0, ""};
  embr_index *ix = NULL;
  NOGIL_CALL(e, embr_index_load(&ix, PyBytes_AS_STRING(path), mmap ? EMBR_LOAD_MMAP : 0));
  Py_DECREF(path);
  if (e.status) return raise_cap(&e);
  IndexObject *self = (IndexObject *)Index_new((PyTypeObject *)cls, NULL, NULL);
  if (!self) {
    embr_index_free(ix);
    return NULL;
  }
  self->ix = ix;
  return (PyObject *)self;
}

static Py_ssize_t Index_len(IndexObject *self) { return self->ix ? (Py_ssize_t)embr_index_size(self->ix) : 0; }

static PyObject *Index_get_dim(IndexObject *self, void *c) {
  return Index_ready(self) ? NULL : PyLong_FromLongLong(embr_index_dim(self->ix));
}
static PyObject *Index_get_ntotal(IndexObject *self, void *c) {
  return Index_ready(self) ? NULL : PyLong_FromLongLong(embr_index_size(self->ix));
}
static PyObject *Index_get_metric(IndexObject *self, void *c) {
  return Index_ready(self) ? NULL : PyUnicode_FromString(embr_metric_name(embr_index_metric(self->ix)));
}
static PyObject *Index_get_spec(IndexObject *self, void *c) {
  return Index_ready(self) ? NULL : PyUnicode_FromString(embr_index_spec(self->ix));
}
static PyObject *Index_get_is_trained(IndexObject *self, void *c) {
  return Index_ready(self) ? NULL : PyBool_FromLong(embr_index_is_trained(self->ix));
}
static PyObject *Index_get_memory(IndexObject *self, void *c) {
  return Index_ready(self) ? NULL : PyLong_FromLongLong(embr_index_memory(self->ix));
}

static PyObject *Index_repr(IndexObject *self) {
  if (!self->ix) return PyUnicode_FromString("<embr.Index (uninitialised)>");
  return PyUnicode_FromFormat("<embr.Index %s dim=%lld metric=%s n=%lld>", embr_index_spec(self->ix),
                              (long long)embr_index_dim(self->ix), embr_metric_name(embr_index_metric(self->ix)),
                              (long long)embr_index_size(self->ix));
}

static PyMethodDef Index_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Index_add, METH_VARARGS | METH_KEYWORDS,
     "add(x, ids=None, *, progress=None)\n--\n\nAdds n vectors: x is (n, dim) (float32 used in place, other dtypes\n"
     "converted once); ids: None (continuing from the largest id + 1) or n int64 ids in [0, 2**62).\n"
     "A repeated or present id refuses the whole batch (ValueError); NaN/Inf is a ValueError.\n"
     "progress(done, total, rate, detail): called about every 0.1 s (vectors added); an exception it\n"
     "raises, or Ctrl-C, stops the add (an HNSW index then holds a partial graph) and propagates."},
    {"train", (PyCFunction)(void (*)(void))Index_train, METH_VARARGS | METH_KEYWORDS,
     "train(x, *, progress=None)\n--\n\nLearns IVF cells (and PQ codebooks) from x (n, dim); a no-op for flat and\n"
     "HNSW. add() on an untrained IVF index trains on its first batch. progress: k-means iterations."},
    {"search", (PyCFunction)(void (*)(void))Index_search, METH_VARARGS | METH_KEYWORDS,
     "search(xq, k, ef=None, nprobe=None, filter=None, refine=None, *, threads=None) -> (D, I)\n--\n\n"
     "The k nearest items of each query row of xq (nq, dim) (a 1-D xq is one query).\n"
     "Returns D: float32 (nq, k) distances (L2: squared; ip/cosine: similarities, larger first) and\n"
     "I: int64 (nq, k) ids, best first, padded with -1 (and +-inf) when fewer than k are found.\n"
     "ef: HNSW candidate list (>= k); nprobe: IVF cells; refine: IVF-PQ re-ranking factor.\n"
     "filter: a boolean mask over ids, an array of admitted ids, or a callable id -> bool."},
    {"remove", (PyCFunction)Index_remove, METH_O,
     "remove(ids) -> int\n--\n\nRemoves items by id (unknown ids are skipped); returns how many were present."},
    {"save", (PyCFunction)Index_save, METH_O,
     "save(path)\n--\n\nWrites the index atomically (temporary file, fsync, rename). Index.load reads it."},
    {"load", (PyCFunction)(void (*)(void))Index_load, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "load(path, mmap=False) -> Index\n--\n\nReads an index file. With mmap=True the file is mapped read-only\n"
     "and searched in place (add/remove refused); never map a file another program rewrites in place."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Index_getset[] = {
    {"dim", (getter)Index_get_dim, NULL, "dimension of the vectors (int)", NULL},
    {"d", (getter)Index_get_dim, NULL, "dimension of the vectors (faiss's name)", NULL},
    {"ntotal", (getter)Index_get_ntotal, NULL, "number of live items (faiss's name; also len(index))", NULL},
    {"metric", (getter)Index_get_metric, NULL, "'l2', 'ip', 'cosine' or 'l1'", NULL},
    {"spec", (getter)Index_get_spec, NULL, "canonical factory string with every parameter", NULL},
    {"is_trained", (getter)Index_get_is_trained, NULL, "False while an IVF index has not learned its cells", NULL},
    {"memory", (getter)Index_get_memory, NULL, "bytes of memory the index holds", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods Index_as_sequence = {.sq_length = (lenfunc)Index_len};

static PyTypeObject IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "embr.Index",
    .tp_basicsize = sizeof(IndexObject),
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_repr = (reprfunc)Index_repr,
    .tp_as_sequence = &Index_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Index(dim, spec='hnsw:M=16', metric='l2')\n--\n\n"
              "A vector index: 'flat' (exact), 'hnsw:M=..,efc=..,ef=..', 'ivfflat:nlist=..,nprobe=..',\n"
              "'ivfpq:nlist=..,m=..,nprobe=..,refine=..'. metric: 'l2' (squared Euclidean), 'ip',\n"
              "'cosine' or 'l1'. Searches may run from many threads at once (the GIL is released);\n"
              "add/remove/train wait for running searches.",
    .tp_methods = Index_methods,
    .tp_getset = Index_getset,
    .tp_init = (initproc)Index_init,
    .tp_new = Index_new,
};

/* ---- matrices from and to files ---------------------------------------------------------------- */

static void capsule_free(PyObject *cap) { embr_free(PyCapsule_GetPointer(cap, "embr.data")); }

/* A NumPy array over an embr-allocated matrix's data (no copy; freed with the array). Takes the
 * data out of m. */
static PyObject *matrix_to_array(embr_matrix *m) {
  npy_intp dims[2] = {(npy_intp)m->n, (npy_intp)m->dim};
  if (!m->data) return PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
  npy_intp strides[2] = {(npy_intp)(m->ld * (int64_t)sizeof(float)), sizeof(float)};
  PyObject *cap = PyCapsule_New(m->data, "embr.data", capsule_free);
  if (!cap) return NULL;
  m->data = NULL;
  PyObject *arr = PyArray_New(&PyArray_Type, 2, dims, NPY_FLOAT32, strides, PyCapsule_GetPointer(cap, "embr.data"), 0,
                              NPY_ARRAY_CARRAY, NULL);
  if (!arr) {
    Py_DECREF(cap);
    return NULL;
  }
  if (PyArray_SetBaseObject((PyArrayObject *)arr, cap)) {
    Py_DECREF(arr);
    return NULL;
  }
  return arr;
}

/* (X, labels[, extra]) from an embr-allocated matrix, which is emptied: X a NumPy array over its
 * data, labels a list of str or None; extra (a reference it takes; NULL: none) is a third item. */
static PyObject *matrix_to_tuple(embr_matrix *m, PyObject *extra) {
  PyObject *labels = m->labels ? strings_to_list(m->labels, m->n) : Py_NewRef(Py_None);
  PyObject *arr = labels ? matrix_to_array(m) : NULL;
  embr_matrix_free(m);
  if (!arr) {
    Py_XDECREF(labels);
    Py_XDECREF(arr);
    Py_XDECREF(extra);
    return NULL;
  }
  return extra ? Py_BuildValue("(NNN)", arr, labels, extra) : Py_BuildValue("(NN)", arr, labels);
}

static int format_get(const char *name, embr_format *f) {
  int st = embr_format_parse(name, f);
  return st ? fail_now(st) : 0;
}

static PyObject *py_read_matrix(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "format", NULL};
  PyObject *path = NULL;
  const char *fmt_name = "auto";
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|s:read_matrix", kwlist, PyUnicode_FSConverter, &path, &fmt_name))
    return NULL;
  embr_format fmt;
  if (format_get(fmt_name, &fmt)) {
    Py_DECREF(path);
    return NULL;
  }
  embr_matrix m = EMBR_MATRIX_INIT;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_matrix_read(PyBytes_AS_STRING(path), fmt, &m));
  Py_DECREF(path);
  if (e.status) return raise_cap(&e);
  return matrix_to_tuple(&m, NULL);
}

/* Borrowed UTF-8 strings of a list (for the duration of a call: the list must stay alive). */
static const char **strings_get(PyObject *seq, Py_ssize_t *n, const char *name, int allow_none) {
  PyObject *fast = PySequence_Fast(seq, name);
  if (!fast) return NULL;
  *n = PySequence_Fast_GET_SIZE(fast);
  const char **out = (const char **)PyMem_Calloc((size_t)*n + 1, sizeof(char *));
  if (!out) {
    Py_DECREF(fast);
    PyErr_NoMemory();
    return NULL;
  }
  for (Py_ssize_t i = 0; i < *n; i++) {
    PyObject *it = PySequence_Fast_GET_ITEM(fast, i);
    if (it == Py_None && allow_none) continue;
    if (!PyUnicode_Check(it)) {
      PyErr_Format(PyExc_TypeError, "%s[%zd] must be a str, got %s", name, i, Py_TYPE(it)->tp_name);
      goto fail;
    }
    /* The UTF-8 buffer is cached in the str object, which the list keeps alive. */
    if (!(out[i] = PyUnicode_AsUTF8(it))) goto fail;
  }
  Py_DECREF(fast); /* items stay alive through `seq` (a list or tuple the caller holds) */
  return out;
fail:
  Py_DECREF(fast);
  PyMem_Free(out);
  return NULL;
}

static PyObject *py_write_matrix(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "x", "labels", "format", NULL};
  PyObject *path = NULL, *ox, *olabels = Py_None;
  const char *fmt_name = "auto";
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O|Os:write_matrix", kwlist, PyUnicode_FSConverter, &path, &ox, &olabels,
                                   &fmt_name))
    return NULL;
  embr_format fmt;
  fmat x = {0};
  const char **labels = NULL;
  PyObject *lab_list = NULL;
  if (format_get(fmt_name, &fmt) || fmat_get(ox, "x", 0, &x)) goto fail;
  if (olabels != Py_None) {
    if (!(lab_list = PySequence_List(olabels))) goto fail;
    Py_ssize_t nl;
    if (!(labels = strings_get(lab_list, &nl, "labels", 0))) goto fail;
    if (nl != x.n) {
      PyErr_Format(PyExc_ValueError, "labels has %zd entries for %lld rows", nl, (long long)x.n);
      goto fail;
    }
  }
  embr_matrix m = {x.n, x.dim, x.ld, (float *)x.data, (char **)labels};
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_matrix_write(PyBytes_AS_STRING(path), fmt, &m));
  Py_DECREF(path);
  fmat_release(&x);
  PyMem_Free(labels);
  Py_XDECREF(lab_list);
  if (e.status) return raise_cap(&e);
  Py_RETURN_NONE;
fail:
  Py_XDECREF(path);
  fmat_release(&x);
  PyMem_Free(labels);
  Py_XDECREF(lab_list);
  return NULL;
}

/* ---- word2vec training ------------------------------------------------------------------------- */

static PyObject *py_w2v_train(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"corpus_file", "vector_size", "window", "sg", "hs", "negative", "sample", "min_count",
                           "epochs", "workers", "seed", "alpha", "max_vocab", "progress", NULL};
  PyObject *path = NULL, *oprogress = NULL;
  embr_w2v_params p = embr_w2v_params_default();
  int sg = 1;
  long long seed = (long long)p.seed, min_count = p.min_count, max_vocab = p.max_vocab;
  int workers = -1;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|$iiiiidLiiLdLO:w2v_train", kwlist, PyUnicode_FSConverter, &path,
                                   &p.dim, &p.window, &sg, &p.hs, &p.negative, &p.sample, &min_count, &p.epochs,
                                   &workers, &seed, &p.alpha, &max_vocab, &oprogress))
    return NULL;
  pyprogress pp;
  if (pyprogress_init(&pp, oprogress)) {
    Py_DECREF(path);
    return NULL;
  }
  p.progress = pp.p;
  p.cbow = !sg;
  p.min_count = min_count;
  p.max_vocab = max_vocab;
  p.seed = (uint64_t)seed;
  p.n_threads = workers < 0 ? g_threads : workers;
  embr_matrix m = EMBR_MATRIX_INIT;
  embr_w2v_stats stats;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_w2v_train(PyBytes_AS_STRING(path), NULL, &p, &m, &stats));
  Py_DECREF(path);
  if (pyprogress_raised(&pp) || e.status) {
    embr_matrix_free(&m);
    return PyErr_Occurred() ? NULL : raise_cap(&e);
  }
  PyObject *st = Py_BuildValue("{s:L,s:L,s:d,s:d}", "corpus_words", (long long)stats.corpus_words, "words_done",
                               (long long)stats.words_done, "seconds", stats.seconds, "words_per_sec",
                               stats.words_per_sec);
  if (!st) {
    embr_matrix_free(&m);
    return NULL;
  }
  return matrix_to_tuple(&m, st);
}

/* The benchmark's questions: a list of (section index, outcome 1/0/-1, a, b, c, d). */
static PyObject *analogy_questions(const embr_analogy_eval *ev) {
  PyObject *list = PyList_New((Py_ssize_t)ev->nquestions);
  for (int64_t i = 0; list && i < ev->nquestions; i++) {
    const embr_analogy_question *q = &ev->questions[i];
    PyObject *t = Py_BuildValue("(iiO&O&O&O&)", q->section, q->outcome, utf8_str, (void *)q->word[0], utf8_str,
                                (void *)q->word[1], utf8_str, (void *)q->word[2], utf8_str, (void *)q->word[3]);
    if (!t) Py_CLEAR(list);
    else PyList_SET_ITEM(list, (Py_ssize_t)i, t);
  }
  return list;
}

/* Word-analogy benchmark over vectors + labels (a word index is built for the call). */
static PyObject *py_w2v_eval_analogies(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"x", "labels", "path", "restrict", "case_insensitive", "cosmul", NULL};
  PyObject *ox, *olabels, *path = NULL;
  long long restrict_rows = 0;
  int ci = 1, cosmul = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO&|Lpp:w2v_eval_analogies", kwlist, &ox, &olabels,
                                   PyUnicode_FSConverter, &path, &restrict_rows, &ci, &cosmul))
    return NULL;
  fmat x = {0};
  PyObject *lab_list = NULL, *res = NULL;
  const char **labels = NULL;
  Py_ssize_t nl = 0;
  embr_wordvecs *w = NULL;
  embr_analogy_eval ev;
  memset(&ev, 0, sizeof ev);
  if (fmat_get(ox, "x", 0, &x) || !(lab_list = PySequence_List(olabels)) ||
      !(labels = strings_get(lab_list, &nl, "labels", 0)))
    goto done;
  if (nl != x.n) {
    PyErr_Format(PyExc_ValueError, "labels has %zd entries for %lld rows", nl, (long long)x.n);
    goto done;
  }
  embr_matrix m = {x.n, x.dim, x.ld, (float *)x.data, (char **)labels};
  errcap e = {0, ""};
  int nt = g_threads;
  NOGIL_CALL(e, embr_wordvecs_create(&w, &m, restrict_rows, ci));
  if (!e.status)
    NOGIL_CALL(e, embr_w2v_eval_analogies(w, PyBytes_AS_STRING(path), cosmul ? EMBR_ANALOGY_3COSMUL : EMBR_ANALOGY_3COSADD,
                                          nt, &ev));
  if (e.status) {
    raise_cap(&e);
    goto done;
  }
  PyObject *sections = PyList_New(ev.nsections);
  if (!sections) goto done;
  for (int i = 0; i < ev.nsections; i++) {
    PyObject *s = Py_BuildValue("{s:s,s:L,s:L,s:L}", "section", ev.sections[i].name, "correct",
                                (long long)ev.sections[i].correct, "seen", (long long)ev.sections[i].seen, "total",
                                (long long)ev.sections[i].total);
    if (!s) {
      Py_DECREF(sections);
      goto done;
    }
    PyList_SET_ITEM(sections, i, s);
  }
  PyObject *questions = analogy_questions(&ev);
  if (!questions) {
    Py_DECREF(sections);
    goto done;
  }
  res = Py_BuildValue("{s:N,s:N,s:L,s:L,s:L,s:L,s:L,s:L,s:L}", "sections", sections, "questions", questions,
                      "correct", (long long)ev.correct,
                      "seen", (long long)ev.seen, "total", (long long)ev.total, "sem_correct",
                      (long long)ev.sem_correct, "sem_seen", (long long)ev.sem_seen, "syn_correct",
                      (long long)ev.syn_correct, "syn_seen", (long long)ev.syn_seen);
done:
  embr_analogy_eval_free(&ev);
  embr_wordvecs_free(w);
  Py_XDECREF(path);
  fmat_release(&x);
  PyMem_Free(labels);
  Py_XDECREF(lab_list);
  return res;
}

/* ---- t-SNE ------------------------------------------------------------------------------------- */

static PyObject *py_tsne(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"x", "n_components", "perplexity", "n_iter", "early_exaggeration", "exaggeration_iters",
                           "learning_rate", "method", "theta", "init", "metric", "pca_dims", "seed", "threads",
                           "progress", NULL};
  PyObject *ox, *othreads = NULL, *oprogress = NULL;
  embr_tsne_params p = embr_tsne_params_default();
  const char *method = "auto", *init = "pca", *metric_name = "l2";
  long long seed = (long long)p.seed;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$idididsdssiLOO:tsne", kwlist, &ox, &p.out_dim, &p.perplexity,
                                   &p.iters, &p.exaggeration, &p.exaggeration_iters, &p.learning_rate, &method,
                                   &p.theta, &init, &metric_name, &p.pca_dims, &seed, &othreads, &oprogress))
    return NULL;
  if (!strcmp(method, "auto")) p.method = EMBR_TSNE_AUTO;
  else if (!strcmp(method, "exact")) p.method = EMBR_TSNE_EXACT;
  else if (!strcmp(method, "bh") || !strcmp(method, "barnes_hut")) p.method = EMBR_TSNE_BH;
  else if (!strcmp(method, "fft")) p.method = EMBR_TSNE_FFT;
  else return PyErr_Format(PyExc_ValueError, "method must be 'auto', 'exact', 'barnes_hut' or 'fft', got '%s'", method);
  if (!strcmp(init, "pca")) p.init = EMBR_TSNE_INIT_PCA;
  else if (!strcmp(init, "random")) p.init = EMBR_TSNE_INIT_RANDOM;
  else return PyErr_Format(PyExc_ValueError, "init must be 'pca' or 'random', got '%s'", init);
  if (p.out_dim != 2 && p.out_dim != 3)
    return PyErr_Format(PyExc_ValueError, "n_components must be 2 or 3, got %d", p.out_dim);
  p.seed = (uint64_t)seed;
  pyprogress pp;
  if (metric_get(metric_name, &p.metric) || threads_arg(othreads, &p.n_threads) || pyprogress_init(&pp, oprogress))
    return NULL;
  p.progress = pp.p;
  fmat x;
  if (fmat_get(ox, "X", 0, &x)) return NULL;
  npy_intp dims[2] = {(npy_intp)x.n, p.out_dim};
  PyArrayObject *Y = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
  if (!Y) {
    fmat_release(&x);
    return NULL;
  }
  errcap e = {0, ""};
  embr_tsne_stats stats;
  NOGIL_CALL(e, embr_tsne(x.data, x.n, x.ld, x.dim, &p, (float *)PyArray_DATA(Y), &stats));
  fmat_release(&x);
  if (pyprogress_raised(&pp) || e.status) {
    Py_DECREF(Y);
    return PyErr_Occurred() ? NULL : raise_cap(&e);
  }
  return Py_BuildValue("(Nd)", (PyObject *)Y, stats.kl);
}

/* ---- plots ------------------------------------------------------------------------------------- */

/* A list of str (None entries allowed) as borrowed UTF-8 strings for n rows; `*list` keeps them. */
static int row_strings(PyObject *o, const char *name, int64_t n, PyObject **list, const char ***out) {
  *out = NULL;
  if (o == Py_None) return 0;
  Py_ssize_t got;
  if (!(*list = PySequence_List(o)) || !(*out = strings_get(*list, &got, name, 1))) return -1;
  if (got != n) {
    PyErr_Format(PyExc_ValueError, "%s has %zd entries for %lld points", name, got, (long long)n);
    return -1;
  }
  return 0;
}

static PyObject *py_plot(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "xy", "labels", "texts", "title", "width", "height", "point_size", "opacity",
                           "legend", "max_legend", "draw_texts", "seed", "format", NULL};
  PyObject *path = NULL, *oxy, *olabels = Py_None, *otexts = Py_None, *lab_list = NULL, *txt_list = NULL;
  embr_plot_params p = embr_plot_params_default();
  const char *format = NULL;
  long long seed = (long long)p.seed;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O|OO$ziiddpipLz:plot", kwlist, PyUnicode_FSConverter, &path, &oxy,
                                   &olabels, &otexts, &p.title, &p.width, &p.height, &p.point_size, &p.opacity,
                                   &p.show_legend, &p.max_legend, &p.draw_texts, &seed, &format))
    return NULL;
  p.seed = (uint64_t)seed;
  fmat xy = {0};
  const char **labels = NULL, **texts = NULL;
  PyObject *ret = NULL;
  if (format) {
    int st = embr_plot_format_parse(format, &p.format);
    if (st) {
      fail_now(st);
      goto done;
    }
  }
  if (fmat_get(oxy, "Y", 0, &xy)) goto done;
  if (xy.dim < 2) {
    PyErr_Format(PyExc_ValueError, "Y has %lld column: a plot needs (x, y) (n, 2)", (long long)xy.dim);
    goto done;
  }
  if (row_strings(olabels, "labels", xy.n, &lab_list, &labels) || row_strings(otexts, "texts", xy.n, &txt_list, &texts))
    goto done;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_plot_write(PyBytes_AS_STRING(path), xy.data, xy.n, xy.ld, labels, texts, &p));
  if (e.status) raise_cap(&e);
  else ret = Py_NewRef(Py_None);
done:
  Py_DECREF(path);
  fmat_release(&xy);
  PyMem_Free(labels);
  PyMem_Free(texts);
  Py_XDECREF(lab_list);
  Py_XDECREF(txt_list);
  return ret;
}

/* ---- Collection (low level; embr.Collection wraps it with JSON metadata and a lock) ------------ */

typedef struct {
  PyObject_HEAD
  embr_collection *c;
  int64_t dim;
} CollObject;

static PyTypeObject CollType;

static void Coll_dealloc(CollObject *self) {
  if (self->c) {
    embr_collection *c = self->c;
    self->c = NULL;
    Py_BEGIN_ALLOW_THREADS
    embr_collection_close(c); /* a checkpoint failure loses nothing (the data is committed) */
    Py_END_ALLOW_THREADS
  }
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *coll_wrap(embr_collection *c) {
  CollObject *self = PyObject_New(CollObject, &CollType);
  if (!self) {
    embr_collection_close(c);
    return NULL;
  }
  self->c = c;
  embr_collection_stats s;
  self->dim = embr_collection_info(c, &s) ? 0 : s.dim;
  return (PyObject *)self;
}

static PyObject *py_coll_create(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "dim", "metric", "index", NULL};
  PyObject *path = NULL;
  long long dim;
  const char *metric_name = "l2", *spec = "hnsw";
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&L|ss:collection_create", kwlist, PyUnicode_FSConverter, &path, &dim,
                                   &metric_name, &spec))
    return NULL;
  embr_metric metric;
  if (metric_get(metric_name, &metric)) {
    Py_DECREF(path);
    return NULL;
  }
  embr_collection *c = NULL;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_collection_create(&c, PyBytes_AS_STRING(path), dim, metric, spec));
  Py_DECREF(path);
  if (e.status) return raise_cap(&e);
  return coll_wrap(c);
}

static PyObject *py_coll_open(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "read_only", NULL};
  PyObject *path = NULL;
  int ro = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|p:collection_open", kwlist, PyUnicode_FSConverter, &path, &ro))
    return NULL;
  embr_collection *c = NULL;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_collection_open(&c, PyBytes_AS_STRING(path), ro ? EMBR_COLLECTION_RDONLY : EMBR_COLLECTION_RDWR));
  Py_DECREF(path);
  if (e.status) return raise_cap(&e);
  return coll_wrap(c);
}

static int Coll_ready(CollObject *self) {
  if (!self->c) {
    PyErr_SetString(PyExc_ValueError, "the collection is closed");
    return -1;
  }
  return 0;
}

static PyObject *Coll_close(CollObject *self, PyObject *unused) {
  if (!self->c) Py_RETURN_NONE;
  embr_collection *c = self->c;
  self->c = NULL;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_collection_close(c));
  if (write_outcome(&e)) return NULL;
  Py_RETURN_NONE;
}

/* add(vectors, ids: list of str, metadata: list of (str | None) or None) */
static PyObject *Coll_add(CollObject *self, PyObject *args) {
  PyObject *ox, *oids, *ometa = Py_None;
  if (!PyArg_ParseTuple(args, "OO!|O:add", &ox, &PyList_Type, &oids, &ometa) || Coll_ready(self)) return NULL;
  fmat x = {0};
  const char **ids = NULL, **meta = NULL;
  Py_ssize_t nids = 0, nmeta = 0;
  PyObject *ret = NULL;
  if (fmat_get_dim(ox, "vectors", 1, self->dim, "the collection", &x)) goto done;
  if (!(ids = strings_get(oids, &nids, "ids", 0))) goto done;
  if (nids != x.n) {
    PyErr_Format(PyExc_ValueError, "%zd ids for %lld vectors", nids, (long long)x.n);
    goto done;
  }
  if (ometa != Py_None) {
    if (!PyList_Check(ometa)) {
      PyErr_SetString(PyExc_TypeError, "metadata must be a list");
      goto done;
    }
    if (!(meta = strings_get(ometa, &nmeta, "metadata", 1))) goto done;
    if (nmeta != x.n) {
      PyErr_Format(PyExc_ValueError, "%zd metadata entries for %lld vectors", nmeta, (long long)x.n);
      goto done;
    }
  }
  errcap e = {0, ""};
  if (x.n > 0) NOGIL_CALL(e, embr_collection_add(self->c, x.data, x.n, x.dim, x.ld, ids, meta));
  if (write_outcome(&e)) goto done;
  ret = Py_NewRef(Py_None);
done:
  fmat_release(&x);
  PyMem_Free(ids);
  PyMem_Free(meta);
  return ret;
}

static PyObject *Coll_delete(CollObject *self, PyObject *oids) {
  if (Coll_ready(self)) return NULL;
  if (!PyList_Check(oids)) return PyErr_Format(PyExc_TypeError, "ids must be a list of str");
  Py_ssize_t n;
  const char **ids = strings_get(oids, &n, "ids", 0);
  if (!ids) return NULL;
  errcap e = {0, ""};
  int64_t deleted = 0;
  NOGIL_CALL(e, embr_collection_delete(self->c, ids, n, &deleted));
  PyMem_Free(ids);
  if (write_outcome(&e)) return NULL;
  return PyLong_FromLongLong(deleted);
}

/* get(id) -> (vector float32 (dim,), metadata str | None); KeyError for an unknown id. */
static PyObject *Coll_get(CollObject *self, PyObject *oid) {
  if (Coll_ready(self)) return NULL;
  if (!PyUnicode_Check(oid)) return PyErr_Format(PyExc_TypeError, "id must be a str, got %s", Py_TYPE(oid)->tp_name);
  const char *id = PyUnicode_AsUTF8(oid);
  if (!id) return NULL;
  npy_intp dims[1] = {(npy_intp)self->dim};
  PyArrayObject *v = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_FLOAT32);
  if (!v) return NULL;
  char *meta = NULL;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_collection_get(self->c, id, (float *)PyArray_DATA(v), &meta));
  if (e.status) {
    Py_DECREF(v);
    if (e.status == EMBR_ENOTFOUND) {
      PyErr_SetObject(PyExc_KeyError, oid);
      return NULL;
    }
    return raise_cap(&e);
  }
  PyObject *m = meta ? PyUnicode_FromString(meta) : Py_NewRef(Py_None);
  embr_free(meta);
  if (!m) {
    Py_DECREF(v);
    return NULL;
  }
  return Py_BuildValue("(NN)", (PyObject *)v, m);
}

static PyObject *str_or_none(const char *s) {
  return s ? PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace") : Py_NewRef(Py_None);
}

/* search(q, k, filter=None, ef=None, nprobe=None, with_metadata=False)
 *   -> (D float32 (nq, k), ids: list of nq lists of str | None, metadata: same shape or None) */
static PyObject *Coll_search(CollObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"q", "k", "filter", "ef", "nprobe", "with_metadata", "threads", NULL};
  PyObject *oq, *oef = Py_None, *onprobe = Py_None, *othreads = NULL;
  long k;
  const char *filter = NULL;
  int with_meta = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "Ol|zOOpO:search", kwlist, &oq, &k, &filter, &oef, &onprobe, &with_meta,
                                   &othreads) ||
      Coll_ready(self))
    return NULL;
  embr_collection_search_params p = embr_collection_search_params_default();
  if (check_k(k) || optint_arg(oef, "ef", 0, 1, &p.ef) || optint_arg(onprobe, "nprobe", 0, 1, &p.nprobe) ||
      threads_arg(othreads, &p.n_threads))
    return NULL;
  p.with_metadata = with_meta;
  fmat q;
  if (fmat_get_dim(oq, "q", 1, self->dim, "the collection", &q)) return NULL;
  embr_collection_hits h;
  memset(&h, 0, sizeof h);
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_collection_search(self->c, q.data, q.n, q.dim, q.ld, (int)k, filter, &p, &h));
  fmat_release(&q);
  if (e.status) return raise_cap(&e);
  PyObject *ret = NULL, *ids = NULL, *metas = NULL;
  npy_intp dims[2] = {(npy_intp)h.nq, h.k};
  PyArrayObject *D = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32);
  if (!D) goto done;
  memcpy(PyArray_DATA(D), h.dist, (size_t)(h.nq * h.k) * sizeof(float));
  if (!(ids = PyList_New((Py_ssize_t)h.nq))) goto done;
  if (with_meta && !(metas = PyList_New((Py_ssize_t)h.nq))) goto done;
  for (int64_t i = 0; i < h.nq; i++) {
    PyObject *row = PyList_New(h.k), *mrow = NULL;
    if (!row) goto done;
    PyList_SET_ITEM(ids, (Py_ssize_t)i, row);
    if (metas) {
      if (!(mrow = PyList_New(h.k))) goto done;
      PyList_SET_ITEM(metas, (Py_ssize_t)i, mrow);
    }
    for (int j = 0; j < h.k; j++) {
      PyObject *s = str_or_none(h.ext_ids[i * h.k + j]);
      if (!s) goto done;
      PyList_SET_ITEM(row, j, s);
      if (mrow) {
        PyObject *ms = str_or_none(h.metadata ? h.metadata[i * h.k + j] : NULL);
        if (!ms) goto done;
        PyList_SET_ITEM(mrow, j, ms);
      }
    }
  }
  ret = Py_BuildValue("(OOO)", (PyObject *)D, ids, metas ? metas : Py_None);
done:
  Py_XDECREF(D);
  Py_XDECREF(ids);
  Py_XDECREF(metas);
  embr_collection_hits_free(&h);
  return ret;
}

static PyObject *Coll_simple(CollObject *self, embr_status (*fn)(embr_collection *)) {
  if (Coll_ready(self)) return NULL;
  errcap e = {0, ""};
  NOGIL_CALL(e, fn(self->c));
  if (write_outcome(&e)) return NULL;
  Py_RETURN_NONE;
}
static PyObject *Coll_compact(CollObject *self, PyObject *u) { return Coll_simple(self, embr_collection_compact); }
static PyObject *Coll_save(CollObject *self, PyObject *u) { return Coll_simple(self, embr_collection_save); }
static PyObject *Coll_refresh(CollObject *self, PyObject *u) { return Coll_simple(self, embr_collection_refresh); }

static PyObject *Coll_info(CollObject *self, PyObject *u) {
  if (Coll_ready(self)) return NULL;
  embr_collection_stats s;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_collection_info(self->c, &s));
  if (e.status) return raise_cap(&e);
  static const char *origins[] = {"loaded", "caught_up", "rebuilt"};
  return Py_BuildValue("{s:L,s:s,s:s,s:i,s:O,s:L,s:L,s:L,s:L,s:L,s:O,s:L,s:s,s:s,s:L,s:L}", "dim", (long long)s.dim,
                       "metric", embr_metric_name(s.metric), "index", s.index_spec, "format_version", s.format_version,
                       "read_only", s.read_only ? Py_True : Py_False, "count", (long long)s.count, "max_internal_id",
                       (long long)s.max_internal_id, "deletes_logged", (long long)s.deletes_logged, "index_items",
                       (long long)s.index_items, "index_memory", (long long)s.index_memory, "index_trained",
                       s.index_trained ? Py_True : Py_False, "unsaved_changes", (long long)s.unsaved_changes,
                       "index_origin", (unsigned)s.index_origin < 3 ? origins[s.index_origin] : "?", "index_note",
                       s.index_note, "db_bytes", (long long)s.db_bytes, "index_file_bytes",
                       (long long)s.index_file_bytes);
}

static PyMethodDef Coll_methods[] = {
    {"close", (PyCFunction)Coll_close, METH_NOARGS, NULL},
    {"add", (PyCFunction)Coll_add, METH_VARARGS, NULL},
    {"delete", (PyCFunction)Coll_delete, METH_O, NULL},
    {"get", (PyCFunction)Coll_get, METH_O, NULL},
    {"search", (PyCFunction)(void (*)(void))Coll_search, METH_VARARGS | METH_KEYWORDS, NULL},
    {"compact", (PyCFunction)Coll_compact, METH_NOARGS, NULL},
    {"save", (PyCFunction)Coll_save, METH_NOARGS, NULL},
    {"refresh", (PyCFunction)Coll_refresh, METH_NOARGS, NULL},
    {"info", (PyCFunction)Coll_info, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject CollType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "embr._embr._Collection",
    .tp_basicsize = sizeof(CollObject),
    .tp_dealloc = (destructor)Coll_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Low-level collection handle (use embr.Collection).",
    .tp_methods = Coll_methods,
};

/* ---- Model (low level; embr.Model wraps it) ---------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  embr_model *m;
  pthread_mutex_t mu;
} ModelObject;

static PyTypeObject ModelType;

static void Model_dealloc(ModelObject *self) {
  embr_model_free(self->m);
  pthread_mutex_destroy(&self->mu);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *py_model_load(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "tokenizer", NULL};
  PyObject *path = NULL, *tok = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O&:model_load", kwlist, PyUnicode_FSConverter, &path,
                                   PyUnicode_FSConverter, &tok))
    return NULL;
  embr_model *m = NULL;
  errcap e = {0, ""};
  NOGIL_CALL(e, embr_model_load(PyBytes_AS_STRING(path), &m));
  if (!e.status && tok) NOGIL_CALL(e, embr_model_set_tokenizer(m, PyBytes_AS_STRING(tok)));
  Py_DECREF(path);
  Py_XDECREF(tok);
  if (e.status) {
    embr_model_free(m);
    return raise_cap(&e);
  }
  ModelObject *o = PyObject_New(ModelObject, &ModelType);
  if (!o) {
    embr_model_free(m);
    return NULL;
  }
  o->m = m;
  pthread_mutex_init(&o->mu, NULL);
  return (PyObject *)o;
}

static PyObject *Model_info(ModelObject *self, PyObject *u) {
  embr_image_spec in = embr_model_input(self->m);
  return Py_BuildValue("{s:s,s:i,s:L,s:(iii),s:O,s:O,s:i}", "arch", embr_model_arch(self->m), "dim",
                       embr_model_dim(self->m), "parameters", (long long)embr_model_parameters(self->m), "input_shape",
                       in.channels, in.height, in.width, "has_text", embr_model_has_text(self->m) ? Py_True : Py_False,
                       "has_tokenizer", embr_model_has_tokenizer(self->m) ? Py_True : Py_False, "context",
                       embr_model_has_text(self->m) ? embr_model_context(self->m) : 0);
}

/* The model's calls, one at a time; called with the GIL released (NOGIL_CALL). The library's embed
 * calls take no progress callback, so the rows go in chunks of `batch` (the batches the library
 * would make anyway: the same results) with a progress report, and a chance to stop on Ctrl-C or an
 * exception from the callback, between chunks. */
static int model_embed_locked(ModelObject *self, int nt, PyArrayObject *x, int batch, PyArrayObject *out,
                              const embr_progress *pr) {
  int64_t n = PyArray_DIM(x, 0), dim = embr_model_dim(self->m);
  size_t per = (size_t)PyArray_DIM(x, 1) * (size_t)PyArray_DIM(x, 2) * (size_t)PyArray_DIM(x, 3);
  embr_progress_state ps;
  embr_progress_begin(&ps, pr, (uint64_t)n);
  pthread_mutex_lock(&self->mu);
  embr_model_set_threads(self->m, nt);
  int st = 0;
  for (int64_t s = 0; s < n && !st; s += batch) {
    int64_t c = n - s < batch ? n - s : batch;
    st = embr_model_embed(self->m, (const float *)PyArray_DATA(x) + (size_t)s * per, c, batch,
                          (float *)PyArray_DATA(out) + (size_t)s * (size_t)dim);
    if (!st && embr_progress_update(&ps, (uint64_t)(s + c), NULL, s + c == n)) st = EMBR_ECANCELED;
  }
  pthread_mutex_unlock(&self->mu);
  return st;
}

static int model_embed_texts_locked(ModelObject *self, int nt, const char **texts, Py_ssize_t n, int batch,
                                    PyArrayObject *out, int64_t *truncated, const embr_progress *pr) {
  int64_t dim = embr_model_dim(self->m);
  embr_progress_state ps;
  embr_progress_begin(&ps, pr, (uint64_t)n);
  pthread_mutex_lock(&self->mu);
  embr_model_set_threads(self->m, nt);
  int st = 0;
  *truncated = 0;
  for (Py_ssize_t s = 0; s < n && !st; s += batch) {
    Py_ssize_t c = n - s < batch ? n - s : batch;
    int64_t tr = 0;
    st = embr_model_embed_texts(self->m, texts + s, c, batch, (float *)PyArray_DATA(out) + (size_t)s * (size_t)dim,
                                &tr);
    *truncated += tr;
    if (!st && embr_progress_update(&ps, (uint64_t)(s + c), NULL, s + c == n)) st = EMBR_ECANCELED;
  }
  pthread_mutex_unlock(&self->mu);
  return st;
}

/* embed(x: float32 (n, C, H, W) in the model's input geometry, batch, *, progress) -> (n, dim) */
static PyObject *Model_embed(ModelObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"x", "batch", "progress", NULL};
  PyObject *ox, *oprogress = NULL;
  int batch = 32;
  pyprogress pp;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i$O:embed", kwlist, &ox, &batch, &oprogress) ||
      pyprogress_init(&pp, oprogress))
    return NULL;
  if (batch < 1) return PyErr_Format(PyExc_ValueError, "batch must be >= 1, got %d", batch);
  embr_image_spec in = embr_model_input(self->m);
  PyArrayObject *x = (PyArrayObject *)PyArray_FromAny(ox, PyArray_DescrFromType(NPY_FLOAT32), 4, 4,
                                                      NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
  if (!x) return NULL;
  npy_intp *d = PyArray_DIMS(x);
  if (d[1] != in.channels || d[2] != in.height || d[3] != in.width) {
    PyErr_Format(PyExc_ValueError, "images must have shape (n, %d, %d, %d), got (n, %zd, %zd, %zd)", in.channels,
                 in.height, in.width, (Py_ssize_t)d[1], (Py_ssize_t)d[2], (Py_ssize_t)d[3]);
    Py_DECREF(x);
    return NULL;
  }
  npy_intp od[2] = {d[0], embr_model_dim(self->m)};
  PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, od, NPY_FLOAT32);
  if (!out) {
    Py_DECREF(x);
    return NULL;
  }
  errcap e = {0, ""};
  int nt = g_threads;
  NOGIL_CALL(e, model_embed_locked(self, nt, x, batch, out, &pp.p));
  Py_DECREF(x);
  if (pyprogress_raised(&pp)) {
    Py_DECREF(out);
    return NULL;
  }
  if (e.status) {
    Py_DECREF(out);
    return raise_cap(&e);
  }
  return (PyObject *)out;
}

/* preprocess(items: list of paths (str/bytes/PathLike) or uint8 arrays (H, W) / (H, W, 1|3))
 *   -> float32 (n, C, H, W) in the model's input geometry (decoded and converted without the GIL) */
static PyObject *Model_preprocess(ModelObject *self, PyObject *seq) {
  PyObject *fast = PySequence_Fast(seq, "images must be a list of paths or uint8 arrays");
  if (!fast) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  embr_image_spec in = embr_model_input(self->m);
  npy_intp dims[4] = {n, in.channels, in.height, in.width};
  PyArrayObject *out = NULL;
  PyObject **keep = (PyObject **)PyMem_Calloc((size_t)n + 1, sizeof(PyObject *));
  embr_image *ims = (embr_image *)PyMem_Calloc((size_t)n + 1, sizeof(embr_image));
  const char **paths = (const char **)PyMem_Calloc((size_t)n + 1, sizeof(char *));
  if (!keep || !ims || !paths) {
    PyErr_NoMemory();
    goto done;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *it = PySequence_Fast_GET_ITEM(fast, i);
    if (PyArray_Check(it)) {
      PyArrayObject *a = (PyArrayObject *)PyArray_FromAny(it, PyArray_DescrFromType(NPY_UINT8), 2, 3,
                                                          NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
      if (!a) goto done;
      keep[i] = (PyObject *)a;
      npy_intp *d = PyArray_DIMS(a);
      int c = PyArray_NDIM(a) == 2 ? 1 : (int)d[2];
      if ((c != 1 && c != 3) || d[0] < 1 || d[1] < 1 || d[0] > EMBR_IMAGE_MAX_SIDE || d[1] > EMBR_IMAGE_MAX_SIDE) {
        PyErr_Format(PyExc_ValueError, "images[%zd]: expected a uint8 array (H, W), (H, W, 1) or (H, W, 3)", i);
        goto done;
      }
      ims[i].width = (int)d[1];
      ims[i].height = (int)d[0];
      ims[i].channels = c;
      ims[i].px = (uint8_t *)PyArray_DATA(a);
    } else {
      if (!PyUnicode_FSConverter(it, &keep[i])) goto done;
      paths[i] = PyBytes_AS_STRING(keep[i]);
    }
  }
  if (!(out = (PyArrayObject *)PyArray_SimpleNew(4, dims, NPY_FLOAT32))) goto done;
  errcap e = {0, ""};
  size_t per = (size_t)in.channels * (size_t)in.height * (size_t)in.width;
  Py_BEGIN_ALLOW_THREADS
  for (Py_ssize_t i = 0; i < n && !e.status; i++) {
    float *dst = (float *)PyArray_DATA(out) + (size_t)i * per;
    int st;
    if (paths[i]) {
      embr_image im;
      st = embr_image_read(paths[i], &im);
      if (!st) st = embr_image_to_tensor(&im, &in, dst);
      if (st) errcap_take(&e, st);
      embr_image_free(&im);
    } else {
      st = embr_image_to_tensor(&ims[i], &in, dst);
      if (st) errcap_take(&e, st);
    }
  }
  Py_END_ALLOW_THREADS
  if (e.status) {
    Py_CLEAR(out);
    raise_cap(&e);
  }
done:
  if (keep)
    for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(keep[i]);
  PyMem_Free(keep);
  PyMem_Free(ims);
  PyMem_Free(paths);
  Py_DECREF(fast);
  return (PyObject *)out;
}

/* embed_texts(texts: list of str, batch, *, progress) -> (float32 (n, dim), truncated count) */
static PyObject *Model_embed_texts(ModelObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"texts", "batch", "progress", NULL};
  PyObject *otexts, *oprogress = NULL;
  int batch = 32;
  pyprogress pp;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|i$O:embed_texts", kwlist, &PyList_Type, &otexts, &batch,
                                   &oprogress) ||
      pyprogress_init(&pp, oprogress))
    return NULL;
  if (batch < 1) return PyErr_Format(PyExc_ValueError, "batch must be >= 1, got %d", batch);
  if (!embr_model_has_text(self->m))
    return PyErr_Format(PyExc_ValueError, "this model (%s) has no text tower: embed_texts needs a CLIP model",
                       embr_model_arch(self->m));
  Py_ssize_t n;
  const char **texts = strings_get(otexts, &n, "texts", 0);
  if (!texts) return NULL;
  npy_intp od[2] = {n, embr_model_dim(self->m)};
  PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, od, NPY_FLOAT32);
  if (!out) {
    PyMem_Free(texts);
    return NULL;
  }
  errcap e = {0, ""};
  int64_t truncated = 0;
  int nt = g_threads;
  if (n) NOGIL_CALL(e, model_embed_texts_locked(self, nt, texts, n, batch, out, &truncated, &pp.p));
  PyMem_Free(texts);
  if (pyprogress_raised(&pp)) {
    Py_DECREF(out);
    return NULL;
  }
  if (e.status) {
    Py_DECREF(out);
    return raise_cap(&e);
  }
  return Py_BuildValue("(NL)", (PyObject *)out, (long long)truncated);
}

static PyMethodDef Model_methods[] = {
    {"info", (PyCFunction)Model_info, METH_NOARGS, NULL},
    {"embed", (PyCFunction)(void (*)(void))Model_embed, METH_VARARGS | METH_KEYWORDS, NULL},
    {"preprocess", (PyCFunction)Model_preprocess, METH_O, NULL},
    {"embed_texts", (PyCFunction)(void (*)(void))Model_embed_texts, METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "embr._embr._Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Low-level model handle (use embr.Model).",
    .tp_methods = Model_methods,
};

/* ---- module ------------------------------------------------------------------------------------ */

static PyMethodDef module_methods[] = {
    {"set_num_threads", py_set_num_threads, METH_O,
     "set_num_threads(n)\n--\n\nThreads used by embr calls from this module (0 = all cores, the default).\n"
     "A module default passed to each call: the library's process-wide state is not changed."},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "get_num_threads() -> int\n--\n\nThreads calls will use."},
    {"knn", (PyCFunction)(void (*)(void))py_knn, METH_VARARGS | METH_KEYWORDS,
     "knn(xb, xq, k, metric='l2', *, threads=None, progress=None) -> (D, I)\n--\n\n"
     "Exact k nearest neighbours of each row of xq (nq, dim) among the rows of xb (nb, dim).\n"
     "Note the order: base first, then queries (faiss.knn takes xq first); the keyword names are\n"
     "faiss's, so knn(xq=..., xb=..., k=...) reads the same in both. progress: queries done.\n"
     "Returns D float32 (nq, k) and I int64 (nq, k), best first, ties by lower id, padded with -1."},
    {"read_matrix", (PyCFunction)(void (*)(void))py_read_matrix, METH_VARARGS | METH_KEYWORDS,
     "read_matrix(path, format='auto') -> (X, labels)\n--\n\n"
     "Reads .npy/.fvecs/.ivecs/.bvecs/word2vec/GloVe/CSV/TSV: X float32 (n, dim), labels list of str or None."},
    {"write_matrix", (PyCFunction)(void (*)(void))py_write_matrix, METH_VARARGS | METH_KEYWORDS,
     "write_matrix(path, x, labels=None, format='auto')\n--\n\nWrites a matrix atomically in the path's format."},
    {"w2v_train", (PyCFunction)(void (*)(void))py_w2v_train, METH_VARARGS | METH_KEYWORDS, NULL},
    {"w2v_eval_analogies", (PyCFunction)(void (*)(void))py_w2v_eval_analogies, METH_VARARGS | METH_KEYWORDS, NULL},
    {"tsne", (PyCFunction)(void (*)(void))py_tsne, METH_VARARGS | METH_KEYWORDS, NULL},
    {"plot", (PyCFunction)(void (*)(void))py_plot, METH_VARARGS | METH_KEYWORDS, NULL},
    {"collection_create", (PyCFunction)(void (*)(void))py_coll_create, METH_VARARGS | METH_KEYWORDS, NULL},
    {"collection_open", (PyCFunction)(void (*)(void))py_coll_open, METH_VARARGS | METH_KEYWORDS, NULL},
    {"model_load", (PyCFunction)(void (*)(void))py_model_load, METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "embr._embr",
                                        "The C extension of the embr package (see embr).", -1, module_methods,
                                        NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__embr(void);
PyMODINIT_FUNC PyInit__embr(void) {
  import_array();
  if (PyType_Ready(&IndexType) < 0 || PyType_Ready(&CollType) < 0 || PyType_Ready(&ModelType) < 0) return NULL;
  PyObject *m = PyModule_Create(&module_def);
  if (!m) return NULL;
  if (PyModule_AddObjectRef(m, "Index", (PyObject *)&IndexType) < 0 ||
      PyModule_AddObjectRef(m, "_Collection", (PyObject *)&CollType) < 0 ||
      PyModule_AddObjectRef(m, "_Model", (PyObject *)&ModelType) < 0 ||
      PyModule_AddStringConstant(m, "__embr_version__", embr_version()) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
