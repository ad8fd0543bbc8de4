"""Progress and interruption of long calls: progress(done, total, rate, detail) is called with the
GIL held while the call runs; an exception it raises stops the call (the library cancels) and
propagates; Ctrl-C (KeyboardInterrupt) stops a call that has no callback."""
import _thread
import os
import threading
import time

import numpy as np
import pytest

import embr
from conftest import SOURCE_DIR


class Stop(Exception):
    pass


def big_corpus(path, lines=60000):
    r = np.random.default_rng(2)
    words = np.array([f"w{i}" for i in range(300)])
    with open(path, "w") as f:
        for _ in range(lines // 1000):
            block = words[r.integers(0, 300, (1000, 12))]
            f.write("\n".join(" ".join(row) for row in block) + "\n")


def cancel_after_first(calls, stage=""):
    """A callback that stops the call at its first report from mid-way (a stage's last report,
    done == total, is let through) whose detail starts with `stage`."""
    def progress(done, total, rate, detail):
        if done < total and detail.startswith(stage):
            calls.append((done, total, rate, detail, time.perf_counter()))
            raise Stop(f"stopped at {done} of {total}")
    return progress


def assert_stopped_early(calls, t0, t1):
    """The callback ran once, mid-way, and the call returned soon after it: well before the time
    the whole run would take at the rate it had reached by then."""
    assert len(calls) == 1
    done, total, _, _, t_cb = calls[0]
    assert 0 < done < total
    full_estimate = (t_cb - t0) * total / done
    assert t1 - t0 < 0.5 * full_estimate, (t1 - t0, full_estimate)


def test_word2vec_progress_and_cancel(tmp_path):
    big_corpus(tmp_path / "c.txt", lines=20000)
    seen = []
    m = embr.Word2Vec(corpus_file=str(tmp_path / "c.txt"), vector_size=16, min_count=1, epochs=1, workers=1,
                      sg=1, progress=lambda *a: seen.append(a))
    # two stages: counting the vocabulary (in bytes), then training (in words); each stage's last
    # report always runs
    assert seen[0][3] == "counting words" and seen[0][0] == seen[0][1] == (tmp_path / "c.txt").stat().st_size
    train = seen[1:]
    dones = [s[0] for s in train]
    assert dones == sorted(dones) and train[-1][0] == m.stats["words_done"] and train[-1][3] == "done"
    assert all(s[1] == m.stats["corpus_words"] for s in train)
    assert all(s[3].startswith("alpha ") for s in train[:-1])
    # cancelled from the callback: a longer run stops at the first report of its training (on a
    # loaded machine the vocabulary count, nearly done at its first report, may report mid-way too:
    # stopping there says nothing about how early a stop comes)
    big_corpus(tmp_path / "c.txt")
    calls = []
    t0 = time.perf_counter()
    with pytest.raises(Stop, match="stopped at"):
        embr.Word2Vec(corpus_file=str(tmp_path / "c.txt"), vector_size=32, min_count=1, epochs=20, workers=1,
                      sg=1, progress=cancel_after_first(calls, "alpha"))
    assert_stopped_early(calls, t0, time.perf_counter())


def test_tsne_progress_and_cancel(rng):
    X = rng.standard_normal((400, 10)).astype(np.float32)
    seen = []
    Y = embr.tsne(X, perplexity=20, n_iter=120, method="exact", threads=1, progress=lambda *a: seen.append(a))
    assert Y.shape == (400, 2) and seen[-1][0] == seen[-1][1] == 120
    calls = []
    t0 = time.perf_counter()
    with pytest.raises(Stop):
        embr.tsne(X, perplexity=20, n_iter=100000, method="exact", threads=1, progress=cancel_after_first(calls))
    assert_stopped_early(calls, t0, time.perf_counter())
    with pytest.raises(Stop):  # scikit-learn's interface passes it on
        embr.TSNE(perplexity=20, n_iter=100000, n_jobs=1, progress=cancel_after_first([])).fit_transform(X)


def test_index_add_progress_and_cancel(rng):
    x = rng.standard_normal((20000, 32)).astype(np.float32)
    embr.set_num_threads(1)
    try:
        small = embr.Index(32, "hnsw:M=8,efc=40")
        seen = []
        small.add(x[:2000], progress=lambda *a: seen.append(a))
        assert seen[-1][:2] == (2000, 2000) and len(small) == 2000
        ix = embr.Index(32, "hnsw:M=16,efc=400")
        calls = []
        t0 = time.perf_counter()
        with pytest.raises(Stop):
            ix.add(x, progress=cancel_after_first(calls))
        assert_stopped_early(calls, t0, time.perf_counter())
        # the library's word: the index holds a partial graph (the batch counted, part of it
        # linked); it stays safe to search
        D, I = ix.search(x[:5], 3)
        assert (I >= 0).all() and (I < 20000).all()
        # k-means may finish before its first report: an exception from the final report still
        # propagates (the trained cells are kept: the call had done its work)
        def always(*a):
            raise Stop()
        ivf = embr.Index(32, "ivfflat:nlist=64")
        with pytest.raises(Stop):
            ivf.train(x, progress=always)
    finally:
        embr.set_num_threads(0)


def test_knn_progress():
    r = np.random.default_rng(3)
    xb, xq = r.random((2000, 16), dtype=np.float32), r.random((300, 16), dtype=np.float32)
    seen = []
    D, I = embr.knn(xb, xq, 4, progress=lambda *a: seen.append(a))
    np.testing.assert_array_equal(I, embr.knn(xb, xq, 4)[1])
    assert seen and seen[-1][0] == seen[-1][1] == 300


def test_progress_errors(rng):
    X = rng.standard_normal((50, 4)).astype(np.float32)
    with pytest.raises(TypeError, match="progress must be None or a callable"):
        embr.tsne(X, perplexity=5, progress=3)
    with pytest.raises(TypeError, match="progress"):
        embr.Index(4, "flat").add(X, progress="bar")
    with pytest.raises(TypeError):  # a callable with the wrong arity: its TypeError propagates
        embr.tsne(X, perplexity=5, n_iter=50, progress=lambda done: None)


def test_ctrl_c_stops_a_call_without_callback(rng):
    """Ctrl-C while t-SNE runs (a run of about a minute): KeyboardInterrupt within a fraction of a second."""
    X = rng.standard_normal((300, 10)).astype(np.float32)
    started = threading.Event()
    seen_after = []

    def interrupt():
        started.wait(10)
        time.sleep(0.3)
        _thread.interrupt_main()  # as SIGINT's handler does

    t = threading.Thread(target=interrupt)
    t.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            started.set()
            embr.tsne(X, perplexity=20, n_iter=100000, method="exact", threads=1)
            seen_after.append("returned")  # not reached
    finally:
        t.join()
    assert not seen_after and time.perf_counter() - t0 < 20


CLIP = os.path.join(SOURCE_DIR, "tests", "ref", "clip_openai.safetensors")


@pytest.mark.skipif(not os.path.exists(CLIP), reason="tests/ref/clip_openai.safetensors missing")
def test_model_embed_progress_and_cancel():
    """Model.embed / embed_texts report images (texts) done, give the same rows with a callback as
    without, and stop between batches when the callback raises."""
    m = embr.Model.load(CLIP)
    x = np.random.default_rng(4).standard_normal((256,) + m.input_shape).astype(np.float32)
    seen = []
    E = m.embed(x, batch=1, progress=lambda *a: seen.append(a))
    np.testing.assert_array_equal(E, m.embed(x, batch=1))  # the callback changes nothing
    np.testing.assert_allclose(E, m.embed(x, batch=7), rtol=1e-4, atol=1e-5)
    assert seen[-1][:2] == (256, 256) and all(0 < s[0] <= 256 for s in seen)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)
    calls = []
    many = np.repeat(x, 16, axis=0)  # long enough (about a second) for a report mid-way
    t0 = time.perf_counter()
    with pytest.raises(Stop):
        m.embed(many, batch=1, progress=cancel_after_first(calls))
    assert_stopped_early(calls, t0, time.perf_counter())
    with pytest.raises(TypeError, match="progress"):
        m.embed(x[:1], progress=5)
    # embed_images reports after each batch; an exception from the callback propagates
    imgs = [np.full((20, 20, 3), i, np.uint8) for i in range(5)]
    seen = []
    m.embed_images(imgs, batch=2, progress=lambda *a: seen.append(a[:2]))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    with pytest.raises(Stop):
        m.embed_images(imgs, batch=2, progress=cancel_after_first([]))
