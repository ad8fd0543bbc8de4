"""embr: embeddings and retrieval, from NumPy.

Exact and approximate nearest-neighbour search with faiss's shapes and dtypes, durable vector
collections with metadata filters, word vectors with gensim's names, t-SNE maps and embedding
models, over the embr C library (the GIL is released during every computation).

    >>> import numpy as np, embr
    >>> xb = np.random.rand(1000, 64).astype("float32")
    >>> D, I = embr.knn(xb, xb[:5], 10)            # exact: D float32 (5, 10), I int64 (5, 10)
    >>> index = embr.Index(64, "hnsw:M=16")        # or "flat", "ivfflat:nlist=64", "ivfpq:..."
    >>> index.add(xb)
    >>> D, I = index.search(xb[:5], 10, ef=64)

Conventions (as faiss): L2 distances are *squared* Euclidean (ascending); "ip" and "cosine" are
similarities (descending); results are (D, I) with D float32 (nq, k), I int64 (nq, k), best first,
padded with -1 ids when fewer than k items are found. float32 arrays whose rows are contiguous are
read in place; other dtypes and layouts are converted once. Errors raise ValueError (bad argument
or file contents), OSError / FileNotFoundError (files), MemoryError, with embr's message.
Threads: every call uses set_num_threads()'s value (0 = all cores); the library's global state
is never changed. Long calls (Word2Vec, tsne, Index.add/train, knn, Model.embed*) take progress=, a callable
(done, total, rate, detail); an exception it raises stops the call and propagates, and Ctrl-C
stops them too. embr.plot(Y, labels, path) draws a map as `embr plot` does.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _embr
from ._embr import Index, get_num_threads, knn, read_matrix, set_num_threads, write_matrix

__all__ = [
    "Index", "index_factory", "knn", "set_num_threads", "get_num_threads", "read_matrix", "write_matrix",
    "Collection", "Hit", "Record", "KeyedVectors", "Word2Vec", "tsne", "TSNE", "plot", "Model",
]
__version__ = "0.1.0"

PathLike = Union[str, bytes, "os.PathLike[str]"]
# progress(done, total, rate, detail): called about every 0.1 s during a long call with the GIL
# held; its return value is ignored and an exception it raises stops the call and propagates.
ProgressFn = Callable[[int, int, float, str], Any]


def index_factory(dim: int, spec: str = "hnsw:M=16", metric: str = "l2") -> Index:
    """An empty Index of `dim`-dimensional vectors made from a factory string (same as Index(...)).

    spec: "flat", "hnsw:M=16,efc=200,ef=64", "ivfflat:nlist=1024,nprobe=16",
    "ivfpq:nlist=1024,m=16,nprobe=16,refine=0". metric: "l2", "ip", "cosine", "l1".
    """
    return Index(dim, spec, metric)


# ---- collections ---------------------------------------------------------------------------------

class Hit(NamedTuple):
    """One search result of a Collection: the item's id, its distance (metric semantics of the
    collection) and its metadata (a dict, or None when it has none or it was not asked for)."""
    id: str
    distance: float
    metadata: Optional[Dict[str, Any]]


class Record(NamedTuple):
    """An item of a Collection: its id, its vector (float32 (dim,)) and its metadata (dict or None)."""
    id: str
    vector: np.ndarray
    metadata: Optional[Dict[str, Any]]


def _as_id_list(ids: Union[str, Iterable[str]]) -> List[str]:
    if isinstance(ids, str):
        return [ids]
    out = list(ids)
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise TypeError(f"ids[{i}] must be a str, got {type(x).__name__}")
    return out


class Collection:
    """A durable vector store in a folder: SQLite is the record of truth (an acknowledged add
    survives a crash), an ANN index is kept in step. Items have string ids and JSON metadata;
    searches take filters such as 'genre = "jazz" and year >= 1990' (docs/collections.md).

    Collection(path) opens an existing collection read-write (one writer process at a time;
    read_only=True for readers); Collection.create(path, dim, metric, index) makes a new one.
    A handle may be shared by several Python threads (calls are serialised, the GIL is released
    while each runs). Use it as a context manager, or call close(), to write the index checkpoint.
    """

    def __init__(self, path: PathLike, read_only: bool = False):
        self._lock = threading.Lock()
        self._c = _embr.collection_open(path, read_only=read_only)
        self.path = os.fspath(path)

    @classmethod
    def create(cls, path: PathLike, dim: int, metric: str = "l2", index: str = "hnsw") -> "Collection":
        """Creates an empty collection in folder `path` (its parent must exist) and opens it
        read-write. index: any Index spec ("flat", "hnsw:M=16,efc=200", "ivfflat:nlist=256", ...)."""
        self = cls.__new__(cls)
        self._lock = threading.Lock()
        self._c = _embr.collection_create(path, dim, metric, index)
        self.path = os.fspath(path)
        return self

    def add(self, vectors: Any, ids: Iterable[str], metadata: Optional[Sequence[Optional[Dict[str, Any]]]] = None) -> None:
        """Adds n items in one durable transaction: vectors (n, dim) (one vector may be 1-D), ids n
        distinct new strings, metadata None or n dicts (or None entries; JSON strings are taken as
        they are). All or nothing: any bad item refuses the batch with a ValueError naming it."""
        ids = _as_id_list(ids)
        meta = None
        if metadata is not None:
            meta = [None if m is None else m if isinstance(m, str) else json.dumps(m, ensure_ascii=False)
                    for m in metadata]
        with self._lock:
            self._c.add(vectors, ids, meta)

    def search(self, q: Any, k: int = 10, filter: Optional[str] = None, ef: Optional[int] = None,
               nprobe: Optional[int] = None, with_metadata: bool = True) -> Union[List[Hit], List[List[Hit]]]:
        """The k nearest items to q among those `filter` admits, best first. q: one vector (dim,)
        gives a list of Hit; a matrix (nq, dim) gives one such list per row. Fewer than k hits when
        fewer items match."""
        with self._lock:
            D, ids, metas = self._c.search(q, k, filter, ef, nprobe, with_metadata)
        out = []
        for r in range(D.shape[0]):
            row = []
            for j, ext in enumerate(ids[r]):
                if ext is None:
                    continue
                m = metas[r][j] if metas is not None else None
                row.append(Hit(ext, float(D[r, j]), json.loads(m) if m is not None else None))
            out.append(row)
        return out[0] if np.ndim(q) == 1 else out

    def search_arrays(self, q: Any, k: int = 10, filter: Optional[str] = None, ef: Optional[int] = None,
                      nprobe: Optional[int] = None) -> Tuple[np.ndarray, List[List[Optional[str]]]]:
        """(D, ids): D float32 (nq, k) as Index.search, ids a list of nq lists of k ids (None padding)."""
        with self._lock:
            D, ids, _ = self._c.search(q, k, filter, ef, nprobe, False)
        return D, ids

    def get(self, id: str) -> Record:
        """The item with this id (KeyError when there is none)."""
        with self._lock:
            vec, meta = self._c.get(id)
        return Record(id, vec, json.loads(meta) if meta is not None else None)

    def __contains__(self, id: str) -> bool:
        try:
            self.get(id)
        except KeyError:
            return False
        return True

    def delete(self, ids: Union[str, Iterable[str]]) -> int:
        """Deletes items by id (one durable transaction; unknown ids are skipped); returns how many."""
        ids = _as_id_list(ids)
        with self._lock:
            return self._c.delete(ids)

    def compact(self) -> None:
        """Rebuilds the index without deleted items, saves it and vacuums the database."""
        with self._lock:
            self._c.compact()

    def save(self) -> None:
        """Writes the index checkpoint now (it is also written by close and automatically)."""
        with self._lock:
            self._c.save()

    def refresh(self) -> None:
        """Catches the in-memory index up with changes made by another process."""
        with self._lock:
            self._c.refresh()

    def info(self) -> Dict[str, Any]:
        """dim, metric, index (canonical spec), count, deletes_logged, index_origin, db_bytes, ..."""
        with self._lock:
            return self._c.info()

    def __len__(self) -> int:
        return int(self.info()["count"])

    @property
    def dim(self) -> int:
        return int(self.info()["dim"])

    @property
    def metric(self) -> str:
        return str(self.info()["metric"])

    def close(self) -> None:
        """Saves the index checkpoint when it changed and closes the handle (idempotent)."""
        with self._lock:
            self._c.close()

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        try:
            i = self.info()
            return f"<embr.Collection {self.path!r} dim={i['dim']} metric={i['metric']} index={i['index']} n={i['count']}>"
        except ValueError:
            return f"<embr.Collection {self.path!r} (closed)>"


# ---- word vectors (gensim's names) ----------------------------------------------------------------

def _unitvec(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


class KeyedVectors:
    """Word vectors with gensim's KeyedVectors API: vectors (float32 (n, dim)), index_to_key,
    key_to_index, kv[word], most_similar, most_similar_cosmul, similarity, doesnt_match,
    evaluate_word_analogies, save_word2vec_format. Nearest-word searches run on embr's exact k-NN
    (the GIL released)."""

    def __init__(self, vector_size: int = 0, count: int = 0, dtype: Any = np.float32):
        self.vectors = np.zeros((count, vector_size), dtype=np.float32)
        self.index_to_key: List[str] = []
        self.key_to_index: Dict[str, int] = {}
        self._normed: Optional[np.ndarray] = None

    @classmethod
    def _from(cls, vectors: np.ndarray, keys: List[str]) -> "KeyedVectors":
        self = cls.__new__(cls)
        self.vectors = vectors
        self.index_to_key = list(keys)
        self.key_to_index = {}
        for i, k in enumerate(self.index_to_key):
            self.key_to_index.setdefault(k, i)  # the first occurrence wins, as in embr
        self._normed = None
        return self

    @classmethod
    def load_word2vec_format(cls, fname: PathLike, fvocab: Any = None, binary: Optional[bool] = None,
                             encoding: str = "utf8", unicode_errors: str = "strict",
                             limit: Optional[int] = None, datatype: Any = np.float32,
                             no_header: bool = False) -> "KeyedVectors":
        """Reads a word2vec text or binary file (binary=None: by content and extension; with
        no_header=True a GloVe text file)."""
        if no_header:
            fmt = "glove"
        else:
            fmt = "auto" if binary is None else ("w2v-bin" if binary else "w2v-text")
        X, labels = _embr.read_matrix(fname, fmt)
        if labels is None:
            raise ValueError(f"{os.fspath(fname)!s}: not a word-vector file (no words)")
        if limit:
            X, labels = X[:limit], labels[:limit]
        return cls._from(X, labels)

    def save_word2vec_format(self, fname: PathLike, fvocab: Any = None, binary: bool = False,
                             total_vec: Any = None, write_header: bool = True, **kw: Any) -> None:
        """Writes word2vec binary (binary=True) or text, as gensim and word2vec.c read them."""
        fmt = ("w2v-bin" if binary else "w2v-text") if write_header else "glove"
        write_matrix(fname, self.vectors, self.index_to_key, fmt)

    # -- lookup
    @property
    def vector_size(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key: str) -> bool:
        return key in self.key_to_index

    def has_index_for(self, key: str) -> bool:
        return key in self.key_to_index

    def get_index(self, key: str, default: Optional[int] = None) -> int:
        i = self.key_to_index.get(key)
        if i is not None:
            return i
        if default is not None:
            return default
        raise KeyError(f"Key '{key}' not present")

    def get_vector(self, key: str, norm: bool = False) -> np.ndarray:
        """The vector of `key` (float32 (dim,)), unit-normalised when norm=True. KeyError when absent."""
        i = self.get_index(key)
        return self.get_normed_vectors()[i] if norm else self.vectors[i]

    def __getitem__(self, key: Union[str, Sequence[str]]) -> np.ndarray:
        if isinstance(key, str):
            return self.get_vector(key)
        return np.vstack([self.get_vector(k) for k in key])

    def get_normed_vectors(self) -> np.ndarray:
        """Rows scaled to unit length (float32 (n, dim); zero rows stay zero). Cached."""
        if self._normed is None or self._normed.shape != self.vectors.shape:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            norms[norms == 0] = 1
            self._normed = np.ascontiguousarray(self.vectors / norms, dtype=np.float32)
        return self._normed

    def fill_norms(self, force: bool = False) -> None:
        if force:
            self._normed = None
        self.get_normed_vectors()

    # -- queries
    def _mean_query(self, positive: Any, negative: Any) -> Tuple[np.ndarray, set]:
        positive = [] if positive is None else [positive] if isinstance(positive, (str, np.ndarray)) else list(positive)
        negative = [] if negative is None else [negative] if isinstance(negative, (str, np.ndarray)) else list(negative)
        terms = [(t, 1.0) if isinstance(t, (str, np.ndarray)) else t for t in positive]
        terms += [(t, -1.0) if isinstance(t, (str, np.ndarray)) else t for t in negative]
        keys, vecs = set(), []
        for key, weight in terms:
            if isinstance(key, np.ndarray):
                vecs.append(weight * np.asarray(key, dtype=np.float32))
            else:
                vecs.append(weight * self.get_vector(key, norm=True))
                keys.add(self.key_to_index[key])
        if not vecs:
            raise ValueError("cannot compute similarity with no input")
        return _unitvec(np.mean(np.array(vecs), axis=0)), keys

    def most_similar(self, positive: Any = None, negative: Any = None, topn: Optional[int] = 10,
                     clip_start: int = 0, clip_end: Optional[int] = None,
                     restrict_vocab: Optional[int] = None, indexer: Any = None) -> Any:
        """The topn keys most cosine-similar to the mean of the unit vectors of `positive` minus
        those of `negative` (keys, vectors, or (key, weight) pairs), excluding the input keys:
        a list of (key, similarity). topn=None returns the similarities of all keys."""
        if isinstance(topn, int) and topn < 1:
            return []
        mean, keys = self._mean_query(positive, negative)
        end = restrict_vocab or clip_end or len(self.vectors)
        normed = self.get_normed_vectors()[clip_start:end]
        if topn is None:
            return normed @ mean
        k = min(topn + len(keys), normed.shape[0])
        if k < 1:
            return []
        D, I = knn(normed, mean, k, "ip")
        out = [(self.index_to_key[i + clip_start], float(d)) for d, i in zip(D[0], I[0])
               if i >= 0 and i + clip_start not in keys]
        return out[:topn]

    def similar_by_vector(self, vector: np.ndarray, topn: int = 10, restrict_vocab: Optional[int] = None) -> Any:
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_key(self, key: str, topn: int = 10, restrict_vocab: Optional[int] = None) -> Any:
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def most_similar_cosmul(self, positive: Any = None, negative: Any = None, topn: Optional[int] = 10,
                            restrict_vocab: Optional[int] = None) -> Any:
        """3CosMul (Levy & Goldberg 2014): argmax prod((1 + cos(x, p)) / 2) / (prod((1 + cos(x, n)) / 2)
        + 1e-6), excluding the input keys; a list of (key, score)."""
        if isinstance(topn, int) and topn < 1:
            return []
        positive = [] if positive is None else [positive] if isinstance(positive, (str, np.ndarray)) else list(positive)
        negative = [] if negative is None else [negative] if isinstance(negative, (str, np.ndarray)) else list(negative)
        keys = {self.key_to_index[w] for w in positive + negative if isinstance(w, str) and w in self.key_to_index}
        pos = [self.get_vector(w, norm=True) if isinstance(w, str) else np.asarray(w, np.float32) for w in positive]
        neg = [self.get_vector(w, norm=True) if isinstance(w, str) else np.asarray(w, np.float32) for w in negative]
        if not pos:
            raise ValueError("cannot compute similarity with no input")
        normed = self.get_normed_vectors()[:restrict_vocab or len(self.vectors)]
        pos_d = [(1 + normed @ t) / 2 for t in pos]
        neg_d = [(1 + normed @ t) / 2 for t in neg]
        dists = np.prod(pos_d, axis=0) / (np.prod(neg_d, axis=0) + 0.000001)
        if topn is None:
            return dists
        order = np.argsort(-dists, kind="stable")[: topn + len(keys)]
        return [(self.index_to_key[i], float(dists[i])) for i in order if i not in keys][:topn]

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two keys."""
        return float(np.dot(self.get_vector(w1, norm=True), self.get_vector(w2, norm=True)))

    def n_similarity(self, ws1: Sequence[str], ws2: Sequence[str]) -> float:
        if not len(ws1) or not len(ws2):
            raise ZeroDivisionError("At least one of the passed list is empty.")
        a = _unitvec(np.mean([self.get_vector(w, norm=True) for w in ws1], axis=0))
        b = _unitvec(np.mean([self.get_vector(w, norm=True) for w in ws2], axis=0))
        return float(np.dot(a, b))

    def distance(self, w1: str, w2: str) -> float:
        return 1 - self.similarity(w1, w2)

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The key furthest from the mean of the others (unknown keys are ignored)."""
        used = [w for w in words if w in self.key_to_index]
        if not used:
            raise ValueError("cannot select a word from an empty list")
        vecs = np.vstack([self.get_vector(w, norm=True) for w in used]).astype(np.float32)
        mean = _unitvec(vecs.mean(axis=0))
        dists = vecs @ mean
        return sorted(zip(dists, used))[0][1]

    def rank(self, key1: str, key2: str) -> int:
        return len(self.closer_than(key1, key2)) + 1

    def closer_than(self, key1: str, key2: str) -> List[str]:
        all_d = self.most_similar(key1, topn=None)
        i1, i2 = self.get_index(key1), self.get_index(key2)
        return [self.index_to_key[i] for i in np.nonzero(all_d > all_d[i2])[0] if i != i1]

    def evaluate_word_analogies(self, analogies: PathLike, restrict_vocab: int = 300000,
                                case_insensitive: bool = True, dummy4unknown: bool = False,
                                similarity_function: str = "most_similar") -> Tuple[float, List[Dict[str, Any]]]:
        """Scores a questions-words.txt file as word2vec's compute-accuracy does (only questions
        whose four words are among the first restrict_vocab keys count, unless dummy4unknown: then
        they count as incorrect), with 3CosAdd or, for similarity_function="most_similar_cosmul",
        3CosMul. Returns gensim's (score, sections): each section a dict with 'section' (its name),
        'correct' and 'incorrect' (lists of (a, b, c, expected) word tuples, upper-cased when
        case_insensitive, as gensim gives them) and 'total' (its questions, seen or not); the last
        one is 'Total accuracy'. score = correct / (correct + incorrect) over all sections."""
        cosmul = similarity_function == "most_similar_cosmul"
        r = _embr.w2v_eval_analogies(self.vectors, self.index_to_key, analogies, restrict=restrict_vocab or 0,
                                     case_insensitive=case_insensitive, cosmul=cosmul)
        sections = [{"section": s["section"], "correct": [], "incorrect": [], "total": s["total"]}
                    for s in r["sections"]]
        for sec, outcome, *words in r["questions"]:
            if outcome < 0 and not dummy4unknown:
                continue
            quad = tuple(w.upper() for w in words) if case_insensitive else tuple(words)
            sections[sec]["correct" if outcome == 1 else "incorrect"].append(quad)
        total = {"section": "Total accuracy", "correct": [q for s in sections for q in s["correct"]],
                 "incorrect": [q for s in sections for q in s["incorrect"]], "total": r["total"]}
        sections.append(total)
        answered = len(total["correct"]) + len(total["incorrect"])
        return (len(total["correct"]) / answered if answered else 0.0), sections

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_normed"] = None  # a cache: recomputed on demand, not worth pickling
        return state


class Word2Vec:
    """word2vec training with gensim's parameter names (skip-gram with sg=1, CBOW with sg=0, gensim's
    default; negative sampling and/or hierarchical softmax). The corpus is a text file
    (corpus_file=, one sentence per line) or an iterable of token lists (sentences=, written to a
    temporary file). alpha=None takes embr's default (0.025 skip-gram, 0.05 CBOW). workers=None
    uses set_num_threads(); with workers=1 a fixed seed gives identical vectors. The trained
    vectors are in .wv (KeyedVectors). progress: a callable (done, total, rate, detail) called
    about every 0.1 s (bytes while counting words, then words trained; docs/python.md, "Progress and
    Ctrl-C"); an exception it raises stops the training and propagates."""

    def __init__(self, sentences: Optional[Iterable[Sequence[str]]] = None, corpus_file: Optional[PathLike] = None,
                 vector_size: int = 100, alpha: Optional[float] = None, window: int = 5, min_count: int = 5,
                 max_vocab_size: Optional[int] = None, sample: float = 1e-3, seed: int = 1,
                 workers: Optional[int] = None, sg: int = 0, hs: int = 0, negative: int = 5, epochs: int = 5,
                 progress: Optional[ProgressFn] = None):
        if (sentences is None) == (corpus_file is None):
            raise TypeError("give exactly one of sentences= or corpus_file=")
        tmp = None
        try:
            if sentences is not None:
                fd, tmp = tempfile.mkstemp(prefix="embr-corpus-", suffix=".txt")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    for s in sentences:
                        f.write(" ".join(s))
                        f.write("\n")
                corpus_file = tmp
            kw = dict(vector_size=vector_size, window=window, sg=sg, hs=hs, negative=negative, sample=sample,
                      min_count=min_count, epochs=epochs, seed=seed, max_vocab=max_vocab_size or 0)
            if workers is not None:
                kw["workers"] = workers
            if alpha is not None:
                kw["alpha"] = alpha
            if progress is not None:
                kw["progress"] = progress
            X, words, self.stats = _embr.w2v_train(corpus_file, **kw)
        finally:
            if tmp:
                os.unlink(tmp)
        self.wv = KeyedVectors._from(X, words)
        self.vector_size, self.window, self.sg, self.hs, self.negative = vector_size, window, sg, hs, negative
        self.epochs, self.min_count, self.sample = epochs, min_count, sample

    def save_word2vec_format(self, fname: PathLike, binary: bool = False) -> None:
        self.wv.save_word2vec_format(fname, binary=binary)


# ---- t-SNE ----------------------------------------------------------------------------------------

_TSNE_METRICS = {"euclidean": "l2", "sqeuclidean": "l2"}


def tsne(X: Any, n_components: int = 2, perplexity: float = 30.0, method: str = "auto", n_iter: int = 1000,
         learning_rate: Union[float, str] = "auto", early_exaggeration: float = 12.0, init: str = "pca",
         metric: str = "l2", theta: float = 0.5, pca_dims: int = -1, seed: int = 1,
         threads: Optional[int] = None, progress: Optional[ProgressFn] = None) -> np.ndarray:
    """t-SNE map of the rows of X (n, dim) -> float32 (n, n_components), n_components 2 or 3.

    method: "auto" (exact up to 1,000 points, Barnes-Hut up to 2,000, FFT above), "exact",
    "barnes_hut", "fft" (2-D). learning_rate "auto" = max(n / 12, 50). init "pca" or "random".
    pca_dims: reduce the input first (-1: to 50 when dim > 100; 0: never). With threads=1 a fixed
    seed gives identical bytes. Needs n > 3 * perplexity. progress: a callable (done, total, rate,
    detail) called about every 0.1 s in iterations; an exception it raises stops the run."""
    Y, _ = _embr.tsne(X, n_components=n_components, perplexity=perplexity, n_iter=n_iter,
                      early_exaggeration=early_exaggeration,
                      learning_rate=0.0 if learning_rate == "auto" else float(learning_rate), method=method,
                      theta=theta, init=init, metric=_TSNE_METRICS.get(metric, metric), pca_dims=pca_dims,
                      seed=seed, threads=threads, progress=progress)
    return Y


class TSNE:
    """scikit-learn's TSNE interface over embr.tsne: TSNE(n_components=2, perplexity=30, ...)
    .fit_transform(X) -> float32 (n, n_components); sets embedding_ and kl_divergence_."""

    def __init__(self, n_components: int = 2, perplexity: float = 30.0, early_exaggeration: float = 12.0,
                 learning_rate: Union[float, str] = "auto", n_iter: int = 1000, metric: str = "euclidean",
                 init: str = "pca", random_state: Optional[int] = None, method: str = "auto", angle: float = 0.5,
                 n_jobs: Optional[int] = None, progress: Optional[ProgressFn] = None):
        self.n_components, self.perplexity, self.early_exaggeration = n_components, perplexity, early_exaggeration
        self.learning_rate, self.n_iter, self.metric, self.init = learning_rate, n_iter, metric, init
        self.random_state, self.method, self.angle, self.n_jobs = random_state, method, angle, n_jobs
        self.progress = progress

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        lr = self.learning_rate
        Y, kl = _embr.tsne(X, n_components=self.n_components, perplexity=self.perplexity, n_iter=self.n_iter,
                           early_exaggeration=self.early_exaggeration,
                           learning_rate=0.0 if lr == "auto" else float(lr), method=self.method, theta=self.angle,
                           init=self.init, metric=_TSNE_METRICS.get(self.metric, self.metric),
                           seed=1 if self.random_state is None else int(self.random_state),
                           threads=None if self.n_jobs in (None, -1) else int(self.n_jobs), progress=self.progress)
        self.embedding_, self.kl_divergence_ = Y, kl
        return Y

    def fit(self, X: Any, y: Any = None) -> "TSNE":
        self.fit_transform(X)
        return self


# ---- plots ----------------------------------------------------------------------------------------

def _as_strings(v: Any) -> Optional[List[Optional[str]]]:
    if v is None:
        return None
    return [None if x is None else x if isinstance(x, str) else str(x) for x in v]


def plot(Y: Any, labels: Optional[Sequence[Any]] = None, path: Optional[PathLike] = None, *,
         texts: Optional[Sequence[Optional[str]]] = None, title: Optional[str] = None, width: int = 1600,
         height: int = 1200, point_size: float = 0.0, opacity: float = 0.0, legend: bool = True,
         max_legend: int = 30, draw_texts: bool = True, seed: int = 1, format: Optional[str] = None) -> str:
    """Draws the 2-D map Y (n, 2) (further columns ignored) into `path`: .png, .svg, .pdf or .html
    (a self-contained interactive page), as `embr plot` draws it -- the same file for the same input.

    labels: n class labels (str or numbers, colours and legend; numbers sort numerically), or None.
    texts: n strings drawn beside the points (word maps; HTML shows them on hover), or None.
    width, height: pixels (PNG) or points (SVG/PDF), 64..16384; point_size, opacity: 0 = chosen
    from n; seed: the shuffled drawing order; format: "png", "svg", "pdf", "html" (None: by the
    extension). Writes atomically; returns the path."""
    if path is None:
        raise TypeError("plot() needs a path (.png, .svg, .pdf or .html)")
    _embr.plot(path, Y, _as_strings(labels), _as_strings(texts), title=title, width=width, height=height,
               point_size=point_size, opacity=opacity, legend=legend, max_legend=max_legend,
               draw_texts=draw_texts, seed=seed, format=format)
    return os.fspath(path) if not isinstance(path, bytes) else path.decode()


# ---- embedding models -----------------------------------------------------------------------------

def _normalize_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1
    return (x / n).astype(np.float32)


class Model:
    """An embedding network from a model file (embr's safetensors: ResNet, MobileFaceNet, CLIP;
    OpenAI / Hugging Face CLIP checkpoints). Calls on one model are serialised; the GIL is
    released while it runs."""

    def __init__(self, handle: Any):
        self._m = handle
        info = handle.info()
        self.arch: str = info["arch"]
        self.dim: int = info["dim"]
        self.input_shape: Tuple[int, int, int] = tuple(info["input_shape"])
        self.has_text: bool = info["has_text"]
        self.parameters: int = info["parameters"]

    @classmethod
    def load(cls, path: PathLike, tokenizer: Optional[PathLike] = None) -> "Model":
        """Loads a model file; tokenizer: CLIP's merges file for a converted checkpoint without one."""
        return cls(_embr.model_load(path, tokenizer) if tokenizer is not None else _embr.model_load(path))

    def preprocess(self, images: Sequence[Any]) -> np.ndarray:
        """Images (paths, or uint8 arrays (H, W) / (H, W, 3)) -> float32 (n, C, H, W) as the model expects."""
        return self._m.preprocess(list(images))

    def embed(self, x: Any, batch: int = 32, normalize: bool = False,
              progress: Optional[ProgressFn] = None) -> np.ndarray:
        """Preprocessed images float32 (n, C, H, W) -> embeddings float32 (n, dim).
        progress: a callable (done, total, rate, detail) counting images; Ctrl-C stops the call
        between batches."""
        out = self._m.embed(x, batch, progress=progress)
        return _normalize_rows(out) if normalize else out

    def embed_images(self, images: Sequence[Any], batch: int = 32, normalize: bool = False,
                     progress: Optional[ProgressFn] = None) -> np.ndarray:
        """Images (paths or uint8 arrays) -> float32 (n, dim), decoded, resized and normalised as
        the model's input spec says, in batches of `batch` (bounding memory). progress: called
        after each batch with (done, total, rate, "")."""
        images = list(images)
        out = np.empty((len(images), self.dim), dtype=np.float32)
        t0 = time.monotonic()
        for s in range(0, len(images), batch):
            out[s:s + batch] = self._m.embed(self._m.preprocess(images[s:s + batch]), batch)
            if progress is not None:
                done = min(s + batch, len(images))
                progress(done, len(images), done / max(time.monotonic() - t0, 1e-9), "")
        return _normalize_rows(out) if normalize else out

    def embed_texts(self, texts: Sequence[str], batch: int = 32, normalize: bool = False,
                    progress: Optional[ProgressFn] = None) -> np.ndarray:
        """Texts -> float32 (n, dim) with a CLIP model's text tower (texts longer than the context
        are truncated as CLIP's tokenize(truncate=True) does). progress: counts texts."""
        out, self.last_truncated = self._m.embed_texts(list(texts), batch, progress=progress)
        return _normalize_rows(out) if normalize else out

    def __repr__(self) -> str:
        return f"<embr.Model {self.arch} dim={self.dim} input={self.input_shape}{' +text' if self.has_text else ''}>"
