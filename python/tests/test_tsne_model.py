"""embr.tsne / embr.TSNE and embr.Model (a tiny CLIP from tests/ref)."""
import os

import numpy as np
import pytest

import embr
from conftest import SOURCE_DIR


def blobs(rng, n=300, k=3, dim=10):
    c = rng.standard_normal((k, dim)) * 10
    lab = rng.integers(0, k, n)
    return (c[lab] + rng.standard_normal((n, dim))).astype(np.float32), lab


def test_tsne_separates_blobs(rng):
    X, lab = blobs(rng)
    Y = embr.tsne(X, perplexity=20, n_iter=300, threads=1)
    assert Y.dtype == np.float32 and Y.shape == (300, 2)
    # each point's nearest map neighbour is in its own blob
    _, I = embr.knn(Y, Y, 2)
    assert (lab[I[:, 1]] == lab).mean() > 0.95
    np.testing.assert_array_equal(Y, embr.tsne(X, perplexity=20, n_iter=300, threads=1))  # deterministic
    t = embr.TSNE(n_components=3, perplexity=10, n_iter=250, random_state=2, method="barnes_hut", n_jobs=1)
    Z = t.fit_transform(X.astype(np.float64))
    assert Z.shape == (300, 3) and t.embedding_ is Z and t.kl_divergence_ > 0


def test_tsne_errors(rng):
    X, _ = blobs(rng, n=30)
    with pytest.raises(ValueError, match="perplexity"):
        embr.tsne(X, perplexity=30)
    with pytest.raises(ValueError, match="n_components"):
        embr.tsne(X, n_components=4, perplexity=5)
    with pytest.raises(ValueError, match="method"):
        embr.tsne(X, method="umap", perplexity=5)


CLIP = os.path.join(SOURCE_DIR, "tests", "ref", "clip_openai.safetensors")


@pytest.mark.skipif(not os.path.exists(CLIP), reason="tests/ref/clip_openai.safetensors missing")
def test_model_embeds_images(rng):
    m = embr.Model.load(CLIP)
    assert m.has_text and m.dim > 0 and len(m.input_shape) == 3
    png = os.path.join(SOURCE_DIR, "tests", "ref", "clip", "rgb_45x61.png")
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (33, 20), dtype=np.uint8)
    E = m.embed_images([png, img, grey], batch=2)
    assert E.dtype == np.float32 and E.shape == (3, m.dim) and np.isfinite(E).all()
    # the same as preprocessing then embedding, and independent of the batch
    np.testing.assert_allclose(E, m.embed(m.preprocess([png, img, grey])), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(E[1:2], m.embed_images([img]), rtol=1e-4, atol=1e-5)
    En = m.embed_images([img], normalize=True)
    assert np.linalg.norm(En) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="tokenizer"):
        m.embed_texts(["a photo of a cat"])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        m.embed_images(["/nonexistent/missing.png"])
    with pytest.raises(ValueError, match="shape"):
        m.embed(np.zeros((1, 3, 5, 5), np.float32))


def test_model_load_errors(tmp_path):
    p = tmp_path / "m.safetensors"
    p.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(ValueError, match="m.safetensors"):
        embr.Model.load(p)
    with pytest.raises(FileNotFoundError):
        embr.Model.load(tmp_path / "none.safetensors")


def test_plot_errors(tmp_path, rng):
    Y = rng.standard_normal((20, 2)).astype(np.float32)
    with pytest.raises(ValueError, match="labels has 3 entries for 20 points"):
        embr.plot(Y, ["a", "b", "c"], tmp_path / "m.png")
    with pytest.raises(ValueError, match="column"):
        embr.plot(Y[:, :1], None, tmp_path / "m.png")
    with pytest.raises(ValueError, match="m.gif"):
        embr.plot(Y, None, tmp_path / "m.gif")
    bad = Y.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="point 4 has a non-finite"):
        embr.plot(bad, None, tmp_path / "m.svg")
    with pytest.raises(TypeError, match="path"):
        embr.plot(Y)
    with pytest.raises(OSError, match="cannot create"):
        embr.plot(Y, None, tmp_path / "no" / "such" / "m.png")
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left behind
    assert embr.plot(Y, None, tmp_path / "m.PNG", format="svg").endswith("m.PNG")
    assert (tmp_path / "m.PNG").read_bytes().startswith(b"<?xml")
