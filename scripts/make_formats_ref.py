#!/usr/bin/python3
"""Writes the files other tools produce that the format tests read (tests/ref/numpy/).

Each holds the same 2 x 3 float32 matrix A (or says what it should read as), written the way
users' programs write it: np.save of a transposed array (Fortran order), big-endian dtypes, a
0-row array, np.savez (a zip archive), and pandas' DataFrame.to_csv with its index column.
tests/test_formats.c (test_numpy_written_files) reads them and compares with A; ctest never
needs Python.

Needs Debian's python3-numpy and python3-pandas. Run from the repository root:
  /usr/bin/python3 scripts/make_formats_ref.py
"""
import numpy as np
import pandas as pd

OUT = "tests/ref/numpy/"
A = np.array([[1, 2, 3], [-4.5, 0.005, 6e20]], dtype=np.float32)

# np.save(path, B.T) where B is C-ordered: NumPy writes the transpose in Fortran order.
np.save(OUT + "fortran.npy", A.T.copy().T)
np.save(OUT + "big_endian_f4.npy", A.astype(">f4"))
np.save(OUT + "big_endian_f8_fortran.npy", np.asfortranarray(A.astype(">f8")))
np.save(OUT + "big_endian_f2.npy", np.array([[1, -2, 0.5], [65504, 0, -0.25]], dtype=">f2"))
np.save(OUT + "zero_rows.npy", np.zeros((0, 3), dtype=np.float32))
np.savez(OUT + "arrays.npz", a=A)
pd.DataFrame(A).to_csv(OUT + "pandas.csv")
pd.DataFrame(A, columns=["x", "y", "z"]).to_csv(OUT + "pandas_named.tsv", sep="\t")

# The writers did what the test assumes.
assert np.load(OUT + "fortran.npy").flags.f_contiguous
assert np.load(OUT + "big_endian_f8_fortran.npy").dtype.str == ">f8"
