"""ctypes bindings of libgptneox (include/gptneox.h): one binding per C function.

Each binding is declared like llama-cpp-python declares llama.h: the C declaration as a comment, then a
typed Python stub decorated with ``@_bind(name, argtypes, restype)``, which sets ``argtypes``/``restype`` on
the library's function at import and returns that ctypes function (so calls cost one ctypes call).
Raw bindings never raise on failure: they return NULL (``None`` / a falsy pointer) or a negative status,
as the C API does. :class:`Model` and :class:`Context` are thin owners that raise :class:`NeoxError`.

The library is looked up in this order: ``$NEOX_CPP_LIB`` (a file path), ``neox_cpp/libgptneox*.so``
(where ``pip install`` puts it), ``<repo root>/libgptneox.so`` (a source checkout after ``make``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar

__all__ = ["NeoxError", "LibraryNotFoundError", "Model", "Context", "lib_path"]

_F = TypeVar("_F", bound=Callable[..., Any])

# ---------------------------------------------------------------------------------------------------
# Locating and loading the library


class LibraryNotFoundError(ImportError):
    """libgptneox could not be found or loaded."""


def _candidates() -> List[Path]:
    env = os.environ.get("NEOX_CPP_LIB")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parent
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    found = sorted(here.glob(f"libgptneox*{suffix}"))
    found.append(here.parent / f"libgptneox{suffix}")
    return found


def _load() -> tuple[ctypes.CDLL, Path]:
    candidates = _candidates()
    for path in candidates:
        if path.is_file():
            try:
                return ctypes.CDLL(str(path)), path
            except OSError as e:
                raise LibraryNotFoundError(f"neox_cpp: failed to load {path}: {e}") from e
    if os.environ.get("NEOX_CPP_LIB"):
        raise LibraryNotFoundError(f"neox_cpp: NEOX_CPP_LIB={candidates[0]} does not exist")
    looked = ", ".join(str(p) for p in candidates)
    raise LibraryNotFoundError(
        "neox_cpp: libgptneox not found (looked for "
        + looked
        + "). Build it with `make libgptneox.so` in the source tree or `pip install .`, "
        "or point NEOX_CPP_LIB at the library file."
    )


_lib, _lib_path = _load()


def lib_path() -> Path:
    """The file the library was loaded from."""
    return _lib_path


def _bind(name: str, argtypes: List[Any], restype: Any) -> Callable[[_F], _F]:
    def decorator(stub: _F) -> _F:
        try:
            func = getattr(_lib, name)
        except AttributeError:
            raise LibraryNotFoundError(
                f"neox_cpp: {_lib_path} has no symbol {name}: it is older than neox_cpp/_lib.py; rebuild it"
            ) from None
        func.argtypes = argtypes
        func.restype = restype
        functools.wraps(stub)(func)
        return func  # type: ignore[no-any-return]

    return decorator


# ---------------------------------------------------------------------------------------------------
# Types and structs (mirrors of gptneox.h)

gptneox_token = ctypes.c_int32
gptneox_pos = ctypes.c_int32
gptneox_seq_id = ctypes.c_int32
_token_p = ctypes.POINTER(gptneox_token)
_float_p = ctypes.POINTER(ctypes.c_float)
_uint8_p = ctypes.POINTER(ctypes.c_uint8)
FloatPtr = Any  # ctypes.POINTER(ctypes.c_float) instance (falsy when NULL)

GPTNEOX_DEFAULT_SEED = 0xFFFFFFFF
GPTNEOX_TOKEN_NULL = -1
GPTNEOX_STATE_VERSION = 1

# enum gptneox_status
GPTNEOX_STATUS_OK = 0
GPTNEOX_STATUS_INVALID_ARGUMENT = -1
GPTNEOX_STATUS_IO = -2
GPTNEOX_STATUS_FORMAT = -3
GPTNEOX_STATUS_UNSUPPORTED = -4
GPTNEOX_STATUS_NO_MEMORY = -5
GPTNEOX_STATUS_ABORTED = -6
GPTNEOX_STATUS_INTERNAL = -7
STATUS_NAMES: Dict[int, str] = {
    0: "OK",
    -1: "INVALID_ARGUMENT",
    -2: "IO",
    -3: "FORMAT",
    -4: "UNSUPPORTED",
    -5: "NO_MEMORY",
    -6: "ABORTED",
    -7: "INTERNAL",
}

# enum gptneox_log_level
GPTNEOX_LOG_LEVEL_NONE = 0
GPTNEOX_LOG_LEVEL_INFO = 1
GPTNEOX_LOG_LEVEL_WARN = 2
GPTNEOX_LOG_LEVEL_ERROR = 3
GPTNEOX_LOG_LEVEL_DEBUG = 4
GPTNEOX_LOG_LEVEL_CONT = 5

# enum gptneox_kernel_path
GPTNEOX_KERNELS_AUTO = 0
GPTNEOX_KERNELS_SCALAR = 1
GPTNEOX_KERNELS_AVX2 = 2
GPTNEOX_KERNELS_AVX512 = 3
GPTNEOX_KERNELS_AMX = 4

# enum gptneox_perf_phase
GPTNEOX_PHASE_EMBED = 0
GPTNEOX_PHASE_NORM = 1
GPTNEOX_PHASE_QKV = 2
GPTNEOX_PHASE_ROPE_KV = 3
GPTNEOX_PHASE_ATTENTION = 4
GPTNEOX_PHASE_ATTN_OUT = 5
GPTNEOX_PHASE_FFN_UP = 6
GPTNEOX_PHASE_FFN_DOWN = 7
GPTNEOX_PHASE_RESIDUAL = 8
GPTNEOX_PHASE_OUTPUT = 9
GPTNEOX_PHASE_COUNT = 10

# enum gptneox_struct_id
GPTNEOX_STRUCT_MODEL_PARAMS = 0
GPTNEOX_STRUCT_CTX_PARAMS = 1
GPTNEOX_STRUCT_BATCH = 2
GPTNEOX_STRUCT_PERF_DATA = 3

# enum gptneox_type
GPTNEOX_TYPE_F32 = 0
GPTNEOX_TYPE_F16 = 1
GPTNEOX_TYPE_Q4_0 = 2
GPTNEOX_TYPE_Q8_0 = 8
GPTNEOX_TYPE_BF16 = 30

# enum gptneox_vocab_type
GPTNEOX_VOCAB_TYPE_NONE = 0
GPTNEOX_VOCAB_TYPE_SPM = 1
GPTNEOX_VOCAB_TYPE_BPE = 2

# enum gptneox_pooling_type
GPTNEOX_POOLING_TYPE_UNSPECIFIED = -1
GPTNEOX_POOLING_TYPE_NONE = 0
GPTNEOX_POOLING_TYPE_MEAN = 1
GPTNEOX_POOLING_TYPE_LAST = 3

# typedef void (*gptneox_log_callback)(enum gptneox_log_level level, const char *text, void *user_data);
gptneox_log_callback = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
# typedef bool (*gptneox_progress_callback)(float progress, void *user_data);
gptneox_progress_callback = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_float, ctypes.c_void_p)
# typedef bool (*gptneox_abort_callback)(void *data);
gptneox_abort_callback = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p)


# enum gptneox_model_kv_override_type
GPTNEOX_KV_OVERRIDE_TYPE_INT = 0
GPTNEOX_KV_OVERRIDE_TYPE_FLOAT = 1
GPTNEOX_KV_OVERRIDE_TYPE_BOOL = 2
GPTNEOX_KV_OVERRIDE_TYPE_STR = 3


class gptneox_model_kv_override_value(ctypes.Union):
    _fields_ = [
        ("val_i64", ctypes.c_int64),
        ("val_f64", ctypes.c_double),
        ("val_bool", ctypes.c_bool),
        ("val_str", ctypes.c_char * 128),
    ]


class gptneox_model_kv_override(ctypes.Structure):
    _anonymous_ = ("value",)
    _fields_ = [
        ("tag", ctypes.c_int32),
        ("key", ctypes.c_char * 128),
        ("value", gptneox_model_kv_override_value),
    ]


class gptneox_model_params(ctypes.Structure):
    _fields_ = [
        ("progress_callback", gptneox_progress_callback),
        ("progress_callback_user_data", ctypes.c_void_p),
        ("vocab_only", ctypes.c_bool),
        ("use_mmap", ctypes.c_bool),
        ("use_mlock", ctypes.c_bool),
        ("check_tensors", ctypes.c_bool),
        ("kv_overrides", ctypes.POINTER(gptneox_model_kv_override)),
        ("use_extra_bufts", ctypes.c_bool),
    ]


class gptneox_ctx_params(ctypes.Structure):
    _fields_ = [
        ("n_ctx", ctypes.c_uint32),
        ("n_batch", ctypes.c_uint32),
        ("n_ubatch", ctypes.c_uint32),
        ("n_seq_max", ctypes.c_uint32),
        ("n_threads", ctypes.c_int32),
        ("n_threads_batch", ctypes.c_int32),
        ("type_k", ctypes.c_int32),
        ("type_v", ctypes.c_int32),
        ("pooling_type", ctypes.c_int32),
        ("kernel_path", ctypes.c_int32),
        ("rope_freq_base", ctypes.c_float),
        ("rope_freq_scale", ctypes.c_float),
        ("abort_callback", gptneox_abort_callback),
        ("abort_callback_data", ctypes.c_void_p),
        ("embeddings", ctypes.c_bool),
        ("no_perf", ctypes.c_bool),
    ]


class gptneox_batch(ctypes.Structure):
    _fields_ = [
        ("n_tokens", ctypes.c_int32),
        ("token", ctypes.POINTER(gptneox_token)),
        ("embd", ctypes.POINTER(ctypes.c_float)),
        ("pos", ctypes.POINTER(gptneox_pos)),
        ("n_seq_id", ctypes.POINTER(ctypes.c_int32)),
        ("seq_id", ctypes.POINTER(ctypes.POINTER(gptneox_seq_id))),
        ("logits", ctypes.POINTER(ctypes.c_int8)),
    ]


class gptneox_perf_data(ctypes.Structure):
    _fields_ = [
        ("t_start_ms", ctypes.c_double),
        ("t_load_ms", ctypes.c_double),
        ("t_p_eval_ms", ctypes.c_double),
        ("t_eval_ms", ctypes.c_double),
        ("n_p_eval", ctypes.c_int32),
        ("n_eval", ctypes.c_int32),
        ("n_reused", ctypes.c_int32),
    ]


STRUCTS = {
    GPTNEOX_STRUCT_MODEL_PARAMS: gptneox_model_params,
    GPTNEOX_STRUCT_CTX_PARAMS: gptneox_ctx_params,
    GPTNEOX_STRUCT_BATCH: gptneox_batch,
    GPTNEOX_STRUCT_PERF_DATA: gptneox_perf_data,
}

# ---------------------------------------------------------------------------------------------------
# Functions, in the order of gptneox.h


# const char *gptneox_last_error(void);
@_bind("gptneox_last_error", [], ctypes.c_char_p)
def gptneox_last_error() -> Optional[bytes]: ...


# int32_t gptneox_last_status(void);
@_bind("gptneox_last_status", [], ctypes.c_int32)
def gptneox_last_status() -> int: ...


# void gptneox_clear_error(void);
@_bind("gptneox_clear_error", [], None)
def gptneox_clear_error() -> None: ...


# void gptneox_log_set(gptneox_log_callback callback, void *user_data);
@_bind("gptneox_log_set", [gptneox_log_callback, ctypes.c_void_p], None)
def gptneox_log_set(callback: Any, user_data: Optional[int], /) -> None: ...


# const char *gptneox_print_system_info(void);
@_bind("gptneox_print_system_info", [], ctypes.c_char_p)
def gptneox_print_system_info() -> Optional[bytes]: ...


# bool gptneox_supports_mmap(void);
@_bind("gptneox_supports_mmap", [], ctypes.c_bool)
def gptneox_supports_mmap() -> bool: ...


# bool gptneox_supports_mlock(void);
@_bind("gptneox_supports_mlock", [], ctypes.c_bool)
def gptneox_supports_mlock() -> bool: ...


# int64_t gptneox_time_us(void);
@_bind("gptneox_time_us", [], ctypes.c_int64)
def gptneox_time_us() -> int: ...


# bool gptneox_kernel_path_supported(enum gptneox_kernel_path path);
@_bind("gptneox_kernel_path_supported", [ctypes.c_int], ctypes.c_bool)
def gptneox_kernel_path_supported(path: int, /) -> bool: ...


# const char *gptneox_kernel_path_name(enum gptneox_kernel_path path);
@_bind("gptneox_kernel_path_name", [ctypes.c_int], ctypes.c_char_p)
def gptneox_kernel_path_name(path: int, /) -> Optional[bytes]: ...


# size_t gptneox_struct_size(enum gptneox_struct_id id);
@_bind("gptneox_struct_size", [ctypes.c_int], ctypes.c_size_t)
def gptneox_struct_size(id: int, /) -> int: ...


# struct gptneox_model_params gptneox_model_default_params(void);
@_bind("gptneox_model_default_params", [], gptneox_model_params)
def gptneox_model_default_params() -> gptneox_model_params: ...


# struct gptneox_model *gptneox_model_load_from_file(const char *path_model,
#     struct gptneox_model_params params);
@_bind("gptneox_model_load_from_file", [ctypes.c_char_p, gptneox_model_params], ctypes.c_void_p)
def gptneox_model_load_from_file(path_model: Optional[bytes], params: Any, /) -> Optional[int]: ...


# void gptneox_model_free(struct gptneox_model *model);
@_bind("gptneox_model_free", [ctypes.c_void_p], None)
def gptneox_model_free(model: Optional[int], /) -> None: ...


# const struct gptneox_vocab *gptneox_model_get_vocab(const struct gptneox_model *model);
@_bind("gptneox_model_get_vocab", [ctypes.c_void_p], ctypes.c_void_p)
def gptneox_model_get_vocab(model: Optional[int], /) -> Optional[int]: ...


# int32_t gptneox_model_n_ctx_train(const struct gptneox_model *model);
@_bind("gptneox_model_n_ctx_train", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_model_n_ctx_train(model: Optional[int], /) -> int: ...


# int32_t gptneox_model_n_embd(const struct gptneox_model *model);
@_bind("gptneox_model_n_embd", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_model_n_embd(model: Optional[int], /) -> int: ...


# int32_t gptneox_model_n_layer(const struct gptneox_model *model);
@_bind("gptneox_model_n_layer", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_model_n_layer(model: Optional[int], /) -> int: ...


# int32_t gptneox_model_n_head(const struct gptneox_model *model);
@_bind("gptneox_model_n_head", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_model_n_head(model: Optional[int], /) -> int: ...


# int32_t gptneox_model_n_ff(const struct gptneox_model *model);
@_bind("gptneox_model_n_ff", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_model_n_ff(model: Optional[int], /) -> int: ...


# int32_t gptneox_model_n_rot(const struct gptneox_model *model);
@_bind("gptneox_model_n_rot", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_model_n_rot(model: Optional[int], /) -> int: ...


# float gptneox_model_rope_freq_base_train(const struct gptneox_model *model);
@_bind("gptneox_model_rope_freq_base_train", [ctypes.c_void_p], ctypes.c_float)
def gptneox_model_rope_freq_base_train(model: Optional[int], /) -> float: ...


# float gptneox_model_rope_freq_scale_train(const struct gptneox_model *model);
@_bind("gptneox_model_rope_freq_scale_train", [ctypes.c_void_p], ctypes.c_float)
def gptneox_model_rope_freq_scale_train(model: Optional[int], /) -> float: ...


# bool gptneox_model_use_parallel_residual(const struct gptneox_model *model);
@_bind("gptneox_model_use_parallel_residual", [ctypes.c_void_p], ctypes.c_bool)
def gptneox_model_use_parallel_residual(model: Optional[int], /) -> bool: ...


# int32_t gptneox_model_ftype(const struct gptneox_model *model);
@_bind("gptneox_model_ftype", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_model_ftype(model: Optional[int], /) -> int: ...


# uint64_t gptneox_model_size(const struct gptneox_model *model);
@_bind("gptneox_model_size", [ctypes.c_void_p], ctypes.c_uint64)
def gptneox_model_size(model: Optional[int], /) -> int: ...


# uint64_t gptneox_model_n_params(const struct gptneox_model *model);
@_bind("gptneox_model_n_params", [ctypes.c_void_p], ctypes.c_uint64)
def gptneox_model_n_params(model: Optional[int], /) -> int: ...


# int32_t gptneox_model_desc(const struct gptneox_model *model, char *buf, size_t buf_size);
@_bind("gptneox_model_desc", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_int32)
def gptneox_model_desc(model: Optional[int], buf: Optional[bytes], buf_size: int, /) -> int: ...


# int32_t gptneox_model_meta_count(const struct gptneox_model *model);
@_bind("gptneox_model_meta_count", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_model_meta_count(model: Optional[int], /) -> int: ...


# int32_t gptneox_model_meta_key_by_index(const struct gptneox_model *model, int32_t i, char *buf,
#     size_t buf_size);
@_bind(
    "gptneox_model_meta_key_by_index",
    [ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t],
    ctypes.c_int32,
)
def gptneox_model_meta_key_by_index(
    model: Optional[int], i: int, buf: Optional[bytes], buf_size: int, /
) -> int: ...


# int32_t gptneox_model_meta_val_str_by_index(const struct gptneox_model *model, int32_t i, char *buf,
#     size_t buf_size);
@_bind(
    "gptneox_model_meta_val_str_by_index",
    [ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t],
    ctypes.c_int32,
)
def gptneox_model_meta_val_str_by_index(
    model: Optional[int], i: int, buf: Optional[bytes], buf_size: int, /
) -> int: ...


# int32_t gptneox_model_meta_val_str(const struct gptneox_model *model, const char *key, char *buf,
#     size_t buf_size);
@_bind(
    "gptneox_model_meta_val_str",
    [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t],
    ctypes.c_int32,
)
def gptneox_model_meta_val_str(
    model: Optional[int], key: Optional[bytes], buf: Optional[bytes], buf_size: int, /
) -> int: ...


# const char *gptneox_model_chat_template(const struct gptneox_model *model, const char *name);
@_bind("gptneox_model_chat_template", [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_char_p)
def gptneox_model_chat_template(model: Optional[int], name: Optional[bytes], /) -> Optional[bytes]: ...


# struct gptneox_ctx_params gptneox_ctx_default_params(void);
@_bind("gptneox_ctx_default_params", [], gptneox_ctx_params)
def gptneox_ctx_default_params() -> gptneox_ctx_params: ...


# struct gptneox_context *gptneox_init_from_model(struct gptneox_model *model,
#     struct gptneox_ctx_params params);
@_bind("gptneox_init_from_model", [ctypes.c_void_p, gptneox_ctx_params], ctypes.c_void_p)
def gptneox_init_from_model(model: Optional[int], params: Any, /) -> Optional[int]: ...


# void gptneox_free(struct gptneox_context *ctx);
@_bind("gptneox_free", [ctypes.c_void_p], None)
def gptneox_free(ctx: Optional[int], /) -> None: ...


# const struct gptneox_model *gptneox_get_model(const struct gptneox_context *ctx);
@_bind("gptneox_get_model", [ctypes.c_void_p], ctypes.c_void_p)
def gptneox_get_model(ctx: Optional[int], /) -> Optional[int]: ...


# uint32_t gptneox_n_ctx(const struct gptneox_context *ctx);
@_bind("gptneox_n_ctx", [ctypes.c_void_p], ctypes.c_uint32)
def gptneox_n_ctx(ctx: Optional[int], /) -> int: ...


# uint32_t gptneox_n_batch(const struct gptneox_context *ctx);
@_bind("gptneox_n_batch", [ctypes.c_void_p], ctypes.c_uint32)
def gptneox_n_batch(ctx: Optional[int], /) -> int: ...


# uint32_t gptneox_n_ubatch(const struct gptneox_context *ctx);
@_bind("gptneox_n_ubatch", [ctypes.c_void_p], ctypes.c_uint32)
def gptneox_n_ubatch(ctx: Optional[int], /) -> int: ...


# uint32_t gptneox_n_seq_max(const struct gptneox_context *ctx);
@_bind("gptneox_n_seq_max", [ctypes.c_void_p], ctypes.c_uint32)
def gptneox_n_seq_max(ctx: Optional[int], /) -> int: ...


# int32_t gptneox_n_threads(const struct gptneox_context *ctx);
@_bind("gptneox_n_threads", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_n_threads(ctx: Optional[int], /) -> int: ...


# int32_t gptneox_n_threads_batch(const struct gptneox_context *ctx);
@_bind("gptneox_n_threads_batch", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_n_threads_batch(ctx: Optional[int], /) -> int: ...


# int32_t gptneox_set_n_threads(struct gptneox_context *ctx, int32_t n_threads, int32_t n_threads_batch);
@_bind("gptneox_set_n_threads", [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32], ctypes.c_int32)
def gptneox_set_n_threads(ctx: Optional[int], n_threads: int, n_threads_batch: int, /) -> int: ...


# enum gptneox_pooling_type gptneox_pooling_type(const struct gptneox_context *ctx);
@_bind("gptneox_pooling_type", [ctypes.c_void_p], ctypes.c_int)
def gptneox_pooling_type(ctx: Optional[int], /) -> int: ...


# enum gptneox_kernel_path gptneox_kernel_path(const struct gptneox_context *ctx);
@_bind("gptneox_kernel_path", [ctypes.c_void_p], ctypes.c_int)
def gptneox_kernel_path(ctx: Optional[int], /) -> int: ...


# struct gptneox_batch gptneox_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
@_bind("gptneox_batch_init", [ctypes.c_int32, ctypes.c_int32, ctypes.c_int32], gptneox_batch)
def gptneox_batch_init(n_tokens: int, embd: int, n_seq_max: int, /) -> gptneox_batch: ...


# void gptneox_batch_free(struct gptneox_batch batch);
@_bind("gptneox_batch_free", [gptneox_batch], None)
def gptneox_batch_free(batch: Any, /) -> None: ...


# int32_t gptneox_decode(struct gptneox_context *ctx, struct gptneox_batch batch);
@_bind("gptneox_decode", [ctypes.c_void_p, gptneox_batch], ctypes.c_int32)
def gptneox_decode(ctx: Optional[int], batch: Any, /) -> int: ...


# int32_t gptneox_synchronize(struct gptneox_context *ctx);
@_bind("gptneox_synchronize", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_synchronize(ctx: Optional[int], /) -> int: ...


# int32_t gptneox_n_queued(const struct gptneox_context *ctx);
@_bind("gptneox_n_queued", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_n_queued(ctx: Optional[int], /) -> int: ...


# int32_t gptneox_encode(struct gptneox_context *ctx, struct gptneox_batch batch);
@_bind("gptneox_encode", [ctypes.c_void_p, gptneox_batch], ctypes.c_int32)
def gptneox_encode(ctx: Optional[int], batch: Any, /) -> int: ...


# float *gptneox_get_logits(struct gptneox_context *ctx);
@_bind("gptneox_get_logits", [ctypes.c_void_p], _float_p)
def gptneox_get_logits(ctx: Optional[int], /) -> FloatPtr: ...


# float *gptneox_get_logits_ith(struct gptneox_context *ctx, int32_t i);
@_bind("gptneox_get_logits_ith", [ctypes.c_void_p, ctypes.c_int32], _float_p)
def gptneox_get_logits_ith(ctx: Optional[int], i: int, /) -> FloatPtr: ...


# int32_t gptneox_n_outputs(const struct gptneox_context *ctx);
@_bind("gptneox_n_outputs", [ctypes.c_void_p], ctypes.c_int32)
def gptneox_n_outputs(ctx: Optional[int], /) -> int: ...


# float *gptneox_get_embeddings(struct gptneox_context *ctx);
@_bind("gptneox_get_embeddings", [ctypes.c_void_p], _float_p)
def gptneox_get_embeddings(ctx: Optional[int], /) -> FloatPtr: ...


# float *gptneox_get_embeddings_ith(struct gptneox_context *ctx, int32_t i);
@_bind("gptneox_get_embeddings_ith", [ctypes.c_void_p, ctypes.c_int32], _float_p)
def gptneox_get_embeddings_ith(ctx: Optional[int], i: int, /) -> FloatPtr: ...


# float *gptneox_get_embeddings_seq(struct gptneox_context *ctx, gptneox_seq_id seq_id);
@_bind("gptneox_get_embeddings_seq", [ctypes.c_void_p, gptneox_seq_id], _float_p)
def gptneox_get_embeddings_seq(ctx: Optional[int], seq_id: int, /) -> FloatPtr: ...


# struct gptneox_memory *gptneox_get_memory(const struct gptneox_context *ctx);
@_bind("gptneox_get_memory", [ctypes.c_void_p], ctypes.c_void_p)
def gptneox_get_memory(ctx: Optional[int], /) -> Optional[int]: ...


# void gptneox_memory_clear(struct gptneox_memory *mem, bool data);
@_bind("gptneox_memory_clear", [ctypes.c_void_p, ctypes.c_bool], None)
def gptneox_memory_clear(mem: Optional[int], data: bool, /) -> None: ...


# bool gptneox_memory_seq_rm(struct gptneox_memory *mem, gptneox_seq_id seq_id, gptneox_pos p0,
#     gptneox_pos p1);
@_bind("gptneox_memory_seq_rm", [ctypes.c_void_p, gptneox_seq_id, gptneox_pos, gptneox_pos], ctypes.c_bool)
def gptneox_memory_seq_rm(mem: Optional[int], seq_id: int, p0: int, p1: int, /) -> bool: ...


# void gptneox_memory_seq_cp(struct gptneox_memory *mem, gptneox_seq_id seq_id_src,
#     gptneox_seq_id seq_id_dst, gptneox_pos p0, gptneox_pos p1);
@_bind(
    "gptneox_memory_seq_cp", [ctypes.c_void_p, gptneox_seq_id, gptneox_seq_id, gptneox_pos, gptneox_pos], None
)
def gptneox_memory_seq_cp(
    mem: Optional[int], seq_id_src: int, seq_id_dst: int, p0: int, p1: int, /
) -> None: ...


# void gptneox_memory_seq_keep(struct gptneox_memory *mem, gptneox_seq_id seq_id);
@_bind("gptneox_memory_seq_keep", [ctypes.c_void_p, gptneox_seq_id], None)
def gptneox_memory_seq_keep(mem: Optional[int], seq_id: int, /) -> None: ...


# void gptneox_memory_seq_add(struct gptneox_memory *mem, gptneox_seq_id seq_id, gptneox_pos p0,
#     gptneox_pos p1, gptneox_pos delta);
@_bind(
    "gptneox_memory_seq_add", [ctypes.c_void_p, gptneox_seq_id, gptneox_pos, gptneox_pos, gptneox_pos], None
)
def gptneox_memory_seq_add(mem: Optional[int], seq_id: int, p0: int, p1: int, delta: int, /) -> None: ...


# gptneox_pos gptneox_memory_seq_pos_min(struct gptneox_memory *mem, gptneox_seq_id seq_id);
@_bind("gptneox_memory_seq_pos_min", [ctypes.c_void_p, gptneox_seq_id], gptneox_pos)
def gptneox_memory_seq_pos_min(mem: Optional[int], seq_id: int, /) -> int: ...


# gptneox_pos gptneox_memory_seq_pos_max(struct gptneox_memory *mem, gptneox_seq_id seq_id);
@_bind("gptneox_memory_seq_pos_max", [ctypes.c_void_p, gptneox_seq_id], gptneox_pos)
def gptneox_memory_seq_pos_max(mem: Optional[int], seq_id: int, /) -> int: ...


# bool gptneox_memory_can_shift(struct gptneox_memory *mem);
@_bind("gptneox_memory_can_shift", [ctypes.c_void_p], ctypes.c_bool)
def gptneox_memory_can_shift(mem: Optional[int], /) -> bool: ...


# size_t gptneox_state_get_size(struct gptneox_context *ctx);
@_bind("gptneox_state_get_size", [ctypes.c_void_p], ctypes.c_size_t)
def gptneox_state_get_size(ctx: Optional[int], /) -> int: ...


# size_t gptneox_state_get_data(struct gptneox_context *ctx, uint8_t *dst, size_t size);
@_bind("gptneox_state_get_data", [ctypes.c_void_p, _uint8_p, ctypes.c_size_t], ctypes.c_size_t)
def gptneox_state_get_data(ctx: Optional[int], dst: Any, size: int, /) -> int: ...


# size_t gptneox_state_set_data(struct gptneox_context *ctx, const uint8_t *src, size_t size);
@_bind("gptneox_state_set_data", [ctypes.c_void_p, _uint8_p, ctypes.c_size_t], ctypes.c_size_t)
def gptneox_state_set_data(ctx: Optional[int], src: Any, size: int, /) -> int: ...


# struct gptneox_perf_data gptneox_perf_context(const struct gptneox_context *ctx);
@_bind("gptneox_perf_context", [ctypes.c_void_p], gptneox_perf_data)
def gptneox_perf_context(ctx: Optional[int], /) -> gptneox_perf_data: ...


# void gptneox_perf_context_reset(struct gptneox_context *ctx);
@_bind("gptneox_perf_context_reset", [ctypes.c_void_p], None)
def gptneox_perf_context_reset(ctx: Optional[int], /) -> None: ...


# int32_t gptneox_perf_phases(const struct gptneox_context *ctx, bool batch, double *ms, int32_t n);
@_bind("gptneox_perf_phases",
       [ctypes.c_void_p, ctypes.c_bool, ctypes.POINTER(ctypes.c_double), ctypes.c_int32], ctypes.c_int32)
def gptneox_perf_phases(ctx: Optional[int], batch: bool, ms: Any, n: int, /) -> int: ...


# const char *gptneox_perf_phase_name(int32_t phase);
@_bind("gptneox_perf_phase_name", [ctypes.c_int32], ctypes.c_char_p)
def gptneox_perf_phase_name(phase: int, /) -> Optional[bytes]: ...


def perf_phases(ctx: Optional[int], batch: bool) -> Dict[str, float]:
    """gptneox_perf_phases as {phase name: milliseconds}, in the forward pass's order; raises NeoxError."""
    ms = (ctypes.c_double * GPTNEOX_PHASE_COUNT)()
    if gptneox_perf_phases(ctx, batch, ms, GPTNEOX_PHASE_COUNT) != GPTNEOX_PHASE_COUNT:
        raise last_error("gptneox_perf_phases")
    return {(gptneox_perf_phase_name(i) or b"?").decode(): ms[i] for i in range(GPTNEOX_PHASE_COUNT)}


# ---------------------------------------------------------------------------------------------------
# Checks at import


def _check_struct_sizes() -> None:
    for struct_id, cls in STRUCTS.items():
        c_size = gptneox_struct_size(struct_id)
        if c_size != ctypes.sizeof(cls):
            raise LibraryNotFoundError(
                f"neox_cpp: {_lib_path}: struct {cls.__name__} is {c_size} bytes in C but "
                f"{ctypes.sizeof(cls)} in neox_cpp/_lib.py: the library and the bindings disagree; rebuild"
            )


_check_struct_sizes()

# ---------------------------------------------------------------------------------------------------
# Errors


class NeoxError(RuntimeError):
    """A failure reported by libgptneox: ``status`` is a negative gptneox_status, ``str()`` the message
    of gptneox_last_error()."""

    def __init__(self, message: str, status: int = GPTNEOX_STATUS_INTERNAL) -> None:
        super().__init__(message)
        self.status = status

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, str(self.status))


def last_error(what: str = "") -> NeoxError:
    """The calling thread's last failure as a NeoxError (``what`` prefixes the message if the library
    left none)."""
    raw = gptneox_last_error()
    message = raw.decode("utf-8", errors="replace") if raw else ""
    status = gptneox_last_status()
    if not message:
        message = f"{what} failed" if what else "libgptneox reported a failure"
    return NeoxError(message, status if status < 0 else GPTNEOX_STATUS_INTERNAL)


def check_ptr(ptr: Any, what: str) -> Any:
    """Return ``ptr`` or raise the library's last error if it is NULL."""
    if not ptr:
        raise last_error(what)
    return ptr


def check_status(status: int, what: str) -> int:
    """Return ``status`` or raise the library's last error if it is negative."""
    if status < 0:
        err = last_error(what)
        err.status = status
        raise err
    return status


def _read_string(fn: Callable[..., int], *args: Any) -> Optional[str]:
    """Call an snprintf-style getter, growing the buffer as needed; None when it returns -1."""
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        n = fn(*args, buf, size)
        if n < 0:
            return None
        if n < size:
            return buf.value.decode("utf-8", errors="replace")
        size = n + 1


# The bindings of two header sections live in their own files, which bind through _bind above; they are
# re-exported here so that this module stays the one namespace of the C API. The thin owners (Model,
# Context) live in _lib_owners.py.
from neox_cpp._lib_owners import Context, Model  # noqa: E402
from neox_cpp._lib_sampling import *  # noqa: E402, F403
from neox_cpp._lib_vocab import *  # noqa: E402, F403
