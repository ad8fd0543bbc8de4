#!/usr/bin/env python3
"""Writes tests/ref/clip_bpe.jsonl: CLIP tokenizer ids for a fixed set of generated strings, taken
from OpenAI's own tokenizer, for tests/test_bpe.c.

The reference is not part of this repository and this script does not fetch it. Give it:
  --tokenizer DIR   a folder holding OpenAI CLIP's simple_tokenizer.py (e.g. the `clip` folder of
                    an installed or checked-out CLIP), importable together with its dependencies
                    ftfy and regex (Debian: python3-regex; ftfy on sys.path, --extra-path adds one)
  --bpe FILE        bpe_simple_vocab_16e6.txt.gz
Run it from a scratch folder outside the repository, e.g.
  python3 scripts/make_bpe_ref.py --tokenizer /tmp/clipref --bpe ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz \\
      --out tests/ref/clip_bpe.jsonl

Each output line is a JSON object: "text" (the input, ASCII-escaped), "ids" (what
clip.tokenize(text, 77, truncate=True) gives, without the zero padding), "n" (the untruncated
length: tokens + sot + eot) and "mojibake" (1 when ftfy's mojibake repair changes the text: the C
tokenizer does not reproduce that heuristic, so the test does not require those lines to match).
The strings come from a fixed seed, so a rerun writes the same file."""
import argparse
import importlib
import json
import random
import sys
import unicodedata

CONTEXT = 77

WORDS = ("a photo of the cat dog person man woman child car tree house street city beach sunset mountain "
         "river red blue green small large old new two three people sitting standing on in at with near "
         "under over running playing holding wearing shirt hat table food pizza plate bicycle train "
         "airplane sky cloud snow water boat bird horse field grass building window door kitchen").split()

SCRIPTS = [
    "café naïve résumé façade coöperate Ångström São Paulo Kraków Łódź Čeština žluťoučký kůň",
    "Ἀθῆναι ΟΔΟΣ ΣΊΣΥΦΟΣ ΣΑΣ Σ. ΑΣ ὀδυσσεύς λόγος",
    "Москва Привет, мир! ЁЖИК ёжик Україна Їжак",
    "Բարեւ Երեւան", "שָׁלוֹם עולם", "مرحبا بالعالم العربية ١٢٣ ٤٥٦",
    "नमस्ते दुनिया हिन्दी ०१२३", "বাংলা ভাষা", "ภาษาไทย สวัสดี", "ქართული ენა ᲡᲐᲥᲐᲠᲗᲕᲔᲚᲝ",
    "한국어 텍스트 안녕하세요", "ひらがな カタカナ 漢字 日本語の文章です。", "中文字符测试，你好世界！",
    "አማርኛ ቋንቋ", "தமிழ் மொழி", "ᏣᎳᎩ Ꭰ Ꮳ", "Ελληνικά και English mixed μαζί",
    "İstanbul İZMİR ıi Iı", "Straße STRASSE ẞ ß", "K (Kelvin) Å (Angstrom) Ω (Ohm)",
    "ǅemal ǈubica ǋego", "ﬁne ﬂower eﬃcient baﬄe ﬀ ﬅ ﬆ Ĳssel ĳs ŉ",
]

EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵", "1️⃣", "❤️", "🧑🏿‍🚀", "🐈‍⬛", "✋🏻", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "☕", "🤷‍♀️"]

SPECIAL = ["<|startoftext|>", "<|endoftext|>", "<|ENDOFTEXT|>", "a<|endoftext|>b", "<|startoftext|> hi <|endoftext|>",
           "<|ſtartoftext|>", "<|endoftext", "<|end of text|>", "<<|endoftext|>>", "x<|startoftext|>"]

FIXED = [
    "", " ", "   ", "\t", "\n", "\r\n", " \t\n \u3000 \u00a0 ", "\u2028\u2029\x85", "\x1c\x1d\x1e\x1f",
    "a", "A", "I", "1", "!", "'", "''", "'s", "'S", "s'", "a b", "hello world",
    "Hello, World!", "It's", "IT'S", "it'S", "We'Re here", "i'M", "They'LL", "He'D", "don'T", "You'VE",
    "it's they're we've I'm you'll he'd can't won't", "rock 'n' roll", "'''s", "it'ſ", "the dog's bone",
    "o'clock", "'tis", "y'all'd've", "IT’S", "it‘s", "don’t", "“quoted”", "„German“", "‟odd‟ ‛odd‛",
    "ʼapostrophe ʼs", "a\u0345b", "\u0345", "x\u0345\u0345.", "ⓐⓑⓒ ⒶⒷ Ⅻ ⅻ", "½ ¾ ² ³ ¹ ⁴ ₅",
    "0123456789", "3.14159", "1,000,000", "12:30pm", "$100.00 €50 £30 ¥1000", "2024-01-01", "#1 @user",
    "٠١٢٣ ۴۵۶ ०१२ ０１２", "Ⅰ Ⅱ Ⅲ Ⅳ", "10⁻³", "x²+y²=z²",
    "!!!", "?!?!", "...", "---", "***", "!@#$%^&*()_+-=[]{}|;:,.<>?/~`", "a.b.c", "e.g. i.e. etc.",
    "(parenthesised)", "[bracketed]", "{braced}", "<angled>", "a&b", "AT&T", "Q&A",
    "&amp;", "&lt;b&gt;bold&lt;/b&gt;", "&quot;hi&quot;", "&#39;", "&#x27;", "&nbsp;x&nbsp;", "caf&eacute;",
    "CAF&EACUTE;", "STRA&SZLIG;E", "&amp;amp;", "&amp;amp;amp;lt;", "&copy 2024", "&copy; 2024", "&notit;",
    "&not it", "&#128512;", "&#x1F600;", "&#0;", "&#1;", "&#x110000;", "&#150;", "&#x85;", "&#13;x",
    "&#59;", "&#65x;", "&#xZZ;", "&#;", "&;", "&", "&&&", "&unknown;", "&AMP;", "&Amp;", "&ampx",
    "a < b &amp; c", "<p>&amp;</p>", "x &lt; y\n&amp;", "&amp;\n<\n&amp;", "&NotNestedGreaterGreater;",
    "&nGt;", "&fjlig;", "&ThickSpace;x", "&Tab;&NewLine;",
    "ＡＢＣ ａｂｃ １２３ ！？", "ｶﾀｶﾅ ﾊﾝｶｸ", "ﾞﾟ", "full\u3000width\u3000space", "￥￦￠",
    "tab\tseparated\tvalues", "line1\nline2\nline3", "crlf\r\nline", "cr\ronly", "many     spaces",
    "  leading and trailing  ", "nbsp\u00a0here", "thin\u2009space", "zero\u200bwidth", "zw\u200dj",
    "bom\ufeffhere", "\ufeffstart", "rtl\u200fmark", "\u202eoverride", "soft\u00adhyphen",
    "\x1b[31mred\x1b[0m", "\x1b[1;32mgreen", "\x1b[", "\x07bell", "del\x7f", "\x80\x81\x8d\x9f", "\x93quoted\x94",
    "e\u0301", "cafe\u0301", "a\u0308\u0301", "Z\u0351\u0300\u0362\u0327a\u0336\u0354l\u0330g\u0337o",
    "n\u0303", "\u1e9b\u0323", "\u0041\u030a", "\u212b", "\u2126", "ǰ̣",
    "hello😀world", "I ❤️ NY", "👍👍👍", "🙂🙃 🙂", "emoji:🎉!", "#️⃣", "©️®️™️",
    "ALL CAPS SENTENCE HERE", "MiXeD CaSe WoRdS", "camelCaseWord", "snake_case_word", "kebab-case-word",
    "http://example.com/path?q=1&r=2", "user@example.com", "C:\\path\\to\\file.txt", "#hashtag @mention",
    "a" * 200, "ab" * 100, "z" * 1000, "1" * 100, "! " * 60, "😀" * 40, "中" * 100,
    "\U0001d400\U0001d401 \U0001d7ce", "\U00010000", "\U0010fffd", "\ue000private", "\ufffd", "\uffff",
    "<|endoftext|>" * 5, "Σ", "ΣΣ", "aΣ", "aΣb", "aΣ.", "a.Σ", "'Σ'", "ΑΣ\u0301",
]

MOJIBAKE = ["cafÃ©", "â€œquotedâ€\x9d", "Ã¼ber", "Ã©tÃ©", "â€™s", "ÃƒÂ©"]


def tokenize(tok, text):
    ids = [tok.encoder["<|startoftext|>"]] + tok.encode(text) + [tok.encoder["<|endoftext|>"]]
    n = len(ids)
    if n > CONTEXT:
        ids = ids[:CONTEXT]
        ids[-1] = tok.encoder["<|endoftext|>"]
    return ids, n


def assigned(c):
    return unicodedata.category(chr(c)) not in ("Cn", "Cs")


def random_strings(rng, count):
    out = []
    pools = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
             (0x900, 0x9FF), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x206F),
             (0x2100, 0x27BF), (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0xFB00, 0xFB4F),
             (0xFE30, 0xFFEF), (0x1F300, 0x1FAFF), (0x0300, 0x036F), (0x80, 0x9F)]
    while len(out) < count:
        k = rng.randint(1, 24)
        s = []
        for _ in range(k):
            lo, hi = rng.choice(pools)
            c = rng.randint(lo, hi)
            if assigned(c) and c != 0:
                s.append(chr(c))
            if rng.random() < 0.2:
                s.append(rng.choice([" ", "  ", "\t", "\n", "'s", "&amp;", "’", "ﬁ"]))
        out.append("".join(s))
    return out


def captions(rng, count):
    out = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 14))]
        words = [w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w for w in words]
        s = " ".join(words)
        if rng.random() < 0.3:
            s += rng.choice([".", "!", "?", "...", " :)", " #photo", " 2019", "'s", " — ok"])
        out.append(s)
    return out


def long_texts(rng, count):
    out = []
    for _ in range(count):
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 200))))
    return out


def mixed(rng, count):
    parts = SCRIPTS + EMOJI + SPECIAL + FIXED[:120]
    return [" ".join(rng.choice(parts) for _ in range(rng.randint(2, 5))) for _ in range(count)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True, help="folder holding CLIP's simple_tokenizer.py")
    ap.add_argument("--bpe", required=True, help="bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument("--extra-path", action="append", default=[], help="more folders for sys.path (ftfy)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sys.path[:0] = [a.tokenizer] + a.extra_path
    st = importlib.import_module("simple_tokenizer")
    import ftfy
    tok = st.SimpleTokenizer(a.bpe)
    rng = random.Random(20240601)
    texts = list(FIXED) + SCRIPTS + EMOJI + SPECIAL + MOJIBAKE
    texts += captions(rng, 120) + long_texts(rng, 12) + mixed(rng, 100) + random_strings(rng, 150)
    seen, rows = set(), []
    for t in texts:
        if t in seen or "\x00" in t:
            continue
        seen.add(t)
        ids, n = tokenize(tok, t)
        moji = int(ftfy.fix_text(t) != ftfy.fix_text(t, fix_encoding=False))
        rows.append(json.dumps({"text": t, "ids": ids, "n": n, "mojibake": moji}, ensure_ascii=True))
    with open(a.out, "w", encoding="ascii") as f:
        f.write("\n".join(rows) + "\n")
    print("%d strings, ftfy %s, %d with mojibake repair" % (len(rows), ftfy.__version__,
          sum('"mojibake": 1' in r for r in rows)), file=sys.stderr)


if __name__ == "__main__":
    main()
