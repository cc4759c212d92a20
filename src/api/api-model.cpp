// Exported model functions (gptneox.h, "Model" section). Every function goes through guard(): errors
// become a status / NULL / -1 plus gptneox_last_error(), never an exception across the C boundary.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/status.h"
#include "loader/model.h"

namespace {

using gptneox::fail;
using gptneox::guard;

const gptneox::model &get(const gptneox_model *model) {
    if (!model || !model->m) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "model is NULL");
    return *model->m;
}

// snprintf semantics: write at most buf_size-1 bytes and a NUL; return the full length.
int32_t copy_out(const std::string &s, char *buf, size_t buf_size) {
    if (buf && buf_size > 0) {
        size_t n = s.size() < buf_size - 1 ? s.size() : buf_size - 1;
        std::memcpy(buf, s.data(), n);
        buf[n] = '\0';
    }
    return s.size() > static_cast<size_t>(INT32_MAX) ? INT32_MAX : static_cast<int32_t>(s.size());
}

// llama_ftype numbering (gguf.md §7 / llama-cpp-python.md LLAMA_FTYPE_*).
const char *ftype_name(int32_t ftype) {
    switch (ftype) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return nullptr;
    }
}

std::string size_label(uint64_t n) {
    char buf[32];
    if (n >= 1000000000ull) {
        std::snprintf(buf, sizeof buf, "%.1fB", static_cast<double>(n) / 1e9);
    } else if (n >= 1000000ull) {
        std::snprintf(buf, sizeof buf, "%.0fM", static_cast<double>(n) / 1e6);
    } else if (n >= 1000ull) {
        std::snprintf(buf, sizeof buf, "%.0fK", static_cast<double>(n) / 1e3);
    } else {
        std::snprintf(buf, sizeof buf, "%" PRIu64, n);
    }
    return buf;
}

std::string describe(const gptneox::model &m) {
    std::string type;
    if (const char *n = ftype_name(m.ftype)) {
        type = n;
    } else if (m.ftype >= 0) {
        type = "ftype " + std::to_string(m.ftype);
    } else if (!m.layers.empty()) {
        type = gptneox::ggml_type_info(m.layers[0].qkv_w.type).name; // no general.file_type: the main type
    } else {
        type = "unknown type";
    }
    return "gptneox " + size_label(m.n_params) + " " + type;
}

template <typename F> int32_t hp_get(const gptneox_model *model, F field) {
    return guard<int32_t>(-1, [&] { return field(get(model).hp); });
}

} // namespace

extern "C" {

GPTNEOX_API gptneox_model_params gptneox_model_default_params(void) {
    gptneox_model_params p;
    p.progress_callback = nullptr;
    p.progress_callback_user_data = nullptr;
    p.vocab_only = false;
    p.use_mmap = true;
    p.use_mlock = false;
    p.check_tensors = false;
    p.kv_overrides = nullptr;
    p.use_extra_bufts = true;
    return p;
}

GPTNEOX_API gptneox_model *gptneox_model_load_from_file(const char *path_model, gptneox_model_params params) {
    return guard<gptneox_model *>(nullptr, [&]() -> gptneox_model * {
        if (!path_model) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "gptneox_model_load_from_file: path is NULL");
        auto m = gptneox::load_model(path_model, params);
        auto *h = new gptneox_model();
        h->m = std::move(m);
        h->vocab_handle.v = &h->m->voc;
        gptneox::log(GPTNEOX_LOG_LEVEL_INFO, "%s: loaded %s (%" PRIu64 " bytes) in %.1f ms\n", path_model,
                     describe(*h->m).c_str(), h->m->n_bytes, h->m->t_load_ms);
        return h;
    });
}

GPTNEOX_API void gptneox_model_free(gptneox_model *model) {
    guard<int>(0, [&] {
        delete model;
        return 0;
    });
}

GPTNEOX_API const gptneox_vocab *gptneox_model_get_vocab(const gptneox_model *model) {
    return guard<const gptneox_vocab *>(nullptr, [&] {
        get(model);
        return &model->vocab_handle;
    });
}

GPTNEOX_API int32_t gptneox_model_n_ctx_train(const gptneox_model *model) {
    return hp_get(model, [](const gptneox::hparams &h) { return h.n_ctx_train; });
}
GPTNEOX_API int32_t gptneox_model_n_embd(const gptneox_model *model) {
    return hp_get(model, [](const gptneox::hparams &h) { return h.n_embd; });
}
GPTNEOX_API int32_t gptneox_model_n_layer(const gptneox_model *model) {
    return hp_get(model, [](const gptneox::hparams &h) { return h.n_layer; });
}
GPTNEOX_API int32_t gptneox_model_n_head(const gptneox_model *model) {
    return hp_get(model, [](const gptneox::hparams &h) { return h.n_head; });
}
GPTNEOX_API int32_t gptneox_model_n_ff(const gptneox_model *model) {
    return hp_get(model, [](const gptneox::hparams &h) { return h.n_ff; });
}
GPTNEOX_API int32_t gptneox_model_n_rot(const gptneox_model *model) {
    return hp_get(model, [](const gptneox::hparams &h) { return h.n_rot; });
}
GPTNEOX_API float gptneox_model_rope_freq_base_train(const gptneox_model *model) {
    return guard<float>(0.0f, [&] { return get(model).hp.rope_freq_base; });
}
GPTNEOX_API float gptneox_model_rope_freq_scale_train(const gptneox_model *model) {
    return guard<float>(0.0f, [&] { return get(model).hp.rope_freq_scale; });
}
GPTNEOX_API bool gptneox_model_use_parallel_residual(const gptneox_model *model) {
    return guard<bool>(false, [&] { return get(model).hp.parallel_residual; });
}
GPTNEOX_API int32_t gptneox_model_ftype(const gptneox_model *model) {
    return guard<int32_t>(-1, [&] { return get(model).ftype; });
}
GPTNEOX_API uint64_t gptneox_model_size(const gptneox_model *model) {
    return guard<uint64_t>(0, [&] { return get(model).n_bytes; });
}
GPTNEOX_API uint64_t gptneox_model_n_params(const gptneox_model *model) {
    return guard<uint64_t>(0, [&] { return get(model).n_params; });
}

GPTNEOX_API int32_t gptneox_model_desc(const gptneox_model *model, char *buf, size_t buf_size) {
    return guard<int32_t>(-1, [&] { return copy_out(describe(get(model)), buf, buf_size); });
}

GPTNEOX_API int32_t gptneox_model_meta_count(const gptneox_model *model) {
    return guard<int32_t>(-1, [&] { return static_cast<int32_t>(get(model).file->kvs().size()); });
}

GPTNEOX_API int32_t gptneox_model_meta_key_by_index(const gptneox_model *model, int32_t i, char *buf,
                                                    size_t buf_size) {
    return guard<int32_t>(-1, [&] {
        const auto &kvs = get(model).file->kvs();
        if (i < 0 || static_cast<size_t>(i) >= kvs.size()) return -1;
        return copy_out(kvs[static_cast<size_t>(i)].key, buf, buf_size);
    });
}

GPTNEOX_API int32_t gptneox_model_meta_val_str_by_index(const gptneox_model *model, int32_t i, char *buf,
                                                        size_t buf_size) {
    return guard<int32_t>(-1, [&] {
        const auto &kvs = get(model).file->kvs();
        if (i < 0 || static_cast<size_t>(i) >= kvs.size()) return -1;
        return copy_out(gptneox::gguf_file::value_to_string(kvs[static_cast<size_t>(i)].value), buf, buf_size);
    });
}

GPTNEOX_API int32_t gptneox_model_meta_val_str(const gptneox_model *model, const char *key, char *buf,
                                               size_t buf_size) {
    return guard<int32_t>(-1, [&] {
        const gptneox::model &m = get(model);
        if (!key) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "gptneox_model_meta_val_str: key is NULL");
        const gptneox::gguf_kv *kv = m.file->find(key);
        if (!kv) return -1;
        return copy_out(gptneox::gguf_file::value_to_string(kv->value), buf, buf_size);
    });
}

GPTNEOX_API const char *gptneox_model_chat_template(const gptneox_model *model, const char *name) {
    return guard<const char *>(nullptr, [&]() -> const char * {
        const gptneox::model &m = get(model);
        auto it = m.chat_templates.find(name ? name : "");
        return it == m.chat_templates.end() ? nullptr : it->second.c_str();
    });
}

} // extern "C"
