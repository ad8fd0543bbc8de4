#!/usr/bin/python3
"""Writes the image-caption pairs of the emoji data set for the CLIP demo and benchmark.

The data folder (default ../shared/data/emoji beside the repository) holds img/*.png (64x64) and
emoji.jsonl, one record per image: file, unified, name, short_names, tags, category, subcategory,
split ("train" or "test"). Written into --out (default: the current folder), image paths relative
to the data folder (pass it as the data folder to embr):

  train.tsv            split == "train"; several captions per image, in this order, each kept once:
                         the name                      "grinning face"
                         "an emoji of " + the name     "an emoji of grinning face"
                         each short name, '_' -> ' '   "grinning"
                         the tags as one phrase         "face, grin"
                       (category and subcategory are left out: they are what zero-shot is tested on;
                       with --category, one more: "a {category} emoji: {name}", category in lower
                       case with '&' as 'and', so the category words are seen in training, as
                       CLIP's label words are seen in its web captions; the held-out images never)
  test.tsv             split == "test"; one caption per image: the name
  test_categories.tsv  split == "test"; FILE<TAB>category, for zero-shot category accuracy
  train_categories.tsv split == "train"; FILE<TAB>category: with test_categories.tsv, the memory and
                       the queries of `embr eval knn --train-list ... --test-list ...` (docs/dino.md)

Every text field is cleaned before it is written: control characters and Unicode line and paragraph
separators (tab, CR, LF, U+0085, U+2028, U+2029, ...) become spaces, runs of whitespace collapse to
one, and the ends are trimmed, so no value can add a column or a line. A caption that is empty after
cleaning is dropped; a record whose name is empty, whose file is absolute, holds '..' or a control
character, or does not exist is an error naming emoji.jsonl and the line. Files are written whole to
a temporary name and renamed. Python 3 standard library only.

Usage: /usr/bin/python3 scripts/emoji_pairs.py [--data DIR] [--out DIR] [--category]
"""
import argparse
import json
import os
import sys
import unicodedata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "emoji"))


def fail(msg):
    sys.exit("emoji_pairs.py: " + msg)


def clean(text):
    """One line of text: control and separator characters to spaces, whitespace collapsed."""
    out = []
    for ch in str(text):
        cat = unicodedata.category(ch)
        out.append(" " if cat in ("Cc", "Zl", "Zp") or ch.isspace() else ch)
    return " ".join("".join(out).split())


def check_file(where, file, data):
    if not isinstance(file, str) or not file:
        fail("%s: no file" % where)
    if file.startswith("/") or ".." in file.split("/") or any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in file):
        fail("%s: file %r must be a plain relative path (no '..', no control characters)" % (where, file))
    if not os.path.isfile(os.path.join(data, file)):
        fail("%s: image %s not found" % (where, os.path.join(data, file)))
    return file


def category_words(rec):
    return clean(rec.get("category") or "").lower().replace("&", "and")


def train_captions(rec, with_category=False):
    name = clean(rec.get("name", ""))
    caps = [name, "an emoji of " + name]
    if with_category and category_words(rec):
        caps.append("a %s emoji: %s" % (category_words(rec), name))
    caps += [clean(s.replace("_", " ")) for s in rec.get("short_names") or []]
    caps.append(clean(rec.get("tags") or ""))
    seen, out = set(), []
    for c in caps:
        if c and c not in seen:
            seen.add(c)
            out.append(c)
    return out


def read_records(data):
    path = os.path.join(data, "emoji.jsonl")
    if not os.path.isdir(data):
        fail("data folder %s not found (pass --data DIR: the folder holding img/ and emoji.jsonl)" % data)
    if not os.path.isfile(path):
        fail("%s not found (the data folder must hold img/ and emoji.jsonl)" % path)
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = "%s: line %d" % (path, lineno)
            try:
                rec = json.loads(line)
            except ValueError as e:
                fail("%s: not JSON (%s)" % (where, e))
            if not isinstance(rec, dict) or rec.get("split") not in ("train", "test"):
                fail("%s: expected an object with split \"train\" or \"test\"" % where)
            rec["file"] = check_file(where, rec.get("file"), data)
            if not clean(rec.get("name", "")):
                fail("%s: empty name" % where)
            records.append(rec)
    if not records:
        fail("%s: no records" % path)
    return records


def write_tsv(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for a, b in rows:
            f.write("%s\t%s\n" % (a, b))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="the emoji folder (img/, emoji.jsonl); default %(default)s")
    ap.add_argument("--out", default=".", help="where to write the .tsv files (default: the current folder)")
    ap.add_argument("--category", action="store_true", help="add a caption naming the category (train split only)")
    args = ap.parse_args()
    records = read_records(args.data)
    if not os.path.isdir(args.out):
        fail("output folder %s not found" % args.out)
    train = [(r["file"], c) for r in records if r["split"] == "train" for c in train_captions(r, args.category)]
    test = [r for r in records if r["split"] == "test"]
    outputs = {
        "train.tsv": train,
        "test.tsv": [(r["file"], clean(r["name"])) for r in test],
        "test_categories.tsv": [(r["file"], clean(r.get("category") or "") or "unknown") for r in test],
        "train_categories.tsv": [(r["file"], clean(r.get("category") or "") or "unknown")
                                 for r in records if r["split"] == "train"],
    }
    for name, rows in outputs.items():
        write_tsv(os.path.join(args.out, name), rows)
        print("%s: %d images, %d lines" % (os.path.join(args.out, name), len({a for a, _ in rows}), len(rows)))


if __name__ == "__main__":
    main()
