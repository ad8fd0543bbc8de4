"""Shared fixtures of the Python package's tests (pytest, Debian's python3-pytest)."""
import os

import numpy as np
import pytest

# Spinning OpenMP threads crawl on a shared machine; results do not depend on it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def data(rng):
    """Base and query vectors: 3000 x 32 and 50 x 32, float32, Gaussian blobs."""
    centres = rng.standard_normal((20, 32)).astype(np.float32) * 4
    xb = (centres[rng.integers(0, 20, 3000)] + rng.standard_normal((3000, 32))).astype(np.float32)
    xq = (centres[rng.integers(0, 20, 50)] + rng.standard_normal((50, 32))).astype(np.float32)
    return xb, xq
