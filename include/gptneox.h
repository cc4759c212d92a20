/*
 * gptneox.h: the public C API of libgptneox, a CPU inference engine for GPT-NeoX-family models
 * stored as GGUF files (llama.cpp's `gptneox` architecture).
 *
 * Shape: each llama_X that llama-cpp-python calls has a gptneox_X here with the same meaning, so that
 * neox_cpp/llama_compat.py can present llama-cpp-python's low-level namespace on top of this library.
 * Where a llama.h name would clash with the pre-GGUF redpajama.cpp API (which keeps its own names for a
 * later compatibility layer), the name differs and says so: gptneox_ctx_params, gptneox_vocab_tokenize.
 *
 * Conventions
 * - Handles are opaque. Who frees what, and until when a returned pointer is valid, is written on
 *   each declaration.
 * - Failure: functions returning a pointer return NULL; functions returning a status return a
 *   negative enum gptneox_status. Either way gptneox_last_error() then describes the failure (the
 *   message is per thread). Nothing in this library calls exit() or abort() on bad input.
 * - Variable-length output follows llama.h: return the number of elements written, or minus the
 *   number that would have been written when the buffer is too small (nothing is written then).
 * - Thread safety: a model may be shared by many contexts on many threads; a context is used by one
 *   thread at a time.
 */
#ifndef GPTNEOX_H
#define GPTNEOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define GPTNEOX_API __declspec(dllexport)
#else
#define GPTNEOX_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define GPTNEOX_DEFAULT_SEED 0xFFFFFFFFu
#define GPTNEOX_TOKEN_NULL (-1)
/* Version of the blob written by gptneox_state_get_data. */
#define GPTNEOX_STATE_VERSION 1

typedef int32_t gptneox_token;
typedef int32_t gptneox_pos;
typedef int32_t gptneox_seq_id;

struct gptneox_model;   /* weights + vocabulary + metadata of one GGUF file; read-only once loaded */
struct gptneox_vocab;   /* the tokenizer; owned by its model */
struct gptneox_context; /* KV cache, scratch buffers, thread pool, last outputs; uses one model */
struct gptneox_memory;  /* the context's KV cache, as an object for the gptneox_memory_* calls */

/* ---------------------------------------------------------------------------------------------- */
/* Status codes and errors                                                                        */

enum gptneox_status {
    GPTNEOX_STATUS_OK = 0,
    GPTNEOX_STATUS_INVALID_ARGUMENT = -1, /* a parameter is out of range or NULL */
    GPTNEOX_STATUS_IO = -2,               /* the file could not be opened, read, mapped or written */
    GPTNEOX_STATUS_FORMAT = -3,           /* the file is corrupt, truncated or not GGUF */
    GPTNEOX_STATUS_UNSUPPORTED = -4,      /* a valid file using something this build does not do */
    GPTNEOX_STATUS_NO_MEMORY = -5,        /* an allocation failed */
    GPTNEOX_STATUS_ABORTED = -6,          /* the abort callback asked to stop */
    GPTNEOX_STATUS_INTERNAL = -7,         /* a bug: please report it with the message */
};

/* The message of the last failure on the calling thread ("" if none). Valid until the next call into
 * this library from the same thread. */
GPTNEOX_API const char *gptneox_last_error(void);
/* The status of the last failure on the calling thread (GPTNEOX_STATUS_OK if none). */
GPTNEOX_API int32_t gptneox_last_status(void);
/* Forget the last failure of the calling thread. */
GPTNEOX_API void gptneox_clear_error(void);

/* ---------------------------------------------------------------------------------------------- */
/* Logging, system                                                                                */

enum gptneox_log_level {
    GPTNEOX_LOG_LEVEL_NONE = 0,
    GPTNEOX_LOG_LEVEL_INFO = 1,
    GPTNEOX_LOG_LEVEL_WARN = 2,
    GPTNEOX_LOG_LEVEL_ERROR = 3,
    GPTNEOX_LOG_LEVEL_DEBUG = 4,
    GPTNEOX_LOG_LEVEL_CONT = 5,
};
/* `text` is valid only during the call. */
typedef void (*gptneox_log_callback)(enum gptneox_log_level level, const char *text, void *user_data);
/* Process-wide (the one piece of global state, as in llama.h): route log lines to `callback`
 * (NULL restores the default, which writes to stderr). `user_data` is passed back untouched. */
GPTNEOX_API void gptneox_log_set(gptneox_log_callback callback, void *user_data);

/* A static string naming the CPU features found and the kernel path chosen by default. */
GPTNEOX_API const char *gptneox_print_system_info(void);
GPTNEOX_API bool gptneox_supports_mmap(void);
GPTNEOX_API bool gptneox_supports_mlock(void);
GPTNEOX_API int64_t gptneox_time_us(void);

/* Which SIMD kernels a context uses. AUTO picks the best path this CPU supports; asking for a path
 * the CPU lacks makes gptneox_init_from_model fail with GPTNEOX_STATUS_UNSUPPORTED. */
enum gptneox_kernel_path {
    GPTNEOX_KERNELS_AUTO = 0,
    GPTNEOX_KERNELS_SCALAR = 1, /* portable reference code, always available */
    GPTNEOX_KERNELS_AVX2 = 2,   /* AVX2 + FMA + F16C */
    GPTNEOX_KERNELS_AVX512 = 3, /* AVX-512 F/BW/VL (+VNNI where present) */
    GPTNEOX_KERNELS_AMX = 4,    /* AVX512 with VNNI, VBMI and BF16, plus AMX-BF16 tiles for Q8_0 / Q4_0 batches
                                   of 16+ tokens (weights dequantized to bf16, activations rounded to
                                   bf16: such a token's logits differ in the last digits from those of a
                                   smaller batch, as in llama.cpp) and for BF16 weights (weights repacked
                                   at load); AUTO picks it where the CPU has AMX-BF16 and the OS grants
                                   the tile state */
};
/* Whether this CPU (and this build) can run `path`. */
GPTNEOX_API bool gptneox_kernel_path_supported(enum gptneox_kernel_path path);
/* A static name for `path` ("scalar", "avx2", ...); "unknown" if out of range. */
GPTNEOX_API const char *gptneox_kernel_path_name(enum gptneox_kernel_path path);

/* sizeof() of the public structs, so that bindings (ctypes) can check their mirrors. Returns 0 for an
 * unknown id. */
enum gptneox_struct_id {
    GPTNEOX_STRUCT_MODEL_PARAMS = 0,
    GPTNEOX_STRUCT_CTX_PARAMS = 1,
    GPTNEOX_STRUCT_BATCH = 2,
    GPTNEOX_STRUCT_PERF_DATA = 3,
};
GPTNEOX_API size_t gptneox_struct_size(enum gptneox_struct_id id);

/* ---------------------------------------------------------------------------------------------- */
/* Model                                                                                          */

/* ggml tensor type ids (GGUF). This build computes with F32, F16, BF16, Q8_0 and Q4_0 weights. */
enum gptneox_type {
    GPTNEOX_TYPE_F32 = 0,
    GPTNEOX_TYPE_F16 = 1,
    GPTNEOX_TYPE_Q4_0 = 2,
    GPTNEOX_TYPE_Q8_0 = 8,
    GPTNEOX_TYPE_BF16 = 30,
};

/* Return false to cancel loading (the load then fails with GPTNEOX_STATUS_ABORTED). */
typedef bool (*gptneox_progress_callback)(float progress, void *user_data);

/* Override of one GGUF metadata key at load (layout of llama.h's llama_model_kv_override). The loader,
 * the tokenizer and gptneox_model_meta_* then see the overriding value. An override of a key present in
 * the file must match its type (INT: any integer type, in range; FLOAT: FLOAT32/FLOAT64; BOOL; STR),
 * otherwise the load fails naming the key. A key absent from the file is added (INT64, FLOAT64, BOOL or
 * STRING). key and val_str need not be NUL-terminated when they use all 128 bytes (key must not). */
enum gptneox_model_kv_override_type {
    GPTNEOX_KV_OVERRIDE_TYPE_INT = 0,
    GPTNEOX_KV_OVERRIDE_TYPE_FLOAT = 1,
    GPTNEOX_KV_OVERRIDE_TYPE_BOOL = 2,
    GPTNEOX_KV_OVERRIDE_TYPE_STR = 3,
};
struct gptneox_model_kv_override {
    int32_t tag; /* enum gptneox_model_kv_override_type */
    char key[128];
    union {
        int64_t val_i64;
        double val_f64;
        bool val_bool;
        char val_str[128];
    };
};

struct gptneox_model_params {
    gptneox_progress_callback progress_callback; /* may be NULL */
    void *progress_callback_user_data;
    bool vocab_only;    /* load metadata and vocabulary only; no tensors are read */
    bool use_mmap;      /* map the file read-only (default); false reads it into memory */
    bool use_mlock;     /* lock the weights in RAM (best effort; a failure is logged) */
    bool check_tensors; /* scan tensor data for NaN/Inf and invalid block scales at load */
    /* NULL, or an array of overrides terminated by an entry whose key[0] == 0 (copied during the load) */
    const struct gptneox_model_kv_override *kv_overrides;
    /* llama.h's use_extra_bufts (default true): weights this CPU's best kernels read faster in another
     * layout are repacked once at load into memory the model owns, and their pages of the mapped file are
     * released (they stay mapped: a context on another kernel path reads them from the file again).
     * Quantized results are bit-identical either way, except Q8_0 / Q4_0 batches of 16+ tokens on the AMX
     * path (bf16 tiles over the repacked copy only); F16 / BF16 ones round differently (another order of
     * exact f32 sums), each way batch-invariant. Now: matrices with a multiple of 16 rows, Q4_0 and Q8_0
     * on AVX-512 VNNI CPUs, F16 (rows of a multiple of 32) on AVX-512 CPUs, BF16 on AMX-BF16 CPUs, Q4_0
     * on AVX2 CPUs, when the file is mapped and not locked (use_mlock); the copy is made by all cores
     * into memory advised for transparent huge pages. */
    bool use_extra_bufts;
};
GPTNEOX_API struct gptneox_model_params gptneox_model_default_params(void);

/* Load a GGUF file of architecture `gptneox`. Returns NULL on failure (see gptneox_last_error: it names
 * the file and what is wrong). The caller owns the model: free it with gptneox_model_free after every
 * context made from it has been freed. */
GPTNEOX_API struct gptneox_model *gptneox_model_load_from_file(const char *path_model,
                                                             struct gptneox_model_params params);
/* Free a model; NULL is a no-op. */
GPTNEOX_API void gptneox_model_free(struct gptneox_model *model);

/* The model's vocabulary; valid as long as the model. Never NULL for a non-NULL model. */
GPTNEOX_API const struct gptneox_vocab *gptneox_model_get_vocab(const struct gptneox_model *model);

GPTNEOX_API int32_t gptneox_model_n_ctx_train(const struct gptneox_model *model);
GPTNEOX_API int32_t gptneox_model_n_embd(const struct gptneox_model *model);
GPTNEOX_API int32_t gptneox_model_n_layer(const struct gptneox_model *model);
GPTNEOX_API int32_t gptneox_model_n_head(const struct gptneox_model *model);
GPTNEOX_API int32_t gptneox_model_n_ff(const struct gptneox_model *model);
GPTNEOX_API int32_t gptneox_model_n_rot(const struct gptneox_model *model);
GPTNEOX_API float gptneox_model_rope_freq_base_train(const struct gptneox_model *model);
GPTNEOX_API float gptneox_model_rope_freq_scale_train(const struct gptneox_model *model);
GPTNEOX_API bool gptneox_model_use_parallel_residual(const struct gptneox_model *model);
/* general.file_type of the file (llama_ftype numbering), or -1 if absent. */
GPTNEOX_API int32_t gptneox_model_ftype(const struct gptneox_model *model);
/* Total bytes of all tensor data. */
GPTNEOX_API uint64_t gptneox_model_size(const struct gptneox_model *model);
/* Total number of weights in all tensors. */
GPTNEOX_API uint64_t gptneox_model_n_params(const struct gptneox_model *model);
/* A one-line description such as "gptneox 3.6B Q8_0", snprintf-style: returns the full length, writes
 * at most buf_size-1 bytes and a NUL; -1 on error. */
GPTNEOX_API int32_t gptneox_model_desc(const struct gptneox_model *model, char *buf, size_t buf_size);

/* GGUF metadata, every key of the file (arrays are rendered as "[v0, v1, ...]", at most 8 elements,
 * "..." after). snprintf-style like gptneox_model_desc; -1 if the key or index does not exist. */
GPTNEOX_API int32_t gptneox_model_meta_count(const struct gptneox_model *model);
GPTNEOX_API int32_t gptneox_model_meta_key_by_index(const struct gptneox_model *model, int32_t i, char *buf,
                                                    size_t buf_size);
GPTNEOX_API int32_t gptneox_model_meta_val_str_by_index(const struct gptneox_model *model, int32_t i, char *buf,
                                                        size_t buf_size);
GPTNEOX_API int32_t gptneox_model_meta_val_str(const struct gptneox_model *model, const char *key, char *buf,
                                               size_t buf_size);
/* tokenizer.chat_template (name NULL) or tokenizer.chat_template.<name>; NULL if absent. Valid as long
 * as the model. */
GPTNEOX_API const char *gptneox_model_chat_template(const struct gptneox_model *model, const char *name);

/* ---------------------------------------------------------------------------------------------- */
/* Vocabulary and tokenization                                                                    */

enum gptneox_vocab_type {
    GPTNEOX_VOCAB_TYPE_NONE = 0, /* vocab-less file */
    GPTNEOX_VOCAB_TYPE_SPM = 1,  /* sentencepiece (tokenizer.ggml.model "llama"): unigram or BPE */
    GPTNEOX_VOCAB_TYPE_BPE = 2,  /* byte-level BPE (tokenizer.ggml.model "gpt2") */
};

/* Bit flags, same values as llama.h's llama_token_attr. */
enum gptneox_token_attr {
    GPTNEOX_TOKEN_ATTR_UNDEFINED = 0,
    GPTNEOX_TOKEN_ATTR_UNKNOWN = 1 << 0,
    GPTNEOX_TOKEN_ATTR_UNUSED = 1 << 1,
    GPTNEOX_TOKEN_ATTR_NORMAL = 1 << 2,
    GPTNEOX_TOKEN_ATTR_CONTROL = 1 << 3,
    GPTNEOX_TOKEN_ATTR_USER_DEFINED = 1 << 4,
    GPTNEOX_TOKEN_ATTR_BYTE = 1 << 5,
    GPTNEOX_TOKEN_ATTR_NORMALIZED = 1 << 6,
    GPTNEOX_TOKEN_ATTR_LSTRIP = 1 << 7,
    GPTNEOX_TOKEN_ATTR_RSTRIP = 1 << 8,
    GPTNEOX_TOKEN_ATTR_SINGLE_WORD = 1 << 9,
};

GPTNEOX_API enum gptneox_vocab_type gptneox_vocab_type(const struct gptneox_vocab *vocab);
GPTNEOX_API int32_t gptneox_vocab_n_tokens(const struct gptneox_vocab *vocab);
/* Token text as stored in the file (sentencepiece pieces with U+2581, byte-level BPE symbols); NULL for
 * an id out of range. Valid as long as the model. */
GPTNEOX_API const char *gptneox_vocab_get_text(const struct gptneox_vocab *vocab, gptneox_token token);
GPTNEOX_API float gptneox_vocab_get_score(const struct gptneox_vocab *vocab, gptneox_token token);
GPTNEOX_API enum gptneox_token_attr gptneox_vocab_get_attr(const struct gptneox_vocab *vocab, gptneox_token token);
/* End of generation: eos, eot, and any other token the file marks so. */
GPTNEOX_API bool gptneox_vocab_is_eog(const struct gptneox_vocab *vocab, gptneox_token token);
GPTNEOX_API bool gptneox_vocab_is_control(const struct gptneox_vocab *vocab, gptneox_token token);

/* Special token ids from the file; GPTNEOX_TOKEN_NULL when the file has none. */
GPTNEOX_API gptneox_token gptneox_vocab_bos(const struct gptneox_vocab *vocab);
GPTNEOX_API gptneox_token gptneox_vocab_eos(const struct gptneox_vocab *vocab);
GPTNEOX_API gptneox_token gptneox_vocab_eot(const struct gptneox_vocab *vocab);
GPTNEOX_API gptneox_token gptneox_vocab_sep(const struct gptneox_vocab *vocab);
GPTNEOX_API gptneox_token gptneox_vocab_pad(const struct gptneox_vocab *vocab);
GPTNEOX_API gptneox_token gptneox_vocab_unk(const struct gptneox_vocab *vocab);
/* The token for a line break: "\n" (byte-level BPE, or its <0x0A> byte piece), or "<NL>" for
 * vocabularies that have it (rinna). */
GPTNEOX_API gptneox_token gptneox_vocab_nl(const struct gptneox_vocab *vocab);
GPTNEOX_API bool gptneox_vocab_get_add_bos(const struct gptneox_vocab *vocab);
GPTNEOX_API bool gptneox_vocab_get_add_eos(const struct gptneox_vocab *vocab);

/* The newline token of the context's model (see gptneox_vocab_nl). Unlike redpajama.cpp's C++-only
 * gptneox_token_nl(), which always returned 13, this reads the model's vocabulary. */
GPTNEOX_API gptneox_token gptneox_token_nl(const struct gptneox_context *ctx);

/* Text (UTF-8, text_len bytes, need not be NUL-terminated) to tokens.
 * add_special: add BOS/EOS as the vocabulary's add_bos/add_eos flags say.
 * parse_special: match control and user-defined tokens written in the text ("<|endoftext|>", "</s>").
 * Returns the number of tokens, or -(number needed) if n_tokens_max is too small (INT32_MIN if that
 * number does not fit). */
GPTNEOX_API int32_t gptneox_vocab_tokenize(const struct gptneox_vocab *vocab, const char *text, int32_t text_len,
                                           gptneox_token *tokens, int32_t n_tokens_max, bool add_special,
                                           bool parse_special);
/* The bytes of one token (byte pieces give their raw byte; U+2581 gives a space). lstrip: skip up to
 * that many leading spaces. special: render control tokens (else they give nothing).
 * Returns bytes written (no NUL), or -(bytes needed). */
GPTNEOX_API int32_t gptneox_token_to_piece(const struct gptneox_vocab *vocab, gptneox_token token, char *buf,
                                           int32_t length, int32_t lstrip, bool special);
/* Tokens to text. remove_special: drop a leading BOS / trailing EOS that add_special would add.
 * unparse_special: render control tokens. Returns bytes written (no NUL), or -(bytes needed). */
GPTNEOX_API int32_t gptneox_detokenize(const struct gptneox_vocab *vocab, const gptneox_token *tokens,
                                       int32_t n_tokens, char *text, int32_t text_len_max, bool remove_special,
                                       bool unparse_special);

/* ---------------------------------------------------------------------------------------------- */
/* Context                                                                                        */

enum gptneox_pooling_type {
    GPTNEOX_POOLING_TYPE_UNSPECIFIED = -1, /* resolves to NONE */
    GPTNEOX_POOLING_TYPE_NONE = 0,
    GPTNEOX_POOLING_TYPE_MEAN = 1,
    GPTNEOX_POOLING_TYPE_LAST = 3,
};

/* Return true to abort the current gptneox_decode (it then returns GPTNEOX_STATUS_ABORTED). */
typedef bool (*gptneox_abort_callback)(void *data);

/* Named gptneox_ctx_params, not gptneox_context_params: redpajama.cpp's API owns that name. */
struct gptneox_ctx_params {
    uint32_t n_ctx;          /* positions in the KV cache; 0 = the model's n_ctx_train */
    uint32_t n_batch;        /* most tokens one gptneox_decode call accepts */
    uint32_t n_ubatch;       /* most tokens computed in one step (a decode call is split into these) */
    uint32_t n_seq_max;      /* distinct sequence ids the cache can hold (1..64) */
    int32_t n_threads;       /* threads for single-token decode */
    int32_t n_threads_batch; /* threads for multi-token batches */
    int32_t type_k;          /* enum gptneox_type of the K cache: F16 (default), F32, or Q8_0 (half the
                                bytes; needs a head dim that is a multiple of 32; not beside an F32 V) */
    int32_t type_v;          /* enum gptneox_type of the V cache: the same choices (not F32 beside a Q8_0 K) */
    int32_t pooling_type;    /* enum gptneox_pooling_type, used when embeddings is true */
    int32_t kernel_path;     /* enum gptneox_kernel_path */
    float rope_freq_base;    /* 0 = the model's */
    float rope_freq_scale;   /* 0 = the model's (1.0: no scaling); positions are multiplied by it */
    gptneox_abort_callback abort_callback; /* may be NULL; called between layers */
    void *abort_callback_data;
    bool embeddings; /* keep the final hidden states (after the final norm) of output tokens */
    bool no_perf;    /* do not collect timings */
};
GPTNEOX_API struct gptneox_ctx_params gptneox_ctx_default_params(void);

/* Create a context on `model`. Returns NULL on failure. The caller owns the context and frees it with
 * gptneox_free before freeing the model. */
GPTNEOX_API struct gptneox_context *gptneox_init_from_model(struct gptneox_model *model,
                                                           struct gptneox_ctx_params params);
/* Free a context; NULL is a no-op. */
GPTNEOX_API void gptneox_free(struct gptneox_context *ctx);

GPTNEOX_API const struct gptneox_model *gptneox_get_model(const struct gptneox_context *ctx);
GPTNEOX_API uint32_t gptneox_n_ctx(const struct gptneox_context *ctx);
GPTNEOX_API uint32_t gptneox_n_batch(const struct gptneox_context *ctx);
GPTNEOX_API uint32_t gptneox_n_ubatch(const struct gptneox_context *ctx);
GPTNEOX_API uint32_t gptneox_n_seq_max(const struct gptneox_context *ctx);
GPTNEOX_API int32_t gptneox_n_threads(const struct gptneox_context *ctx);
GPTNEOX_API int32_t gptneox_n_threads_batch(const struct gptneox_context *ctx);
/* Values < 1 are an error (returns GPTNEOX_STATUS_INVALID_ARGUMENT, nothing changes). */
GPTNEOX_API int32_t gptneox_set_n_threads(struct gptneox_context *ctx, int32_t n_threads, int32_t n_threads_batch);
GPTNEOX_API enum gptneox_pooling_type gptneox_pooling_type(const struct gptneox_context *ctx);
GPTNEOX_API enum gptneox_kernel_path gptneox_kernel_path(const struct gptneox_context *ctx);

/* ---------------------------------------------------------------------------------------------- */
/* Batches and decoding                                                                           */

/* Same layout as llama.h's llama_batch. */
struct gptneox_batch {
    int32_t n_tokens;
    gptneox_token *token;     /* [n_tokens] */
    float *embd;              /* [n_tokens * embd] when made with embd > 0, else NULL (not supported
                                 by gptneox_decode yet: a batch with embd set is rejected) */
    gptneox_pos *pos;         /* [n_tokens] absolute position of each token in its sequence */
    int32_t *n_seq_id;        /* [n_tokens] how many sequences each token belongs to */
    gptneox_seq_id **seq_id;  /* [n_tokens][n_seq_id[i]] */
    int8_t *logits;           /* [n_tokens] nonzero: produce an output (logits/embeddings) here */
};

/* Allocate a batch with room for n_tokens tokens, each in up to n_seq_max sequences (embd must be 0).
 * n_tokens is set to 0. Free it with gptneox_batch_free. On failure every pointer is NULL. */
GPTNEOX_API struct gptneox_batch gptneox_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
GPTNEOX_API void gptneox_batch_free(struct gptneox_batch batch);

/* Run the model on a batch, appending its tokens to the KV cache. The batch is read during the call only.
 * Returns 0 on success; 1 if the KV cache has no room for the batch (nothing changed); a negative
 * gptneox_status on error (invalid batch: bad token id, position, sequence id, or more than n_batch
 * tokens; the cache is left as before).
 * As llama.h allows, a call may return before its results are computed: a call of up to 32 tokens
 * (context without embeddings or abort callback) is checked, given its KV cells and output rows, and
 * queued; consecutive queued calls are computed together, in steps of up to max(n_ubatch, min(256,
 * n_ctx)) tokens, when their results are first needed -- by gptneox_synchronize, the logits and
 * embeddings getters, sampling, the memory and state functions, or a decode call that cannot join the
 * queue. Results are bit-identical to computing each call on its own, except where a token's logits
 * depend on its batch's size (GPTNEOX_KERNELS_AMX with Q8_0 / Q4_0: they are those of the queue computed
 * as one batch); only the time moves. (This is what makes a prompt fed in calls of a few tokens, e.g.
 * LangChain's n_batch = 8, run at full speed.) */
GPTNEOX_API int32_t gptneox_decode(struct gptneox_context *ctx, struct gptneox_batch batch);

/* Compute the queued decode calls now (llama.h's llama_synchronize). Returns 0, or a negative
 * gptneox_status if that computation failed: the queued calls are then undone (their KV cells are free,
 * the last decode has no outputs) and gptneox_last_error() says why. */
GPTNEOX_API int32_t gptneox_synchronize(struct gptneox_context *ctx);
/* Tokens of decode calls queued and not yet computed (0 after gptneox_synchronize). */
GPTNEOX_API int32_t gptneox_n_queued(const struct gptneox_context *ctx);

/* llama.h's llama_encode, for models with an encoder (non-causal attention over the batch, no KV cache,
 * every token an output). GPT-NeoX has no encoder (gptneox_model_has_encoder semantics: false), so this
 * always fails and changes nothing: the KV cache and the outputs of the last decode stay as they were.
 * Returns GPTNEOX_STATUS_INVALID_ARGUMENT for a NULL context or an empty batch (n_tokens <= 0, or neither
 * token nor embd set), GPTNEOX_STATUS_UNSUPPORTED otherwise; gptneox_last_error() says why. The batch is
 * read during the call only (the caller keeps ownership). Use gptneox_decode instead. */
GPTNEOX_API int32_t gptneox_encode(struct gptneox_context *ctx, struct gptneox_batch batch);

/* Logits of the outputs of the last decode: n_outputs rows of n_vocab floats, in batch order. Valid until
 * the next decode or free. NULL if the last decode produced no outputs. With embeddings and pooling MEAN
 * or LAST every token of the batch is an output row (pooling needs them all); the rows of tokens that
 * did not ask for logits (batch.logits[i] == 0) are zeros. */
GPTNEOX_API float *gptneox_get_logits(struct gptneox_context *ctx);
/* A row of the last decode's outputs. As llama.h: i >= 0 is the index of a token in that batch, which
 * must have had logits[i] != 0 (with every token an output, this is also the output row); i < 0 counts
 * output rows from the end (-1 = last output). NULL (with an error) if there is no such output. */
GPTNEOX_API float *gptneox_get_logits_ith(struct gptneox_context *ctx, int32_t i);
/* Number of output rows of the last decode. */
GPTNEOX_API int32_t gptneox_n_outputs(const struct gptneox_context *ctx);
/* With embeddings = true: hidden states (after the final layer norm) of the outputs, n_embd floats a
 * row; _seq gives the pooled vector of a sequence (pooling MEAN or LAST). Same validity as logits. */
GPTNEOX_API float *gptneox_get_embeddings(struct gptneox_context *ctx);
GPTNEOX_API float *gptneox_get_embeddings_ith(struct gptneox_context *ctx, int32_t i);
GPTNEOX_API float *gptneox_get_embeddings_seq(struct gptneox_context *ctx, gptneox_seq_id seq_id);

/* ---------------------------------------------------------------------------------------------- */
/* KV cache ("memory")                                                                            */

/* The context's KV cache; valid as long as the context. */
GPTNEOX_API struct gptneox_memory *gptneox_get_memory(const struct gptneox_context *ctx);
/* Drop every cell. data: also zero the K/V data (not needed for correctness). */
GPTNEOX_API void gptneox_memory_clear(struct gptneox_memory *mem, bool data);
/* Remove positions [p0, p1) of seq_id (seq_id < 0: every sequence; p0 < 0: 0; p1 < 0: infinity).
 * Returns false only if that cannot be done (never for this cache); true otherwise. */
GPTNEOX_API bool gptneox_memory_seq_rm(struct gptneox_memory *mem, gptneox_seq_id seq_id, gptneox_pos p0,
                                       gptneox_pos p1);
/* Make positions [p0, p1) of seq_id_src also belong to seq_id_dst (no copy of data). */
GPTNEOX_API void gptneox_memory_seq_cp(struct gptneox_memory *mem, gptneox_seq_id seq_id_src,
                                       gptneox_seq_id seq_id_dst, gptneox_pos p0, gptneox_pos p1);
/* Drop every cell not in seq_id. */
GPTNEOX_API void gptneox_memory_seq_keep(struct gptneox_memory *mem, gptneox_seq_id seq_id);
/* Add delta to the positions [p0, p1) of seq_id (the K cache is re-rotated accordingly). */
GPTNEOX_API void gptneox_memory_seq_add(struct gptneox_memory *mem, gptneox_seq_id seq_id, gptneox_pos p0,
                                        gptneox_pos p1, gptneox_pos delta);
/* Smallest / largest position held for seq_id, or -1 if it holds none. */
GPTNEOX_API gptneox_pos gptneox_memory_seq_pos_min(struct gptneox_memory *mem, gptneox_seq_id seq_id);
GPTNEOX_API gptneox_pos gptneox_memory_seq_pos_max(struct gptneox_memory *mem, gptneox_seq_id seq_id);
GPTNEOX_API bool gptneox_memory_can_shift(struct gptneox_memory *mem);

/* ---------------------------------------------------------------------------------------------- */
/* State (KV cache + last outputs), for save/restore                                              */

/* Upper bound of the bytes gptneox_state_get_data writes now. */
GPTNEOX_API size_t gptneox_state_get_size(struct gptneox_context *ctx);
/* Write the state into dst (size bytes). Returns bytes written, 0 on error (dst too small). */
GPTNEOX_API size_t gptneox_state_get_data(struct gptneox_context *ctx, uint8_t *dst, size_t size);
/* Restore a state written by gptneox_state_get_data for the same model and cache types. Returns the
 * bytes read (== size on success), 0 on error (context unchanged). */
GPTNEOX_API size_t gptneox_state_set_data(struct gptneox_context *ctx, const uint8_t *src, size_t size);

/* ---------------------------------------------------------------------------------------------- */
/* Timings                                                                                        */

struct gptneox_perf_data {
    double t_start_ms;  /* when the context was created */
    double t_load_ms;   /* model load time */
    double t_p_eval_ms; /* time in multi-token decodes */
    double t_eval_ms;   /* time in single-token decodes */
    int32_t n_p_eval;   /* tokens in multi-token decodes */
    int32_t n_eval;     /* single-token decodes */
    int32_t n_reused;   /* unused: always 0 */
};
GPTNEOX_API struct gptneox_perf_data gptneox_perf_context(const struct gptneox_context *ctx);
GPTNEOX_API void gptneox_perf_context_reset(struct gptneox_context *ctx);

/* The stages of one forward step (every layer's share summed), for gptneox_perf_phases: where a prompt or
 * a generated token spends its time. */
enum gptneox_perf_phase {
    GPTNEOX_PHASE_EMBED = 0,     /* token embeddings, attention masks, rotary angles */
    GPTNEOX_PHASE_NORM = 1,      /* the layers' LayerNorms (sequential residual: with the attention add) */
    GPTNEOX_PHASE_QKV = 2,       /* Q, K, V projection and bias */
    GPTNEOX_PHASE_ROPE_KV = 3,   /* rotary embedding of Q and K, K and V written to the cache */
    GPTNEOX_PHASE_ATTENTION = 4, /* softmax(q k^T / sqrt(head_dim)) v */
    GPTNEOX_PHASE_ATTN_OUT = 5,  /* attention output projection and bias */
    GPTNEOX_PHASE_FFN_UP = 6,    /* MLP up projection, bias and GELU */
    GPTNEOX_PHASE_FFN_DOWN = 7,  /* MLP down projection and bias */
    GPTNEOX_PHASE_RESIDUAL = 8,  /* residual adds */
    GPTNEOX_PHASE_OUTPUT = 9,    /* final LayerNorm and logits of the output rows */
    GPTNEOX_PHASE_COUNT = 10
};
/* Milliseconds spent in each phase since the context was created or gptneox_perf_context_reset, summed
 * over the forward steps of one token (batch false: t_eval_ms's decodes) or of several (batch true:
 * prompts, and single-token calls computed together, see gptneox_n_queued). The phases cover the forward
 * pass only, so they add up to a little less than t_eval_ms / t_p_eval_ms; all zero when the context was
 * created with no_perf. Writes min(n, GPTNEOX_PHASE_COUNT) values to ms (caller-owned, n >= 0) in enum
 * order and returns GPTNEOX_PHASE_COUNT; -1 if ctx is NULL, or ms is NULL with n > 0. */
GPTNEOX_API int32_t gptneox_perf_phases(const struct gptneox_context *ctx, bool batch, double *ms, int32_t n);
/* The short name of a phase ("qkv", "attention", ...): a static string, NULL outside [0, GPTNEOX_PHASE_COUNT). */
GPTNEOX_API const char *gptneox_perf_phase_name(int32_t phase);

/* ---------------------------------------------------------------------------------------------- */
/* Sampling                                                                                       */
/*
 * Shaped like llama.h's sampler API. A sampler is {iface, ctx}; a chain is a sampler that applies the
 * samplers it holds in order. struct gptneox_sampler and struct gptneox_sampler_i have llama.h's layout
 * (llama_sampler / llama_sampler_i), so a sampler written for llama.h (e.g. llama-cpp-python's
 * CustomSampler) can be wrapped with gptneox_sampler_init(its iface, its ctx) and put in a chain.
 * Unused interface slots may be NULL (they are skipped; NULL apply does nothing).
 *
 * Ownership: every gptneox_sampler_init_* and gptneox_sampler_init return a sampler the caller owns
 * (free with gptneox_sampler_free) until it is added to a chain, which then owns it. Samplers never
 * refer to a context or model after init, so they may be freed after them.
 * Failure: init functions return NULL (see gptneox_last_error).
 * Seeds: GPTNEOX_DEFAULT_SEED (0xFFFFFFFF) means "pick a random seed" (as in llama.h); any other value
 * gives the same random sequence on every run and platform: the RNG is std::mt19937 (whose output the
 * C++ standard fixes), and a uniform double in [0, 1) is built from two draws a, b as
 * ((a >> 5) * 2^26 + (b >> 6)) / 2^53.
 */

struct gptneox_sampler;
typedef void *gptneox_sampler_context_t;

/* Same layout as llama.h's llama_token_data (12 bytes). */
typedef struct gptneox_token_data {
    gptneox_token id; /* token id */
    float logit;      /* log-odds of the token */
    float p;          /* probability of the token (set by samplers that compute it) */
} gptneox_token_data;

/* Same layout as llama.h's llama_token_data_array (32 bytes). */
typedef struct gptneox_token_data_array {
    gptneox_token_data *data; /* samplers may move data forward (xtc) or shrink size; never grow it */
    size_t size;
    int64_t selected; /* index into data of the chosen token, -1 before a sampler chose one */
    bool sorted;      /* data is sorted by logit, descending */
} gptneox_token_data_array;

/* Same layout as llama.h's llama_sampler_i (96 bytes); reserved[] stands for llama.h's backend_* and
 * copy_state slots, which are never called. */
struct gptneox_sampler_i {
    const char *(*name)(const struct gptneox_sampler *smpl);                   /* may be NULL */
    void (*accept)(struct gptneox_sampler *smpl, gptneox_token token);         /* may be NULL */
    void (*apply)(struct gptneox_sampler *smpl, gptneox_token_data_array *cur_p);
    void (*reset)(struct gptneox_sampler *smpl);                               /* may be NULL */
    struct gptneox_sampler *(*clone)(const struct gptneox_sampler *smpl);      /* NULL: see _clone */
    void (*free)(struct gptneox_sampler *smpl);                                /* frees ctx; may be NULL */
    void *reserved[6];
};

/* Same layout as llama.h's llama_sampler (16 bytes). */
struct gptneox_sampler {
    const struct gptneox_sampler_i *iface;
    gptneox_sampler_context_t ctx;
};

/* Same layout as llama.h's llama_logit_bias. */
typedef struct gptneox_logit_bias {
    gptneox_token token;
    float bias;
} gptneox_logit_bias;

/* A sampler with a caller-provided interface: allocates the {iface, ctx} pair (iface must stay valid
 * as long as the sampler; ctx is owned as iface->free says). */
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init(const struct gptneox_sampler_i *iface,
                                                         gptneox_sampler_context_t ctx);
/* A static name ("greedy", "dist", "chain", ...); "?" when the interface has none. */
GPTNEOX_API const char *gptneox_sampler_name(const struct gptneox_sampler *smpl);
/* Tell the sampler that `token` was chosen (penalties and dry remember it). */
GPTNEOX_API void gptneox_sampler_accept(struct gptneox_sampler *smpl, gptneox_token token);
GPTNEOX_API void gptneox_sampler_apply(struct gptneox_sampler *smpl, gptneox_token_data_array *cur_p);
/* Back to the state after init (RNGs reseeded, histories emptied). */
GPTNEOX_API void gptneox_sampler_reset(struct gptneox_sampler *smpl);
/* A copy with the same state, owned by the caller. A sampler whose iface has no clone is copied only
 * when its ctx is NULL (same iface, NULL ctx); otherwise NULL is returned. */
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_clone(const struct gptneox_sampler *smpl);
/* Free a sampler (iface->free, then the pair); a chain frees the samplers it holds. NULL is a no-op.
 * Do not free a sampler that is in a chain. */
GPTNEOX_API void gptneox_sampler_free(struct gptneox_sampler *smpl);

/* Seed of a seeded sampler (the actual one when it was made with GPTNEOX_DEFAULT_SEED); for a chain,
 * that of its last seeded sampler; GPTNEOX_DEFAULT_SEED for anything else. */
GPTNEOX_API uint32_t gptneox_sampler_get_seed(const struct gptneox_sampler *smpl);

/* Sample from output `idx` of the context's last decode (idx as in gptneox_get_logits_ith: < 0 counts
 * from the last output): builds the candidates {id, logit, 0} of every token of the vocabulary in id
 * order (unsorted) in a buffer the chain keeps, applies `smpl`, accepts the chosen token into `smpl`
 * and returns it. Returns GPTNEOX_TOKEN_NULL on error (no such output; no sampler chose a token). */
GPTNEOX_API gptneox_token gptneox_sampler_sample(struct gptneox_sampler *smpl, struct gptneox_context *ctx,
                                                 int32_t idx);

/* Chains. no_perf is accepted for llama.h's sake (no timings are kept). */
struct gptneox_sampler_chain_params {
    bool no_perf;
};
GPTNEOX_API struct gptneox_sampler_chain_params gptneox_sampler_chain_default_params(void);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_chain_init(struct gptneox_sampler_chain_params params);
/* Append `smpl` (the chain takes ownership). Returns 0, or GPTNEOX_STATUS_INVALID_ARGUMENT (NULL, not a
 * chain, or smpl == chain; smpl stays the caller's). */
GPTNEOX_API int32_t gptneox_sampler_chain_add(struct gptneox_sampler *chain, struct gptneox_sampler *smpl);
/* The i-th sampler (still owned by the chain); NULL if out of range. */
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_chain_get(const struct gptneox_sampler *chain, int32_t i);
GPTNEOX_API int32_t gptneox_sampler_chain_n(const struct gptneox_sampler *chain);
/* Take the i-th sampler out of the chain WITHOUT freeing it: the caller owns it again. NULL if out of
 * range. */
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_chain_remove(struct gptneox_sampler *chain, int32_t i);

/* Samplers, with llama.cpp's semantics (llama-sampling.cpp):
 * greedy       selects the candidate with the largest logit (the first one on ties).
 * dist         softmax over the candidates (p set, normalized), then draws one with the seeded RNG.
 * top_k        keeps the k largest logits, sorted descending (k <= 0: no-op).
 * top_p        sorts, softmax; keeps the shortest prefix whose cumulative p >= p and >= min_keep
 *              tokens (p >= 1: no-op). p is left as computed before truncation.
 * min_p        keeps tokens with logit >= max logit + ln(p) (at least min_keep; p <= 0: no-op).
 * typical      locally typical sampling: sorts, softmax, entropy H; orders tokens by |-ln p - H| and
 *              keeps the shortest prefix with cumulative p > p (and >= min_keep). p >= 1: no-op.
 * temp         logits /= t; t <= 0 keeps only the largest logit (others set to -inf).
 * temp_ext     dynamic temperature (delta > 0): t' = (t - delta, clamped at 0) + 2 delta *
 *              (H / ln n)^exponent, then logits /= t' and p = softmax (sorted); delta <= 0: as temp.
 * xtc          with probability p (one uniform draw per apply), removes every token with p >= t except
 *              the least likely of them, if at least min_keep remain (p <= 0, t > 0.5, size < 2: no-op).
 * top_n_sigma  masks (-inf) tokens with logit < max - n * sigma, sigma the population standard deviation
 *              of the finite logits (n <= 0: no-op).
 * mirostat     v1: Zipf exponent s estimated from the m most probable tokens, top-k with
 *              k = ((s-1) 2^mu / (1 - n_vocab^(1-s)))^(1/s), draw, mu -= eta (surprise - tau); mu starts
 *              at 2 tau. v2: keeps tokens with surprise -log2 p <= mu (at least one), draw, same update.
 * penalties    over the last penalty_last_n accepted tokens (0: disabled, < 0: 0): a token seen c times
 *              gets logit /= repeat (logit > 0) or *= repeat (logit <= 0), then
 *              logit -= c * freq + present. No-op when repeat == 1, freq == 0, present == 0.
 * dry          "Don't Repeat Yourself": a token that would extend a repeat of length L >= allowed_length
 *              of the last penalty_last_n tokens (-1: n_ctx_train, which <= 0 means 4096) gets
 *              logit -= multiplier * base^(L - allowed_length); sequence breakers (strings) stop repeats
 *              and are never penalized themselves. multiplier == 0 or base < 1: no-op.
 * logit_bias   adds bias to the logit of each listed token.
 */
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_greedy(void);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_dist(uint32_t seed);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_top_k(int32_t k);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_top_p(float p, size_t min_keep);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_min_p(float p, size_t min_keep);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_typical(float p, size_t min_keep);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_temp(float t);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_temp_ext(float t, float delta, float exponent);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_xtc(float p, float t, size_t min_keep, uint32_t seed);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_top_n_sigma(float n);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_mirostat(int32_t n_vocab, uint32_t seed, float tau,
                                                                  float eta, int32_t m);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_mirostat_v2(uint32_t seed, float tau, float eta);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_penalties(int32_t penalty_last_n, float penalty_repeat,
                                                                   float penalty_freq, float penalty_present);
/* seq_breakers: num_breakers NUL-terminated UTF-8 strings (each cut to 40 bytes; empty ones ignored); vocab
 * (used to find the tokens of the breakers) may be NULL when num_breakers is 0. */
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_dry(const struct gptneox_vocab *vocab, int32_t n_ctx_train,
                                                             float dry_multiplier, float dry_base,
                                                             int32_t dry_allowed_length, int32_t dry_penalty_last_n,
                                                             const char **seq_breakers, size_t num_breakers);
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_logit_bias(int32_t n_vocab, int32_t n_logit_bias,
                                                                    const gptneox_logit_bias *logit_bias);
/* Grammar (GBNF, llama.cpp's syntax; grammar_root NULL or "" means "root"): sets -inf on every candidate
 * whose text cannot continue the grammar, and on end-of-generation tokens until it is complete; accept()
 * advances it (an impossible token is an error). NULL with GPTNEOX_STATUS_INVALID_ARGUMENT and the parse
 * error (line, column) in gptneox_last_error() on a bad grammar. */
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_grammar(const struct gptneox_vocab *vocab,
                                                                 const char *grammar_str, const char *grammar_root);
/* Lazy grammar: constrains nothing until triggered, then acts as gptneox_sampler_init_grammar. Triggers are
 * checked on accept(): an accepted token in trigger_tokens starts the grammar fresh, fed that token's text;
 * otherwise the text accepted so far is matched against each of trigger_patterns (ECMAScript regexes that must
 * match the WHOLE text, e.g. "[\s\S]*?(<call>[\s\S]*)"), and a match starts the grammar fed the text from
 * the first capturing group that took part in the match (else the whole text). reset() awaits a trigger
 * again. The arrays are read during the call only (the caller keeps ownership); the returned sampler is
 * owned by the caller (gptneox_sampler_free, or a chain it is added to). NULL with
 * GPTNEOX_STATUS_INVALID_ARGUMENT and a message in gptneox_last_error() on a bad grammar, a bad regex or a
 * trigger token out of range. */
GPTNEOX_API struct gptneox_sampler *
gptneox_sampler_init_grammar_lazy_patterns(const struct gptneox_vocab *vocab, const char *grammar_str,
                                           const char *grammar_root, const char **trigger_patterns,
                                           size_t num_trigger_patterns, const gptneox_token *trigger_tokens,
                                           size_t num_trigger_tokens);

/* Infill (fill-in-the-middle), llama.cpp's llama_sampler_init_infill, meant to follow top-k / top-p: sorts
 * and computes p (softmax); if 3 * P(end-of-generation tokens) * size > P(other tokens) keeps only the
 * end-of-generation tokens (p renormalized); else merges each candidate whose text is a prefix of another
 * candidate's into the more probable of the two (p added, the other gets p 0 and logit -inf), keeps the
 * end-of-generation tokens and those with p >= 0.2 (none of the others left: the single candidate
 * {EOT, else EOS; logit 1}), renormalizes, keeps end-of-generation tokens and those with
 * p >= 1 / (n_kept_others + 1), renormalizes. Texts are pieces without special tokens. The token texts,
 * EOG flags and EOT/EOS ids are copied from `vocab` during the call: the sampler does not refer to the
 * model afterwards. Owned by the caller (gptneox_sampler_free, or a chain). NULL for a NULL or empty vocab. */
GPTNEOX_API struct gptneox_sampler *gptneox_sampler_init_infill(const struct gptneox_vocab *vocab);

#ifdef __cplusplus
}
#endif

#endif /* GPTNEOX_H */
