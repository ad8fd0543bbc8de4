"""embr.Collection: create/open, add with metadata, filtered search, get, delete, compact, info,
context manager, errors, several Python threads on one handle."""
import threading

import numpy as np
import pytest

import embr


@pytest.fixture
def songs(rng):
    x = rng.standard_normal((300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = [f"song-{i:04d}" for i in range(300)]
    meta = [{"genre": ["jazz", "rock", "folk"][i % 3], "year": 1950 + i % 70} for i in range(300)]
    return x, ids, meta


def test_create_add_search_get_delete(tmp_path, songs):
    x, ids, meta = songs
    path = tmp_path / "music"
    with embr.Collection.create(path, 16, "cosine", "hnsw:M=16,efc=100") as c:
        c.add(x, ids, meta)
        assert len(c) == 300 and c.dim == 16 and c.metric == "cosine"
        hits = c.search(x[5], 5)
        assert hits[0].id == "song-0005" and hits[0].distance == pytest.approx(1.0, abs=1e-5)
        assert hits[0].metadata == {"genre": "folk", "year": 1955}
        hits = c.search(x[:3], 4, filter='genre = "jazz" and year >= 1990')
        assert len(hits) == 3
        for row in hits:
            assert len(row) == 4
            for h in row:
                assert h.metadata["genre"] == "jazz" and h.metadata["year"] >= 1990
            assert [h.distance for h in row] == sorted((h.distance for h in row), reverse=True)
        r = c.get("song-0042")
        np.testing.assert_array_equal(r.vector, x[42])
        assert r.metadata == meta[42] and "song-0042" in c and "nope" not in c
        assert c.delete(["song-0042", "missing"]) == 1
        assert "song-0042" not in c
        with pytest.raises(KeyError):
            c.get("song-0042")
        c.compact()
        info = c.info()
        assert info["count"] == 299 and info["deletes_logged"] == 0 and info["index"].startswith("hnsw")
    # Reopened: everything durable
    with embr.Collection(path, read_only=True) as c:
        assert len(c) == 299
        assert c.search(x[7], 1)[0].id == "song-0007"
        with pytest.raises(ValueError, match="read-only|read only|RDONLY|unsupported"):
            c.add(x[:1], ["new"])
    with pytest.raises(ValueError, match="closed"):
        c.search(x[0], 1)


def test_arrays_and_padding(tmp_path, songs):
    x, ids, meta = songs
    with embr.Collection.create(tmp_path / "c", 16, "l2", "flat") as c:
        c.add(x[:3], ids[:3])
        D, got = c.search_arrays(x[:2], 5)
        assert D.dtype == np.float32 and D.shape == (2, 5)
        assert got[0][:1] == ["song-0000"] and got[0][3:] == [None, None]
        assert len(c.search(x[0], 5)) == 3  # padding dropped
        assert c.search(x[0], 5)[0].metadata is None


def test_errors(tmp_path, songs):
    x, ids, meta = songs
    with pytest.raises(FileNotFoundError):
        embr.Collection(tmp_path / "none")
    c = embr.Collection.create(tmp_path / "c", 16)
    with pytest.raises(ValueError, match="collection"):
        embr.Collection.create(tmp_path / "c", 16)
    c.add(x[:2], ids[:2])
    with pytest.raises(ValueError, match="song-0001"):
        c.add(x[1:3], ids[1:3])  # present id: whole batch refused
    assert len(c) == 2
    with pytest.raises(ValueError, match="columns"):
        c.add(x[:1, :8], ["a"])
    with pytest.raises(ValueError, match="2 ids for 1"):
        c.add(x[:1], ["a", "b"])
    with pytest.raises(TypeError):
        c.add(x[:1], [3])
    with pytest.raises(ValueError, match="col|filter|expect"):
        c.search(x[0], 3, filter="genre = = 3")
    with pytest.raises(ValueError, match="k must be >= 1"):
        c.search(x[0], 0)
    with pytest.raises(ValueError):
        c.add(x[:1], ["x"], ['{"not json'])
    c.close()
    c.close()


def test_threads_share_one_handle(tmp_path, songs):
    x, ids, meta = songs
    c = embr.Collection.create(tmp_path / "c", 16, "cosine", "hnsw")
    c.add(x[:100], ids[:100], meta[:100])
    errors = []

    def writer(lo):
        try:
            for s in range(lo, lo + 100, 20):
                c.add(x[s:s + 20], ids[s:s + 20], meta[s:s + 20])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def reader():
        try:
            for i in range(50):
                assert len(c.search(x[i], 3)) == 3
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=writer, args=(lo,)) for lo in (100, 200)] + \
         [threading.Thread(target=reader) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert len(c) == 300
    c.close()
