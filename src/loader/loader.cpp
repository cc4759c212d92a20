// load_model(): GGUF file -> gptneox::model. Keys and tensor names: /work/shared/reference/gguf.md §10-§11.
// The file is validated structurally by gguf_file; here we check that it describes a gptneox model we
// can run: exact key types, consistent sizes, every tensor present with the expected shape and type.
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstring>

#include "common/status.h"
#include "loader/model.h"

namespace gptneox {

namespace {

const char *const kArch = "gptneox";

// A UINT32 key, or an array (UINT32/INT32) holding the same value for every layer (llama.cpp allows
// per-layer arrays for head_count and feed_forward_length; NeoX models are uniform).
uint32_t get_u32_per_layer(const gguf_file &f, const std::string &key) {
    const gguf_kv *kv = f.find(key);
    if (!kv) fail(GPTNEOX_STATUS_FORMAT, "%s: missing key '%s'", f.path().c_str(), key.c_str());
    if (kv->value.type != gguf_type::array) return f.get_u32(key);
    std::vector<int64_t> vals;
    if (kv->value.elem_type == gguf_type::u32 || kv->value.elem_type == gguf_type::i32) {
        for (uint64_t i = 0; i < kv->value.n_elems; ++i) {
            uint32_t raw;
            std::memcpy(&raw, kv->value.elems + 4 * i, 4);
            vals.push_back(kv->value.elem_type == gguf_type::u32 ? static_cast<int64_t>(raw)
                                                                  : static_cast<int64_t>(static_cast<int32_t>(raw)));
        }
    } else {
        fail(GPTNEOX_STATUS_FORMAT, "%s: key '%s' is an array of %s, expected UINT32", f.path().c_str(), key.c_str(),
             gguf_type_name(kv->value.elem_type));
    }
    if (vals.empty()) fail(GPTNEOX_STATUS_FORMAT, "%s: key '%s' is an empty array", f.path().c_str(), key.c_str());
    for (int64_t v : vals) {
        if (v != vals[0]) {
            fail(GPTNEOX_STATUS_UNSUPPORTED, "%s: key '%s' differs between layers; only uniform layers are supported",
                 f.path().c_str(), key.c_str());
        }
    }
    if (vals[0] < 0) fail(GPTNEOX_STATUS_FORMAT, "%s: key '%s' is negative", f.path().c_str(), key.c_str());
    return static_cast<uint32_t>(vals[0]);
}

uint32_t get_u32_per_layer_or(const gguf_file &f, const std::string &key, uint32_t def) {
    return f.find(key) ? get_u32_per_layer(f, key) : def;
}

int32_t to_i32(const gguf_file &f, const char *key, uint32_t v) {
    if (v > static_cast<uint32_t>(INT32_MAX)) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: %s = %u is out of range", f.path().c_str(), key, v);
    }
    return static_cast<int32_t>(v);
}

void read_hparams(const gguf_file &f, hparams &hp) {
    const char *p = f.path().c_str();
    auto key = [](const char *k) { return std::string(kArch) + "." + k; };
    hp.n_ctx_train = to_i32(f, "context_length", f.get_u32(key("context_length")));
    hp.n_embd = to_i32(f, "embedding_length", f.get_u32(key("embedding_length")));
    hp.n_layer = to_i32(f, "block_count", f.get_u32(key("block_count")));
    hp.n_ff = to_i32(f, "feed_forward_length", get_u32_per_layer(f, key("feed_forward_length")));
    hp.n_head = to_i32(f, "attention.head_count", get_u32_per_layer(f, key("attention.head_count")));
    hp.norm_eps = f.get_f32(key("attention.layer_norm_epsilon"));
    hp.parallel_residual = f.get_bool(key("use_parallel_residual"));
    hp.rope_freq_base = f.get_f32_or(key("rope.freq_base"), 10000.0f);

    if (hp.n_ctx_train <= 0 || hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_head <= 0) {
        fail(GPTNEOX_STATUS_FORMAT,
             "%s: hyper-parameters must be positive (context_length %d, embedding_length %d, block_count %d, "
             "feed_forward_length %d, attention.head_count %d)",
             p, hp.n_ctx_train, hp.n_embd, hp.n_layer, hp.n_ff, hp.n_head);
    }
    if (hp.n_embd % hp.n_head != 0) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: embedding_length %d is not a multiple of attention.head_count %d", p,
             hp.n_embd, hp.n_head);
    }
    hp.head_dim = hp.n_embd / hp.n_head;
    uint32_t n_head_kv = get_u32_per_layer_or(f, key("attention.head_count_kv"), static_cast<uint32_t>(hp.n_head));
    if (n_head_kv != static_cast<uint32_t>(hp.n_head)) {
        fail(GPTNEOX_STATUS_UNSUPPORTED, "%s: attention.head_count_kv %u != head_count %d (grouped-query attention is "
             "not supported for gptneox)", p, n_head_kv, hp.n_head);
    }
    hp.n_rot = to_i32(f, "rope.dimension_count", f.get_u32_or(key("rope.dimension_count"), hp.head_dim));
    if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: rope.dimension_count %d must be even and at most the head size %d", p,
             hp.n_rot, hp.head_dim);
    }
    if (!(hp.norm_eps >= 0.0f) || !std::isfinite(hp.norm_eps)) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: attention.layer_norm_epsilon %g is invalid", p, hp.norm_eps);
    }
    if (!(hp.rope_freq_base > 0.0f) || !std::isfinite(hp.rope_freq_base)) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: rope.freq_base %g is invalid", p, hp.rope_freq_base);
    }
    // Linear RoPE scaling: positions are multiplied by 1/factor.
    float factor = 0.0f;
    std::string scaling = f.get_str_or(key("rope.scaling.type"), "");
    if (scaling == "linear") {
        factor = f.get_f32_or(key("rope.scaling.factor"), 0.0f);
    } else if (!scaling.empty() && scaling != "none") {
        fail(GPTNEOX_STATUS_UNSUPPORTED, "%s: rope.scaling.type '%s' is not supported (only linear)", p,
             scaling.c_str());
    } else if (scaling.empty()) {
        factor = f.get_f32_or(key("rope.scale_linear"), 0.0f);
    }
    if (factor != 0.0f) {
        if (!(factor > 0.0f) || !std::isfinite(factor)) fail(GPTNEOX_STATUS_FORMAT, "%s: rope scaling factor %g is invalid", p, factor);
        hp.rope_freq_scale = 1.0f / factor;
    }
}

std::string shape_text(const int64_t *ne, int n) {
    std::string s = "[";
    for (int j = 0; j < n; ++j) s += (j ? ", " : "") + std::to_string(ne[j]);
    return s + "]";
}

bool matrix_type_ok(uint32_t t) {
    return t == GPTNEOX_TYPE_F32 || t == GPTNEOX_TYPE_F16 || t == GPTNEOX_TYPE_BF16 || t == GPTNEOX_TYPE_Q8_0 ||
           t == GPTNEOX_TYPE_Q4_0;
}

// Bind tensor `name` of shape [ne0] (ne1 == 0) or [ne0, ne1] into w.
void bind(const gguf_file &f, weight &w, const std::string &name, int64_t ne0, int64_t ne1) {
    const char *p = f.path().c_str();
    const gguf_tensor_info *t = f.find_tensor(name);
    if (!t) fail(GPTNEOX_STATUS_FORMAT, "%s: missing tensor '%s'", p, name.c_str());
    const bool is_vec = ne1 == 0;
    const int64_t want[4] = {ne0, is_vec ? 1 : ne1, 1, 1};
    if (t->ne[0] != want[0] || t->ne[1] != want[1] || t->ne[2] != 1 || t->ne[3] != 1) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: tensor '%s' has shape %s, expected %s", p, name.c_str(),
             shape_text(t->ne, t->n_dims ? static_cast<int>(t->n_dims) : 1).c_str(),
             shape_text(want, is_vec ? 1 : 2).c_str());
    }
    const char *tname = ggml_type_info(t->type).name;
    if (is_vec && t->type != GPTNEOX_TYPE_F32) {
        fail(GPTNEOX_STATUS_UNSUPPORTED, "%s: tensor '%s' has type %s; 1-D tensors must be F32", p, name.c_str(), tname);
    }
    if (!is_vec && !matrix_type_ok(t->type)) {
        fail(GPTNEOX_STATUS_UNSUPPORTED,
             "%s: tensor '%s' has type %s, which is not supported yet (supported: F32, F16, BF16, Q8_0, Q4_0)", p,
             name.c_str(), tname);
    }
    w.type = t->type;
    w.ne0 = t->ne[0];
    w.ne1 = t->ne[1];
    w.row_bytes = static_cast<size_t>(t->ne[0] / ggml_type_info(t->type).blck) * ggml_type_info(t->type).type_size;
    w.data = t->data;
    w.name = t->name.c_str();
}

// NaN/Inf scan of one tensor's data (floats, or the f16 scale of each quantized block).
void check_data(const gguf_file &f, const gguf_tensor_info &t) {
    const uint8_t *d = t.data;
    const char *p = f.path().c_str();
    auto bad = [&](uint64_t i, const char *what) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: tensor '%s' contains a NaN or Inf %s %" PRIu64, p, t.name.c_str(), what, i);
    };
    switch (t.type) {
    case GPTNEOX_TYPE_F32:
        for (uint64_t i = 0; i < t.n_bytes / 4; ++i) {
            uint32_t b;
            std::memcpy(&b, d + 4 * i, 4);
            if ((b & 0x7F800000u) == 0x7F800000u) bad(i, "at element");
        }
        break;
    case GPTNEOX_TYPE_F16:
    case GPTNEOX_TYPE_BF16: {
        const uint16_t mask = t.type == GPTNEOX_TYPE_F16 ? 0x7C00 : 0x7F80;
        for (uint64_t i = 0; i < t.n_bytes / 2; ++i) {
            uint16_t h;
            std::memcpy(&h, d + 2 * i, 2);
            if ((h & mask) == mask) bad(i, "at element");
        }
        break;
    }
    case GPTNEOX_TYPE_Q8_0:
    case GPTNEOX_TYPE_Q4_0: {
        const size_t bs = ggml_type_info(t.type).type_size; // the f16 scale d is the block's first field
        for (uint64_t i = 0; i < t.n_bytes / bs; ++i) {
            uint16_t h;
            std::memcpy(&h, d + bs * i, 2);
            if ((h & 0x7C00) == 0x7C00) bad(i, "block scale in block");
        }
        break;
    }
    default: break;
    }
}

void progress(const gptneox_model_params &params, const std::string &path, float x) {
    if (params.progress_callback && !params.progress_callback(x, params.progress_callback_user_data)) {
        fail(GPTNEOX_STATUS_ABORTED, "%s: loading cancelled by the progress callback", path.c_str());
    }
}

} // namespace

std::unique_ptr<model> load_model(const std::string &path, const gptneox_model_params &params) {
    const auto t0 = std::chrono::steady_clock::now();
    progress(params, path, 0.0f);
    auto m = std::make_unique<model>();
    m->file = gguf_file::open(path, params.use_mmap);
    m->file->apply_overrides(params.kv_overrides); // before anything below reads a key
    const gguf_file &f = *m->file;
    const char *p = path.c_str();

    std::string arch = f.get_str("general.architecture");
    if (arch != kArch) {
        fail(GPTNEOX_STATUS_UNSUPPORTED, "%s: architecture '%s' is not supported (this build runs '%s')", p,
             arch.c_str(), kArch);
    }
    read_hparams(f, m->hp);
    hparams &hp = m->hp;

    if (const gguf_kv *kv = f.find("general.file_type")) {
        if (kv->value.type != gguf_type::u32) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: key 'general.file_type' has type %s, expected UINT32", p,
                 gguf_type_name(kv->value.type));
        }
        m->ftype = kv->value.num.u > static_cast<uint64_t>(INT32_MAX) ? -1 : static_cast<int32_t>(kv->value.num.u);
    }
    m->name = f.get_str_or("general.name", "");
    for (const gguf_kv &kv : f.kvs()) {
        static const std::string prefix = "tokenizer.chat_template";
        if (kv.value.type != gguf_type::string || kv.key.compare(0, prefix.size(), prefix) != 0) continue;
        if (kv.key.size() == prefix.size()) {
            m->chat_templates[""] = std::string(kv.value.str);
        } else if (kv.key[prefix.size()] == '.') {
            m->chat_templates[kv.key.substr(prefix.size() + 1)] = std::string(kv.value.str);
        }
    }
    for (const gguf_tensor_info &t : f.tensors()) {
        m->n_bytes += t.n_bytes;
        m->n_params += static_cast<uint64_t>(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
    }

    m->voc.load(f);
    progress(params, path, 0.05f);

    const gguf_tensor_info *emb = f.find_tensor("token_embd.weight");
    if (params.vocab_only) {
        hp.n_vocab = emb && emb->ne[1] <= INT32_MAX ? static_cast<int32_t>(emb->ne[1]) : m->voc.n_tokens();
    } else {
        if (!emb) fail(GPTNEOX_STATUS_FORMAT, "%s: missing tensor 'token_embd.weight'", p);
        if (emb->ne[1] <= 0 || emb->ne[1] > INT32_MAX) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: tensor 'token_embd.weight' has %" PRId64 " rows (vocabulary size)", p,
                 emb->ne[1]);
        }
        hp.n_vocab = static_cast<int32_t>(emb->ne[1]);
        if (m->voc.n_tokens() > hp.n_vocab) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: the vocabulary has %d tokens but token_embd.weight has only %d rows", p,
                 m->voc.n_tokens(), hp.n_vocab);
        }
        const int64_t n = hp.n_embd, v = hp.n_vocab, ff = hp.n_ff;
        bind(f, m->tok_embd, "token_embd.weight", n, v);
        bind(f, m->out_norm_w, "output_norm.weight", n, 0);
        bind(f, m->out_norm_b, "output_norm.bias", n, 0);
        bind(f, m->output, "output.weight", n, v);
        m->layers.resize(static_cast<size_t>(hp.n_layer));
        size_t n_bound = 4;
        for (int32_t i = 0; i < hp.n_layer; ++i) {
            layer_weights &l = m->layers[static_cast<size_t>(i)];
            const std::string b = "blk." + std::to_string(i) + ".";
            bind(f, l.attn_norm_w, b + "attn_norm.weight", n, 0);
            bind(f, l.attn_norm_b, b + "attn_norm.bias", n, 0);
            bind(f, l.qkv_w, b + "attn_qkv.weight", n, 3 * n);
            bind(f, l.qkv_b, b + "attn_qkv.bias", 3 * n, 0);
            bind(f, l.out_w, b + "attn_output.weight", n, n);
            bind(f, l.out_b, b + "attn_output.bias", n, 0);
            bind(f, l.ffn_norm_w, b + "ffn_norm.weight", n, 0);
            bind(f, l.ffn_norm_b, b + "ffn_norm.bias", n, 0);
            bind(f, l.up_w, b + "ffn_up.weight", n, ff);
            bind(f, l.up_b, b + "ffn_up.bias", ff, 0);
            bind(f, l.down_w, b + "ffn_down.weight", ff, n);
            bind(f, l.down_b, b + "ffn_down.bias", n, 0);
            n_bound += 12;
            progress(params, path, 0.05f + 0.45f * static_cast<float>(i + 1) / static_cast<float>(hp.n_layer));
        }
        if (f.tensors().size() != n_bound) {
            log(GPTNEOX_LOG_LEVEL_WARN, "%s: %zu tensors in the file are not used by the model\n", p,
                f.tensors().size() - n_bound);
        }
        if (params.check_tensors) {
            const size_t nt = f.tensors().size();
            for (size_t i = 0; i < nt; ++i) {
                check_data(f, f.tensors()[i]);
                progress(params, path, 0.5f + 0.5f * static_cast<float>(i + 1) / static_cast<float>(nt));
            }
        }
        // (not with mlock: locking the mapping would fault the released pages back in, holding both)
        if (params.use_extra_bufts && !params.use_mlock) repack_weights(*m, p);
        if (params.use_mlock && !m->file->mlock()) {
            log(GPTNEOX_LOG_LEVEL_WARN, "%s: mlock of %" PRIu64 " bytes failed: %s (continuing without it)\n", p,
                m->file->file_size(), std::strerror(errno));
        }
    }
    progress(params, path, 1.0f);
    m->t_load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return m;
}

} // namespace gptneox
