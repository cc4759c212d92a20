#!/usr/bin/env python3
# ruff: noqa: UP031
"""Generate src/vocab/unicode-tables.cpp from Python's unicodedata.

Tables: a two-stage flag table (letter \\p{L}, number \\p{N}, White_Space, NFC-sensitive) over all code
points, canonical combining classes, full canonical decompositions and the primary composites used by NFC.
Run: python scripts/gen_unicode_tables.py > src/vocab/unicode-tables.cpp
"""

from __future__ import annotations

import sys
import unicodedata
from typing import Dict, List, Set, Tuple

MAX_CP = 0x110000
BLOCK = 256

# Unicode White_Space (PropList.txt); unicodedata does not expose it. This is Oniguruma's \s.
WHITE_SPACE = (
    list(range(0x09, 0x0E)) + [0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B))
    + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)

F_LETTER, F_NUMBER, F_SPACE, F_NFC = 1, 2, 4, 8

SBASE, LBASE, VBASE, TBASE = 0xAC00, 0x1100, 0x1161, 0x11A7
LCOUNT, VCOUNT, TCOUNT = 19, 21, 28
SCOUNT = LCOUNT * VCOUNT * TCOUNT


def canon_decomp(cp: int) -> List[int]:
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return []
    return [int(x, 16) for x in d.split()]


def full_decomp(cp: int) -> List[int]:
    d = canon_decomp(cp)
    if not d:
        return [cp]
    out: List[int] = []
    for c in d:
        out.extend(full_decomp(c))
    return out


def reference_unknown() -> Set[int]:
    """Code points whose normalization HF `tokenizers` (the reference of the byte-level BPE tokenizers)
    does not know: its NFC tables are from an older Unicode version than this Python's. Found by probing
    each normalization-relevant character in a few contexts; they are then treated as plain starters
    (class 0, no decomposition, no composition), as the reference does. Empty without `tokenizers`."""
    try:
        from tokenizers import normalizers
    except ImportError:
        return set()
    nfc = normalizers.NFC()
    unknown: Set[int] = set()
    for cp in range(0xA0, MAX_CP):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        if not (unicodedata.combining(c) or canon_decomp(cp) or unicodedata.normalize("NFC", c) != c):
            continue
        d = unicodedata.normalize("NFD", c)
        for p in (c, "a" + c, c + "\u0334", "\u0345" + c, "a\u0345" + c + "\u0334", d, "a" + d + "\u0345",
                  c + "\u0345\u0334", "\u0334" + c):
            if nfc.normalize_str(p) != unicodedata.normalize("NFC", p):
                unknown.add(cp)
                break
    return unknown


def main() -> None:
    is_surrogate = range(0xD800, 0xE000)
    unknown = reference_unknown()
    comp: Dict[Tuple[int, int], int] = {}
    decomp: Dict[int, List[int]] = {}
    ccc: Dict[int, int] = {}
    second: set = set()
    for cp in range(MAX_CP):
        if cp in is_surrogate:
            continue
        if cp in unknown:
            continue
        ch = chr(cp)
        c = unicodedata.combining(ch)
        if c:
            ccc[cp] = c
        if SBASE <= cp < SBASE + SCOUNT:
            continue  # Hangul: algorithmic
        d = canon_decomp(cp)
        if d:
            decomp[cp] = full_decomp(cp)
            if len(d) == 2 and unicodedata.normalize("NFC", ch) == ch and not (set(d) & unknown):
                comp[(d[0], d[1])] = cp
                second.add(d[1])
    flags = bytearray(MAX_CP)
    for cp in range(MAX_CP):
        if cp in is_surrogate:
            continue
        ch = chr(cp)
        cat = unicodedata.category(ch)
        f = 0
        if cat[0] == "L":
            f |= F_LETTER
        elif cat[0] == "N":
            f |= F_NUMBER
        if cp in ccc or cp in second or (cp not in unknown and unicodedata.normalize("NFC", ch) != ch):
            f |= F_NFC
        if VBASE <= cp < VBASE + VCOUNT or TBASE < cp < TBASE + TCOUNT:
            f |= F_NFC  # Hangul V and T jamo compose with a preceding L / LV syllable
        flags[cp] = f
    for cp in WHITE_SPACE:
        flags[cp] |= F_SPACE

    blocks: Dict[bytes, int] = {}
    stage1: List[int] = []
    stage2: List[bytes] = []
    for b in range(MAX_CP // BLOCK):
        blk = bytes(flags[b * BLOCK:(b + 1) * BLOCK])
        if blk not in blocks:
            blocks[blk] = len(stage2)
            stage2.append(blk)
        stage1.append(blocks[blk])

    w = sys.stdout.write
    w("// GENERATED FILE, do not edit: made by scripts/gen_unicode_tables.py from Python %s's unicodedata\n"
      % sys.version.split()[0])
    w("// (Unicode %s). Regenerate with:\n" % unicodedata.unidata_version)
    w("//   python scripts/gen_unicode_tables.py > src/vocab/unicode-tables.cpp\n")
    w("// NFC data left out for %d code points unknown to the installed HF tokenizers' (older) tables.\n"
      % len(unknown))
    w('#include "vocab/unicode.h"\n\nnamespace gptneox::unicode_tables {\n\n')
    w("const char *const unicode_version = \"%s\";\n\n" % unicodedata.unidata_version)
    w("const uint16_t flag_stage1[%d] = {\n" % len(stage1))
    for i in range(0, len(stage1), 24):
        w("    " + ",".join(str(x) for x in stage1[i:i + 24]) + ",\n")
    w("};\n\n")
    w("const uint8_t flag_stage2[%d][%d] = {\n" % (len(stage2), BLOCK))
    for blk in stage2:
        w("    {")
        w(",".join(str(x) for x in blk))
        w("},\n")
    w("};\n\n")
    items = sorted(ccc.items())
    w("const ccc_entry ccc_table[%d] = {\n" % len(items))
    for i in range(0, len(items), 8):
        w("    " + " ".join("{0x%X,%d}," % kv for kv in items[i:i + 8]) + "\n")
    w("};\nconst size_t ccc_count = %d;\n\n" % len(items))
    pool: List[int] = []
    entries = []
    for cp in sorted(decomp):
        d = decomp[cp]
        entries.append((cp, len(pool), len(d)))
        pool.extend(d)
    w("const uint32_t decomp_pool[%d] = {\n" % len(pool))
    for i in range(0, len(pool), 12):
        w("    " + ",".join("0x%X" % x for x in pool[i:i + 12]) + ",\n")
    w("};\n")
    w("const decomp_entry decomp_table[%d] = {\n" % len(entries))
    for i in range(0, len(entries), 6):
        w("    " + " ".join("{0x%X,%d,%d}," % e for e in entries[i:i + 6]) + "\n")
    w("};\nconst size_t decomp_count = %d;\n\n" % len(entries))
    pairs = sorted(comp.items())
    w("const comp_entry comp_table[%d] = {\n" % len(pairs))
    for i in range(0, len(pairs), 6):
        w("    " + " ".join("{0x%X,0x%X,0x%X}," % (a, b, c) for (a, b), c in pairs[i:i + 6]) + "\n")
    w("};\nconst size_t comp_count = %d;\n\n" % len(pairs))
    w("} // namespace gptneox::unicode_tables\n")


if __name__ == "__main__":
    main()
