"""bench/phase_profile.py's accounting: the matrix bytes it charges each phase and the multiply-adds it
credits each phase, checked against the GGUF's own tensor list and bench/roofline.py's whole-prompt count."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import checkpoint  # noqa: E402  (bench/ is scripts, not a package)
import phase_profile as bench_profile  # noqa: E402
import roofline  # noqa: E402


def test_phase_macs_add_up_to_the_roofline_count() -> None:
    for name in ("rinna-3.6b", "pythia-410m", "tiny"):
        s = checkpoint.SHAPES[name]
        hp = {"n_embd": s.n_embd, "n_ff": s.n_ff, "n_layer": s.n_layer, "n_vocab": s.n_vocab}
        for n in (2, 64, 511):
            assert sum(bench_profile.phase_macs(hp, n).values()) == roofline.pp_macs(s, n)


def test_gguf_facts_charge_every_matrix_once(tiny_gguf: Path) -> None:
    from gguf import GGUFReader

    nbytes, hp, wtype = bench_profile.gguf_facts(tiny_gguf)
    r = GGUFReader(str(tiny_gguf))
    matrices = [t for t in r.tensors if t.name.endswith(".weight") and len(t.shape) == 2
                and t.name not in ("token_embd.weight",)]
    assert sum(nbytes.values()) == sum(int(t.n_bytes) for t in matrices)
    n_layer = hp["n_layer"]
    assert n_layer == sum(1 for t in r.tensors if t.name.endswith("attn_qkv.weight"))
    assert nbytes["qkv"] == 3 * nbytes["attn_out"]  # 3e x e and e x e of the same type
    assert nbytes["ffn_up"] == nbytes["ffn_down"]
    emb = next(t for t in r.tensors if t.name == "token_embd.weight")
    assert (hp["n_embd"], hp["n_vocab"]) == (int(emb.shape[0]), int(emb.shape[1]))
    assert wtype == "f32"
