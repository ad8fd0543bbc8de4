"""embr.knn and embr.Index: faiss's shapes and dtypes, results equal to faiss's exact indexes,
HNSW/IVF recall, files, filters, threads, argument errors."""
import threading

import numpy as np
import pytest

import embr

faiss = pytest.importorskip("faiss")


def exact(xb, xq, k, metric):
    """float64 reference: (D, I) best first, ties by lower id."""
    xb64, xq64 = xb.astype(np.float64), xq.astype(np.float64)
    if metric == "l2":
        d = ((xq64[:, None, :] - xb64[None, :, :]) ** 2).sum(-1)
        order = np.lexsort((np.broadcast_to(np.arange(len(xb)), d.shape), d), axis=-1)[:, :k]
    else:
        d = xq64 @ xb64.T
        order = np.lexsort((np.broadcast_to(np.arange(len(xb)), d.shape), -d), axis=-1)[:, :k]
    return np.take_along_axis(d, order, 1), order


def faiss_flat(xb, metric):
    ix = faiss.IndexFlatL2(xb.shape[1]) if metric == "l2" else faiss.IndexFlatIP(xb.shape[1])
    ix.add(xb)
    return ix


@pytest.mark.parametrize("metric", ["l2", "ip"])
@pytest.mark.parametrize("nq", [1, 5, 50])  # faiss switches to BLAS at 20 queries
def test_knn_and_flat_equal_faiss(data, metric, nq):
    xb, xq = data
    xq = xq[:nq]
    Df, If = faiss_flat(xb, metric).search(xq, 10)
    D, I = embr.knn(xb, xq, 10, metric=metric)
    flat = embr.Index(xb.shape[1], "flat", metric)
    flat.add(xb)
    D2, I2 = flat.search(xq, 10)
    for d, i in ((D, I), (D2, I2)):
        assert d.dtype == np.float32 and i.dtype == np.int64
        assert d.shape == Df.shape and i.shape == If.shape
        np.testing.assert_array_equal(i, If)  # the same neighbours, in the same order
        # Distances agree to float32 rounding: faiss computes |q|^2 + |b|^2 - 2 q.b, embr
        # recomputes the winners directly (no cancellation), so the last bits may differ.
        np.testing.assert_allclose(d, Df, rtol=1e-5, atol=1e-4 * np.abs(Df).max())
    Dr, Ir = exact(xb, xq, 10, metric)
    np.testing.assert_array_equal(I, Ir)
    # embr's distances are at least as close to the float64 truth as faiss's
    assert np.abs(D - Dr).max() <= np.abs(Df - Dr).max() + 1e-6 * np.abs(Dr).max()
    np.testing.assert_array_equal(D, D2)
    np.testing.assert_array_equal(I, I2)


def test_padding_like_faiss(rng):
    xb = rng.standard_normal((3, 8)).astype(np.float32)
    for metric in ("l2", "ip"):
        Df, If = faiss_flat(xb, metric).search(xb[:2], 5)
        D, I = embr.knn(xb, xb[:2], 5, metric)
        np.testing.assert_array_equal(I, If)
        assert (I[:, 3:] == -1).all()
        assert np.isinf(D[:, 3:]).all() and (np.sign(D[:, 3:]) == (1 if metric == "l2" else -1)).all()
        ix = embr.Index(8, "hnsw", metric)
        ix.add(xb)
        D, I = ix.search(xb[:2], 5)
        assert (I[:, 3:] == -1).all()
    D, I = embr.Index(8, "flat").search(xb, 2)  # an empty index
    assert (I == -1).all() and np.isinf(D).all()


def test_inputs_converted_once_or_used_in_place(data):
    xb, xq = data
    D, I = embr.knn(xb, xq, 5)
    for q in (xq.astype(np.float64), np.asfortranarray(xq), xq.tolist(), xq.astype(">f4")):
        D2, I2 = embr.knn(xb, q, 5)
        np.testing.assert_array_equal(I, I2)
        np.testing.assert_allclose(D, D2, rtol=1e-6)
    # A row slice (stride > dim) and a column-sliced copy give the same results.
    wide = np.zeros((xb.shape[0], 40), np.float32)
    wide[:, :32] = xb
    D3, I3 = embr.knn(wide[:, :32], xq, 5)
    np.testing.assert_array_equal(I, I3)
    every_other = np.repeat(xq, 2, axis=0)[::2]
    np.testing.assert_array_equal(embr.knn(xb, every_other, 5)[1], I)
    # One vector (1-D) is one query
    D4, I4 = embr.knn(xb, xq[0], 5)
    assert D4.shape == (1, 5)
    np.testing.assert_array_equal(I4[0], I[0])
    # integer inputs are numbers too
    assert embr.knn(np.arange(12).reshape(6, 2), np.array([[0, 0]]), 1)[1][0, 0] == 0


def test_hnsw_recall_against_faiss(data):
    xb, xq = data
    _, If = faiss_flat(xb, "l2").search(xq, 10)
    ix = embr.index_factory(32, "hnsw:M=16,efc=200", "l2")
    ix.add(xb)
    _, I = ix.search(xq, 10, ef=128)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, If)])
    assert recall >= 0.95, recall
    assert ix.metric == "l2" and ix.dim == 32 and len(ix) == 3000 and ix.ntotal == 3000
    assert ix.spec.startswith("hnsw:M=16")


def test_ivf_and_cosine(data):
    xb, xq = data
    ix = embr.Index(32, "ivfflat:nlist=16,nprobe=16", "cosine")
    assert not ix.is_trained
    ix.add(xb)
    assert ix.is_trained
    D, I = ix.search(xq, 5)
    Dr, Ir = embr.knn(xb, xq, 5, "cosine")
    np.testing.assert_array_equal(I, Ir)  # nprobe = nlist: exact
    np.testing.assert_allclose(D, Dr, rtol=1e-5, atol=1e-5)
    assert (D[:, 0] <= 1.0001).all() and (np.diff(D, axis=1) <= 1e-6).all()  # similarities, descending


def test_ids_remove_save_load(tmp_path, data):
    xb, xq = data
    ids = np.arange(len(xb), dtype=np.int64) * 10 + 7
    ix = embr.Index(32, "hnsw:M=16")
    ix.add(xb, ids)
    D, I = ix.search(xq, 5, ef=64)
    assert np.isin(I, ids).all()
    removed = ix.remove(I[:, 0])
    assert removed == len(set(I[:, 0].tolist()))
    assert len(ix) == len(xb) - removed
    D2, I2 = ix.search(xq, 5, ef=64)
    assert not np.isin(I2, I[:, 0]).any()
    path = tmp_path / "x.idx"
    ix.save(path)
    for mmap in (False, True):
        j = embr.Index.load(str(path), mmap=mmap)
        assert len(j) == len(ix) and j.dim == 32
        D3, I3 = j.search(xq, 5, ef=64)
        np.testing.assert_array_equal(I3, I2)
        np.testing.assert_array_equal(D3, D2)
    with pytest.raises(ValueError, match="mmap|mapped|memory"):
        j.add(xq[:1], [1])
    with pytest.raises(ValueError, match="already|repeated|present"):
        ix.add(xb[:1], ids[1:2])
    with pytest.raises(TypeError, match="integers"):
        ix.add(xb[:1], [1.5])
    ix.add(xq[:2])  # continues from the largest id
    assert len(ix) == len(xb) - removed + 2


def test_filters(data):
    xb, xq = data
    flat = embr.Index(32, "flat")
    flat.add(xb)
    even = np.arange(0, len(xb), 2)
    mask = np.zeros(len(xb), bool)
    mask[even] = True
    ref_D, ref_I = embr.knn(xb[even], xq, 5)
    for f in (even, mask, lambda i: i % 2 == 0):
        D, I = flat.search(xq, 5, filter=f)
        np.testing.assert_array_equal(I, even[ref_I])
        np.testing.assert_array_equal(D, ref_D)
    hn = embr.Index(32, "hnsw")
    hn.add(xb)
    _, I = hn.search(xq, 5, ef=100, filter=mask)
    assert (I % 2 == 0).all()

    def boom(i):
        raise RuntimeError("from the filter")
    with pytest.raises(RuntimeError, match="from the filter"):
        flat.search(xq, 5, filter=boom)
    with pytest.raises(TypeError, match="filter"):
        flat.search(xq, 5, filter="genre = 1")


def test_bad_arguments_raise_clear_errors(data):
    xb, xq = data
    ix = embr.Index(32, "flat")
    ix.add(xb)
    with pytest.raises(ValueError, match="xq has 16 columns, the index has dimension 32"):
        ix.search(xq[:, :16], 5)
    with pytest.raises(ValueError, match="x has 31 columns"):
        ix.add(xb[:, :31])
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        ix.search(xq, 0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        embr.knn(xb, xq, -3)
    with pytest.raises(ValueError, match="dimensions must agree"):
        embr.knn(xb, xq[:, :8], 3)
    with pytest.raises(TypeError, match="real numbers"):
        embr.knn(xb, xq.astype(np.complex64), 3)
    with pytest.raises((TypeError, ValueError)):
        embr.knn(xb, [["a", "b"]], 3)
    with pytest.raises(ValueError, match="2-D"):
        ix.search(xq[None], 3)
    bad = xq.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="row 3, column 7 is NaN"):
        ix.search(bad, 3)
    with pytest.raises(ValueError, match="NaN|Inf|finite"):
        ix.add(bad)
    with pytest.raises(ValueError, match="metric"):
        embr.Index(32, "flat", "hamming")
    with pytest.raises(ValueError, match="'q'"):
        embr.Index(32, "hnsw:q=3")
    with pytest.raises(ValueError, match="dim must be >= 1"):
        embr.Index(0)
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        embr.Index.load("/nonexistent/nope.idx")
    with pytest.raises(ValueError, match="ef must be >= 1"):
        ix.search(xq, 3, ef=0)


def test_damaged_file_is_valueerror(tmp_path):
    p = tmp_path / "bad.idx"
    p.write_bytes(b"not an index at all" * 10)
    with pytest.raises(ValueError, match="bad.idx"):
        embr.Index.load(p)


def test_threads_search_concurrently(data):
    xb, xq = data
    ix = embr.Index(32, "hnsw")
    ix.add(xb)
    ref = ix.search(xq, 10, threads=1)[1]
    errors, results = [], []

    def worker():
        try:
            for _ in range(20):
                results.append(ix.search(xq, 10, threads=1)[1])
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=worker) for _ in range(4)]
    adder = threading.Thread(target=lambda: [ix.add(xq, np.arange(10**6 + i * 50, 10**6 + i * 50 + 50))
                                             for i in range(3)])
    for t in ts:
        t.start()
    adder.start()
    for t in ts + [adder]:
        t.join()
    assert not errors
    assert len(results) == 80
    assert len(ix) == len(xb) + 150
    for r in results:
        assert r.shape == ref.shape


def test_set_num_threads_is_a_module_default(data):
    xb, xq = data
    before = embr.get_num_threads()
    try:
        embr.set_num_threads(1)
        assert embr.get_num_threads() == 1
        a = embr.knn(xb, xq, 5)
        embr.set_num_threads(0)
        b = embr.knn(xb, xq, 5)
        np.testing.assert_array_equal(a[1], b[1])
        with pytest.raises(ValueError):
            embr.set_num_threads(-1)
    finally:
        embr.set_num_threads(0)
    assert embr.get_num_threads() == before


def test_matrix_files_round_trip(tmp_path, data):
    xb, _ = data
    for name in ("x.npy", "x.fvecs", "x.csv"):
        embr.write_matrix(tmp_path / name, xb[:100])
        X, labels = embr.read_matrix(tmp_path / name)
        assert labels is None and X.dtype == np.float32
        np.testing.assert_array_equal(X, xb[:100])
    np.save(tmp_path / "y.npy", xb[:10].astype(np.float64))
    np.testing.assert_array_equal(embr.read_matrix(tmp_path / "y.npy")[0], xb[:10])
    (tmp_path / "z.fvecs").write_bytes(b"\x05\x00\x00\x00abc")
    with pytest.raises(ValueError, match="z.fvecs"):
        embr.read_matrix(tmp_path / "z.fvecs")
