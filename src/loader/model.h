// The loaded model: hyper-parameters read from GGUF keys, weights bound to tensors of the file (or to
// repacked copies), the vocabulary and the metadata. Read-only once loaded, shared by contexts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/huge-buffer.h"
#include "gguf/gguf.h"
#include "gptneox.h"
#include "vocab/vocab.h"

namespace gptneox {

// A 2-D (or 1-D) weight: ne0 elements per row (innermost), ne1 rows, rows row_bytes apart.
struct weight {
    uint32_t type = 0;        // ggml type id (GPTNEOX_TYPE_*)
    int64_t ne0 = 0;          // elements per row (the input size of a matrix)
    int64_t ne1 = 1;          // rows (the output size of a matrix; 1 for vectors)
    size_t row_bytes = 0;     // bytes per row
    const void *data = nullptr;
    const char *name = "";    // the GGUF tensor name, for messages
    // Optional copy in a kernel path's own layout (use_extra_bufts; owned by the model): packed_layout
    // names it (type_traits::packed_layout), rows in groups of 16, packed_group_bytes apart.
    const uint8_t *packed = nullptr;
    uint32_t packed_layout = 0;
    size_t packed_group_bytes = 0;

    // A matrix over rows that already exist (the caller keeps them alive): ne1 rows of ne0 elements of
    // `type`, row_bytes apart.
    static weight rows(uint32_t type, int64_t ne0, int64_t ne1, size_t row_bytes, const void *data,
                       const char *name = "test") {
        weight w;
        w.type = type;
        w.ne0 = ne0;
        w.ne1 = ne1;
        w.row_bytes = row_bytes;
        w.data = data;
        w.name = name;
        return w;
    }
};

struct hparams {
    int32_t n_vocab = 0;      // rows of token_embd / output (may exceed the tokenizer's size)
    int32_t n_ctx_train = 0;  // gptneox.context_length
    int32_t n_embd = 0;       // n: hidden size
    int32_t n_layer = 0;      // L
    int32_t n_head = 0;       // h
    int32_t n_ff = 0;         // f: MLP inner size
    int32_t n_rot = 0;        // rotated dims per head (gptneox.rope.dimension_count; default head_dim)
    int32_t head_dim = 0;     // n / h
    float norm_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;
    bool parallel_residual = true;
};

struct layer_weights {
    weight attn_norm_w, attn_norm_b; // [n] f32
    weight qkv_w;                    // [n -> 3n], rows [Q;K;V], each head-major
    weight qkv_b;                    // [3n] f32
    weight out_w;                    // [n -> n]
    weight out_b;                    // [n] f32
    weight ffn_norm_w, ffn_norm_b;   // [n] f32
    weight up_w;                     // [n -> f]
    weight up_b;                     // [f] f32
    weight down_w;                   // [f -> n]
    weight down_b;                   // [n] f32
};

struct model {
    std::unique_ptr<gguf_file> file; // owns the mapping every weight points into
    huge_buffer packed_mem; // the arena every weight.packed points into
    hparams hp;
    weight tok_embd;                 // [n_vocab rows of n]
    std::vector<layer_weights> layers;
    weight out_norm_w, out_norm_b;   // [n] f32
    weight output;                   // [n -> n_vocab]
    vocab voc;
    int32_t ftype = -1;              // general.file_type or -1
    uint64_t n_bytes = 0;            // sum of tensor bytes
    uint64_t n_params = 0;           // sum of tensor elements
    std::string name;                // general.name or ""
    double t_load_ms = 0;
    // tokenizer.chat_template ("" key) and tokenizer.chat_template.<name> (key <name>), NUL-terminated
    // copies so gptneox_model_chat_template can hand out pointers valid as long as the model.
    std::map<std::string, std::string> chat_templates;
};

// Load a model; throws gptneox::error on any problem.
std::unique_ptr<model> load_model(const std::string &path, const gptneox_model_params &params);
// use_extra_bufts: give the matrices the best kernel path repacks their packed copies (repack.cpp).
void repack_weights(model &m, const char *path);

} // namespace gptneox

// The opaque public handles are these types.
struct gptneox_model {
    std::unique_ptr<gptneox::model> m;
    gptneox_vocab vocab_handle; // {&m->voc}, what gptneox_model_get_vocab returns
};
