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



def test_kv_bytes_is_what_the_cache_holds(tiny_gguf: Path) -> None:
    # The bytes charged per attended position are the f16 K and V of every layer: what one more cached
    # token adds to the context's saved state, less the same with an f32 cache (the state also keeps each
    # cell's position and sequences, the same for both); decode i after `context` tokens attends
    # context + i + 1 positions.
    from neox_cpp import _lib

    def growth(type_kv: int) -> int:
        sizes = []
        with _lib.Model(tiny_gguf) as model:
            with _lib.Context(model, n_ctx=64, type_k=type_kv, type_v=type_kv) as ctx:
                for i in range(3):
                    ctx.decode([1 + i])
                    sizes.append(_lib.gptneox_state_get_size(ctx.ptr))
        assert sizes[2] - sizes[1] == sizes[1] - sizes[0]
        return sizes[1] - sizes[0]

    per_position = growth(_lib.GPTNEOX_TYPE_F32) - growth(_lib.GPTNEOX_TYPE_F16)
    _, hp, _ = bench_profile.gguf_facts(tiny_gguf)
    assert bench_profile.kv_bytes(hp, 0, 1) == per_position
    assert bench_profile.kv_bytes(hp, 10, 3) == (11 + 12 + 13) * per_position


def test_kv_bytes_of_a_q8_0_cache(tmp_path: Path) -> None:
    # q8_0: f16 minus q8_0 growth per position is (2 - 34/32) bytes per element (head dim 32 here)
    from conftest import write_tiny_gguf

    from neox_cpp import _lib

    gguf = write_tiny_gguf(tmp_path / "hd32.gguf", n_embd=64, n_head=2)

    def growth(type_kv: int) -> int:
        with _lib.Model(gguf) as model, _lib.Context(model, n_ctx=64, type_k=type_kv, type_v=type_kv) as ctx:
            ctx.decode([1])
            a = _lib.gptneox_state_get_size(ctx.ptr)
            ctx.decode([2])
            return _lib.gptneox_state_get_size(ctx.ptr) - a

    saved = growth(_lib.GPTNEOX_TYPE_F16) - growth(_lib.GPTNEOX_TYPE_Q8_0)
    _, hp, _ = bench_profile.gguf_facts(gguf)
    assert saved > 0
    assert bench_profile.kv_bytes(hp, 0, 1, "f16") - bench_profile.kv_bytes(hp, 0, 1, "q8_0") == saved


def test_llama_cpp_rows_are_held_against_avx2() -> None:
    # llama-cpp-python's wheel is an AVX2 build: every llama.cpp row (with flash attention or a Q8_0 cache
    # too) is rated against the AVX2 int8 peak; ours against VNNI where the CPU has it.
    peaks = {"avx512_vnni": 460.0, "avx2_int8": 218.0, "fma512_f32": 120.0, "fma256_f32": 60.0}
    for name in ("llama.cpp", "llama.cpp FA", "llama.cpp FA q8_0 KV", "CTranslate2 AVX2", "neox_cpp avx2"):
        assert roofline.engine_isa(name, "q8_0", peaks) == "avx2_int8", name
        assert roofline.engine_isa(name, "f16", peaks) == "fma256", name
    for name in ("neox_cpp", "CTranslate2", "neox_cpp avx512"):
        assert roofline.engine_isa(name, "q8_0", peaks) == "vnni", name
    # on an AMX CPU: ours (its default path: bf16 tiles) and CTranslate2 (int8 tiles) against the tiles,
    # our AVX-512 row against VNNI
    amx = dict(peaks, amx_int8=7400.0, amx_bf16=3700.0)
    assert roofline.engine_isa("neox_cpp", "q8_0", amx) == "amx_bf16"
    assert roofline.engine_isa("CTranslate2", "q8_0", amx) == "amx"
    assert roofline.engine_isa("neox_cpp avx512", "q4_0", amx) == "vnni"
    assert roofline.engine_isa("llama.cpp", "q8_0", amx) == "avx2_int8"
    # bf16 rows: AMX-BF16 tiles where measured, else VDPBF16PS
    assert roofline.engine_isa("neox_cpp", "bf16", dict(peaks, avx512_bf16=116.0)) == "bf16dp"
    with_amx = dict(peaks, avx512_bf16=116.0, amx_bf16=3400.0)
    assert roofline.engine_isa("torch bf16", "bf16", with_amx) == "amx_bf16"


# perf_profile.py reads perf's text output; these lines are perf 6.x's own (perf report --stdio
# --no-children --sort dso,symbol, which appends IPC columns; callchain lines when recorded with -g;
# perf annotate --stdio), from a profile of rinna q8_0 pp512.
PERF_REPORT = """\
# Samples: 97K of event 'cpu-clock'
#
# Overhead  Shared Object      Symbol                                          IPC   [IPC Coverage]
# ........  .................  ..............................................  ....................
#
    60.68%  libgptneox.so      [.] gptneox::(anonymous namespace)::tile_pair<true, \
gptneox::(anonymous namespace)::background<false> >                                -      -
                --60.67%--gptneox::(anonymous namespace)::chunk<false, 1048576ul, 0>
    13.79%  libgptneox.so      [.] gptneox::(anonymous namespace)::dequantize_vector<false>     -      -
     0.19%  [kernel.kallsyms]  [k] _raw_spin_unlock_irqrestore                                  -      -
     0.10%  libc.so.6          [.] __memset_avx512_unaligned_erms
"""

PERF_ANNOTATE = """\
 Percent |      Source code & Disassembly of libgptneox.so for cpu-clock (2934 samples, percent: local period)
----------------------------------------------------------------------------------------------------------------
         :
         :            Disassembly of section .text:
    0.00 :   ea210:  mov    %rdi,%rcx
    2.80 :   ea219:  cmp    $0xf,%rdi
   33.70 :   ea230:  vmovups (%rsi,%rax,4),%zmm1
   53.10 :   ea23e:  vmovups %zmm1,(%rdx,%rax,4)
"""


def test_perf_report_lines_parse_without_ipc_columns_or_callchains() -> None:
    import perf_profile

    rows = perf_profile.parse_report(PERF_REPORT)
    assert [(p, d) for p, d, _ in rows] == [(60.68, "libgptneox.so"), (13.79, "libgptneox.so"),
                                            (0.19, "[kernel.kallsyms]"), (0.10, "libc.so.6")]
    assert rows[0][2] == ("gptneox::(anonymous namespace)::tile_pair<true, "
                          "gptneox::(anonymous namespace)::background<false> >")
    assert rows[3][2] == "__memset_avx512_unaligned_erms"
    assert perf_profile.short_symbol(rows[0][2]) == "tile_pair<true, background<false> >"
    assert perf_profile.short_symbol("x" * 150, 20) == "x" * 17 + "..."


def test_perf_annotate_lines_keep_the_instructions_with_samples() -> None:
    import perf_profile

    assert perf_profile.parse_annotate(PERF_ANNOTATE) == [
        (2.80, "ea219", "cmp    $0xf,%rdi"), (33.70, "ea230", "vmovups (%rsi,%rax,4),%zmm1"),
        (53.10, "ea23e", "vmovups %zmm1,(%rdx,%rax,4)")]
