"""The documentation runs as written: the ```python blocks of docs/python.md (in order, in one
namespace, in an empty folder; EMBR_SRC is the source folder), and of README.md's "Python"
section."""
import os
import re

from conftest import SOURCE_DIR


def blocks(path, section=None):
    """(line, code) of each ```python block of the file, or of its "## section"."""
    text = open(path, encoding="utf-8").read()
    lo, hi = 0, len(text)
    if section:
        lo = text.index(f"\n## {section}\n")
        nxt = text.find("\n## ", lo + 1)
        hi = nxt if nxt > 0 else hi
    return [(text[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", text, re.S | re.M) if lo <= m.start() < hi]


def run(path, found, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMBR_SRC", SOURCE_DIR)
    ns = {"__name__": "__docs__"}
    for line, code in found:
        exec(compile(code, f"{os.path.relpath(path, SOURCE_DIR)}:{line}", "exec"), ns)


def test_docs_python_md_runs(tmp_path, monkeypatch, capsys):
    path = os.path.join(SOURCE_DIR, "docs", "python.md")
    found = blocks(path)
    assert len(found) >= 6, "docs/python.md: expected its walk-through's python blocks"
    run(path, found, tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert "harbour" in out and "float32 int64 (100, 10)" in out


def test_readme_python_section_runs(tmp_path, monkeypatch):
    path = os.path.join(SOURCE_DIR, "README.md")
    found = blocks(path, "Python")
    assert len(found) == 1, "README.md: expected one python block in its Python section"
    run(path, found, tmp_path, monkeypatch)
