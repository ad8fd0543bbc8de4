"""Word vectors: embr.Word2Vec and embr.KeyedVectors with gensim's names; results equal gensim's
on the same file (when Debian's python3-gensim is installed)."""
import numpy as np
import pytest

import embr


def corpus(path, lines=6000, seed=1):
    r = np.random.default_rng(seed)
    groups = [["king", "queen", "prince", "princess", "crown", "throne", "palace"],
              ["computer", "program", "software", "data", "code", "machine"],
              ["music", "song", "band", "guitar", "melody", "piano"],
              ["ship", "sea", "boat", "sail", "harbour", "captain"]]
    with open(path, "w") as f:
        for _ in range(lines):
            g = groups[r.integers(0, 4)]
            f.write(" ".join(g[j] for j in r.integers(0, len(g), 9)) + "\n")


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    d = tmp_path_factory.mktemp("w2v")
    corpus(d / "corpus.txt")
    m = embr.Word2Vec(corpus_file=str(d / "corpus.txt"), vector_size=24, min_count=1, sg=1, epochs=2, workers=1,
                      seed=3)
    m.save_word2vec_format(d / "v.bin", binary=True)
    m.wv.save_word2vec_format(d / "v.txt")
    return m, d


def test_train_and_load(vectors):
    m, d = vectors
    wv = m.wv
    assert wv.vectors.dtype == np.float32 and wv.vectors.shape == (len(wv.index_to_key), 24) == (25, 24)
    assert wv.key_to_index[wv.index_to_key[3]] == 3
    for name in ("v.bin", "v.txt"):
        kv = embr.KeyedVectors.load_word2vec_format(d / name)
        assert kv.index_to_key == wv.index_to_key
        np.testing.assert_array_equal(kv.vectors, wv.vectors)
    kv = embr.KeyedVectors.load_word2vec_format(d / "v.bin", binary=True)
    assert kv["king"].shape == (24,) and kv[["king", "queen"]].shape == (2, 24)
    assert kv.most_similar("king", topn=3)[0][0] in {"queen", "prince", "princess", "crown", "throne", "palace"}
    assert kv.doesnt_match(["king", "queen", "prince", "guitar"]) == "guitar"
    assert kv.similarity("king", "queen") > kv.similarity("king", "guitar")
    with pytest.raises(KeyError, match="not present"):
        kv["emperor"]
    with pytest.raises(KeyError):
        kv.most_similar("emperor")
    assert kv.most_similar("king", topn=0) == []
    assert kv.most_similar("king", topn=None).shape == (25,)


def test_sentences_iterable():
    sents = [["a", "b", "c", "d"], ["b", "c", "d", "a"]] * 200
    m = embr.Word2Vec(sentences=sents, vector_size=8, window=2, min_count=1, epochs=1, workers=1)
    assert sorted(m.wv.index_to_key) == ["a", "b", "c", "d"]
    with pytest.raises(TypeError):
        embr.Word2Vec(vector_size=8)


def test_analogy_file(vectors, tmp_path):
    m, d = vectors
    q = tmp_path / "q.txt"
    q.write_text(": royal\nking queen prince princess\nship sea boat sail\n")
    score, sections = m.wv.evaluate_word_analogies(q)
    assert [s["section"] for s in sections] == ["royal", "Total accuracy"]
    total = sections[-1]
    assert sorted(total["correct"] + total["incorrect"]) == [("KING", "QUEEN", "PRINCE", "PRINCESS"),
                                                              ("SHIP", "SEA", "BOAT", "SAIL")]
    assert score == len(total["correct"]) / 2 and total["total"] == 2
    # an unknown word: skipped, or counted as incorrect with dummy4unknown (gensim's switch)
    q.write_text(": royal\nking queen prince emperor\nking queen prince princess\n")
    _, sections = m.wv.evaluate_word_analogies(q, case_insensitive=False)
    assert len(sections[0]["correct"] + sections[0]["incorrect"]) == 1 and sections[0]["total"] == 2
    assert ("king", "queen", "prince", "princess") in sections[0]["correct"] + sections[0]["incorrect"]
    _, sections = m.wv.evaluate_word_analogies(q, case_insensitive=False, dummy4unknown=True)
    assert ("king", "queen", "prince", "emperor") in sections[0]["incorrect"]
    q.write_text("no section\n")
    with pytest.raises(ValueError, match="q.txt"):
        m.wv.evaluate_word_analogies(q)


def test_equals_gensim(vectors):
    gensim_models = pytest.importorskip("gensim.models")
    m, d = vectors
    g = gensim_models.KeyedVectors.load_word2vec_format(str(d / "v.bin"), binary=True)
    e = embr.KeyedVectors.load_word2vec_format(d / "v.bin", binary=True)
    assert e.index_to_key == g.index_to_key
    np.testing.assert_array_equal(e.vectors, g.vectors)
    for args in (dict(positive="king"), dict(positive=["king", "ship"]),
                 dict(positive=["queen", "prince"], negative=["king"]), dict(positive=[("music", 2.0), "sea"]),
                 dict(positive=[e["code"]]), dict(positive="piano", restrict_vocab=15)):
        a, b = e.most_similar(topn=6, **args), g.most_similar(topn=6, **args)
        assert [w for w, _ in a] == [w for w, _ in b], args
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=1e-5, atol=1e-6)
    a = e.most_similar_cosmul(positive=["queen", "prince"], negative=["king"], topn=5)
    b = g.most_similar_cosmul(positive=["queen", "prince"], negative=["king"], topn=5)
    assert [w for w, _ in a] == [w for w, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=1e-5)
    for w1, w2 in (("king", "queen"), ("ship", "guitar")):
        assert e.similarity(w1, w2) == pytest.approx(float(g.similarity(w1, w2)), rel=1e-5, abs=1e-6)
    words = ["king", "queen", "palace", "sea"]
    assert e.doesnt_match(words) == g.doesnt_match(words)


def questions_file(path, wv, n=400, seed=4):
    """Analogy questions over the model's words in three sections, some with an unknown word."""
    r = np.random.default_rng(seed)
    words = wv.index_to_key
    with open(path, "w") as f:
        for sec in ("first", "second", "third"):
            f.write(f": {sec}\n")
            for _ in range(n // 3):
                quad = [words[i] for i in r.integers(0, len(words), 4)]
                if r.random() < 0.1:
                    quad[r.integers(0, 4)] = "unknownword"
                f.write(" ".join(quad) + "\n")


def test_analogies_equal_gensim(vectors, tmp_path):
    """The per-question lists are gensim's, question for question (3CosAdd, case folded or not,
    restricted vocabularies, dummy4unknown)."""
    gensim_models = pytest.importorskip("gensim.models")
    m, d = vectors
    g = gensim_models.KeyedVectors.load_word2vec_format(str(d / "v.bin"), binary=True)
    e = embr.KeyedVectors.load_word2vec_format(d / "v.bin", binary=True)
    questions_file(tmp_path / "q.txt", e)
    for kw in (dict(), dict(case_insensitive=False), dict(restrict_vocab=15), dict(dummy4unknown=True)):
        es, esec = e.evaluate_word_analogies(tmp_path / "q.txt", **kw)
        gs, gsec = g.evaluate_word_analogies(str(tmp_path / "q.txt"), **kw)
        assert [s["section"] for s in esec] == [s["section"] for s in gsec]
        for a, b in zip(esec, gsec):
            assert a["correct"] == b["correct"] and a["incorrect"] == b["incorrect"], (kw, a["section"])
        assert es == pytest.approx(gs)
        assert 0 < len(esec[-1]["correct"]) < len(esec[-1]["correct"]) + len(esec[-1]["incorrect"])


def test_pickle_keyed_vectors(vectors):
    import pickle
    m, _ = vectors
    wv = m.wv
    wv.most_similar("king")  # fills the normalised cache, which is not pickled
    kv = pickle.loads(pickle.dumps(wv))
    assert kv._normed is None and kv.index_to_key == wv.index_to_key and kv.key_to_index == wv.key_to_index
    np.testing.assert_array_equal(kv.vectors, wv.vectors)
    assert kv.most_similar("queen", topn=4) == wv.most_similar("queen", topn=4)
    assert len(pickle.dumps(wv)) < wv.vectors.nbytes * 1.5 + 4096
