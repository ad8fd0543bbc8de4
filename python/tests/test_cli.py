"""The Python package and the `embr` tool give the same results on the same data: exact k-NN,
flat and HNSW indexes (built with one thread: HNSW's level draws are seeded), a collection's
filtered search, word2vec (one worker, fixed seed), t-SNE (one thread, fixed seed), CLIP image
embeddings and plots. The tool is build/embr of the source folder, or EMBR_CLI."""
import json
import os
import re
import subprocess

import numpy as np
import pytest

import embr
from conftest import SOURCE_DIR

CLI = os.environ.get("EMBR_CLI") or os.path.join(SOURCE_DIR, "build", "embr")
# Skipped only when nobody said where the tool is (make python-test does: then it must be there).
pytestmark = pytest.mark.skipif(not os.environ.get("EMBR_CLI") and not os.access(CLI, os.X_OK),
                                reason=f"no embr tool at {CLI} (set EMBR_CLI)")


def cli(*args, cwd=None):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, f"embr {' '.join(map(str, args))}: {r.stderr}"
    return r.stdout


def read_vecs(path, dtype):
    """An .ivecs / .fvecs file (each row: int32 dim, then dim values) as an (n, dim) array."""
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine", "l1"])
def test_knn_equals_cli_search(tmp_path, data, metric):
    xb, xq = data
    np.save(tmp_path / "xb.npy", xb)
    np.save(tmp_path / "xq.npy", xq)
    cli("search", "--base", tmp_path / "xb.npy", "--query", tmp_path / "xq.npy", "-k", 7, "-m", metric,
        "--out-ids", tmp_path / "i.ivecs", "--out-dist", tmp_path / "d.fvecs", "-q")
    D, I = embr.knn(xb=xb, xq=xq, k=7, metric=metric)
    np.testing.assert_array_equal(I, read_vecs(tmp_path / "i.ivecs", np.int32))
    np.testing.assert_array_equal(D, read_vecs(tmp_path / "d.fvecs", np.float32))


@pytest.mark.parametrize("spec", ["flat", "hnsw:M=12,efc=80,ef=40"])
def test_index_equals_cli_index(tmp_path, data, spec):
    xb, xq = data
    np.save(tmp_path / "xb.npy", xb)
    np.save(tmp_path / "xq.npy", xq)
    cli("index", "build", "-s", spec, "-m", "l2", "-i", tmp_path / "xb.npy", "-o", tmp_path / "cli.idx", "-t", 1, "-q")
    cli("index", "search", tmp_path / "cli.idx", "--query", tmp_path / "xq.npy", "-k", 10, "-t", 1,
        "--out-ids", tmp_path / "i.ivecs", "--out-dist", tmp_path / "d.fvecs", "-q")
    ix = embr.Index(32, spec, "l2")
    embr.set_num_threads(1)
    try:
        ix.add(xb)
    finally:
        embr.set_num_threads(0)
    ix.save(tmp_path / "py.idx")
    if spec == "flat":  # the same file, to the byte
        assert (tmp_path / "py.idx").read_bytes() == (tmp_path / "cli.idx").read_bytes()
    # (an HNSW file's unused link slots are not zeroed by the library, so its bytes vary from run
    # to run; the graph is compared through its answers, at the index's ef and a wide one)
    cli_ix = embr.Index.load(tmp_path / "cli.idx")
    for index in (ix, cli_ix):
        D, I = index.search(xq, 10)
        np.testing.assert_array_equal(I, read_vecs(tmp_path / "i.ivecs", np.int32))
        np.testing.assert_array_equal(D, read_vecs(tmp_path / "d.fvecs", np.float32))
    for ef in (10, 200):
        for a, b in zip(ix.search(xq, 10, ef=ef), cli_ix.search(xq, 10, ef=ef)):
            np.testing.assert_array_equal(a, b)


def test_collection_filtered_search_equals_cli(tmp_path, rng):
    x = rng.standard_normal((400, 16)).astype(np.float32)
    ids = [f"item-{i:03d}" for i in range(400)]
    meta = [{"genre": ["jazz", "rock", "folk"][i % 3], "year": 1950 + i % 70} for i in range(400)]
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    (tmp_path / "meta.jsonl").write_text("\n".join(json.dumps(m) for m in meta) + "\n")
    np.save(tmp_path / "q.npy", x[:5] + 0.1)
    flt = 'genre = "jazz" and year >= 1990'
    cli("collection", "create", tmp_path / "by_cli", "--dim", 16, "--metric", "cosine", "--index", "flat")
    cli("collection", "add", tmp_path / "by_cli", "-i", tmp_path / "x.npy", "--ids", tmp_path / "ids.txt",
        "--metadata", tmp_path / "meta.jsonl", "-q")
    with embr.Collection.create(tmp_path / "by_py", 16, "cosine", "flat") as c:
        c.add(x, ids, meta)
    for folder in ("by_cli", "by_py"):
        out = cli("collection", "search", tmp_path / folder, "--query", tmp_path / "q.npy", "-k", 6, "-f", flt,
                  "--with-metadata", "-q")
        rows = [line.split("\t") for line in out.splitlines()]
        with embr.Collection(tmp_path / folder, read_only=True) as c:
            hits = c.search(np.load(tmp_path / "q.npy"), 6, filter=flt)
        expect = [[str(q), str(r), h.id, h.metadata] for q, row in enumerate(hits) for r, h in enumerate(row, 1)]
        assert [r[:3] for r in rows] == [e[:3] for e in expect]
        assert [json.loads(r[4]) for r in rows] == [e[3] for e in expect]
        dist = np.array([h.distance for row in hits for h in row], np.float32)
        np.testing.assert_allclose(dist, np.array([float(r[3]) for r in rows], np.float32), rtol=0, atol=5e-6)
        assert all(m["genre"] == "jazz" and m["year"] >= 1990 for _, _, _, m in expect)


def corpus(path, lines=4000, seed=5):
    r = np.random.default_rng(seed)
    groups = [["king", "queen", "prince", "crown", "throne"], ["ship", "sea", "boat", "sail", "harbour"],
              ["music", "song", "band", "guitar", "piano"]]
    with open(path, "w") as f:
        for _ in range(lines):
            g = groups[r.integers(0, 3)]
            f.write(" ".join(g[j] for j in r.integers(0, len(g), 8)) + "\n")


@pytest.mark.parametrize("sg", [1, 0])
def test_word2vec_equals_cli(tmp_path, sg):
    corpus(tmp_path / "c.txt")
    cli("w2v", "train", "-i", tmp_path / "c.txt", "-o", tmp_path / "cli.bin", "--dim", 16, "--window", 3,
        "--min-count", 1, "--epochs", 2, "--threads", 1, "--seed", 7, *([] if sg else ["--cbow"]), "-q")
    m = embr.Word2Vec(corpus_file=str(tmp_path / "c.txt"), vector_size=16, window=3, min_count=1, epochs=2,
                      workers=1, seed=7, sg=sg)
    m.save_word2vec_format(tmp_path / "py.bin", binary=True)
    assert (tmp_path / "py.bin").read_bytes() == (tmp_path / "cli.bin").read_bytes()


def test_tsne_equals_cli(tmp_path, rng):
    X = rng.standard_normal((120, 8)).astype(np.float32)
    X[:60] += 4
    np.save(tmp_path / "x.npy", X)
    for method in ("exact", "bh"):
        cli("tsne", "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--perplexity", 15, "--iters", 300,
            "--method", method, "--seed", 9, "--threads", 1, "-q")
        Y = embr.tsne(X, perplexity=15, n_iter=300, method={"bh": "barnes_hut"}.get(method, method), seed=9,
                      threads=1)
        np.testing.assert_array_equal(Y, np.load(tmp_path / "y.npy"))


CLIP = os.path.join(SOURCE_DIR, "tests", "ref", "clip_openai.safetensors")


@pytest.mark.skipif(not os.path.exists(CLIP), reason="tests/ref/clip_openai.safetensors missing")
def test_clip_image_embeddings_equal_cli(tmp_path, rng):
    paths = []
    for i, shape in enumerate([(40, 50, 3), (33, 20), (64, 64, 3)]):
        p = tmp_path / f"im{i}.pgm"
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        if img.ndim == 3:  # written as binary PPM / PGM: formats the library reads
            p = p.with_suffix(".ppm")
            p.write_bytes(b"P6\n%d %d\n255\n" % (shape[1], shape[0]) + img.tobytes())
        else:
            p.write_bytes(b"P5\n%d %d\n255\n" % (shape[1], shape[0]) + img.tobytes())
        paths.append(str(p))
    paths.append(os.path.join(SOURCE_DIR, "tests", "ref", "clip", "rgb_45x61.png"))
    (tmp_path / "list.txt").write_text("\n".join(paths) + "\n")
    cli("embed", "--model", CLIP, "--images", tmp_path / "list.txt", "-o", tmp_path / "e.npy", "-t", 1, "-q")
    m = embr.Model.load(CLIP)
    E = m.embed_images(paths, normalize=True)
    ref = np.load(tmp_path / "e.npy")
    assert E.shape == ref.shape
    # the same pixels and weights; the unit-length scaling is NumPy's here, the library's there
    np.testing.assert_allclose(E, ref, rtol=0, atol=2e-7)
    np.testing.assert_array_equal(m.embed_images(paths), m.embed(m.preprocess(paths)))


def test_plot_equals_cli(tmp_path, rng):
    Y = rng.standard_normal((60, 2)).astype(np.float32)
    labels = [str(i % 4) for i in range(60)]
    np.save(tmp_path / "y.npy", Y)
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    for ext in ("png", "svg", "html", "pdf"):
        cli("plot", "-i", tmp_path / "y.npy", "-o", tmp_path / f"cli.{ext}", "--labels", tmp_path / "labels.txt",
            "--title", "map", "-W", 400, "-H", 300, "-q")
        assert embr.plot(Y, labels, tmp_path / f"py.{ext}", title="map", width=400, height=300) == \
            str(tmp_path / f"py.{ext}")
        a, b = (tmp_path / f"cli.{ext}").read_bytes(), (tmp_path / f"py.{ext}").read_bytes()
        if ext == "svg":  # cairo numbers its surfaces per process: <g id="surfaceN">
            a, b = (re.sub(rb'id="surface\d+"', b"", v) for v in (a, b))
        if ext == "pdf":  # the creation time
            a, b = (re.sub(rb"/CreationDate \(D:\d+Z\)", b"", v) for v in (a, b))
        assert a == b, ext
    # numeric labels as numbers give the same picture as their strings
    embr.plot(Y, np.arange(60) % 4, tmp_path / "num.png", title="map", width=400, height=300)
    assert (tmp_path / "num.png").read_bytes() == (tmp_path / "py.png").read_bytes()
