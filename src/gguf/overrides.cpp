// gguf_file::apply_overrides: caller-given values of metadata keys (gptneox_model_kv_override, the
// layout of llama.cpp's llama_model_kv_override) replace the file's values before anything reads them.
#include <cinttypes>
#include <cstring>

#include "common/status.h"
#include "gguf/gguf.h"

namespace gptneox {

namespace {

const char *tag_name(int32_t tag) {
    switch (tag) {
    case GPTNEOX_KV_OVERRIDE_TYPE_INT: return "int";
    case GPTNEOX_KV_OVERRIDE_TYPE_FLOAT: return "float";
    case GPTNEOX_KV_OVERRIDE_TYPE_BOOL: return "bool";
    case GPTNEOX_KV_OVERRIDE_TYPE_STR: return "str";
    default: return "unknown";
    }
}

bool is_unsigned(gguf_type t) {
    return t == gguf_type::u8 || t == gguf_type::u16 || t == gguf_type::u32 || t == gguf_type::u64;
}
bool is_signed(gguf_type t) {
    return t == gguf_type::i8 || t == gguf_type::i16 || t == gguf_type::i32 || t == gguf_type::i64;
}

// [lo, hi] of an integer GGUF type, as int64 (u64's upper bound is clipped to INT64_MAX: the override is
// an int64).
void int_range(gguf_type t, int64_t &lo, int64_t &hi) {
    switch (t) {
    case gguf_type::u8: lo = 0; hi = UINT8_MAX; break;
    case gguf_type::u16: lo = 0; hi = UINT16_MAX; break;
    case gguf_type::u32: lo = 0; hi = UINT32_MAX; break;
    case gguf_type::u64: lo = 0; hi = INT64_MAX; break;
    case gguf_type::i8: lo = INT8_MIN; hi = INT8_MAX; break;
    case gguf_type::i16: lo = INT16_MIN; hi = INT16_MAX; break;
    case gguf_type::i32: lo = INT32_MIN; hi = INT32_MAX; break;
    default: lo = INT64_MIN; hi = INT64_MAX; break;
    }
}

} // namespace

void gguf_file::apply_overrides(const gptneox_model_kv_override *ov) {
    if (!ov) return;
    for (; ov->key[0] != '\0'; ++ov) {
        const size_t key_len = strnlen(ov->key, sizeof ov->key);
        if (key_len == sizeof ov->key) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "kv_override key '%.32s...' is not NUL-terminated within %zu bytes",
                 ov->key, sizeof ov->key);
        }
        const std::string key(ov->key, key_len);
        const char *k = key.c_str();
        if (ov->tag < GPTNEOX_KV_OVERRIDE_TYPE_INT || ov->tag > GPTNEOX_KV_OVERRIDE_TYPE_STR) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "kv_override '%s' has an unknown type tag %d", k, ov->tag);
        }
        gguf_value nv;
        nv.overridden = true;
        switch (ov->tag) {
        case GPTNEOX_KV_OVERRIDE_TYPE_INT: nv.type = gguf_type::i64; nv.num.i = ov->val_i64; break;
        case GPTNEOX_KV_OVERRIDE_TYPE_FLOAT: nv.type = gguf_type::f64; nv.num.f = ov->val_f64; break;
        case GPTNEOX_KV_OVERRIDE_TYPE_BOOL: nv.type = gguf_type::boolean; nv.num.b = ov->val_bool; break;
        default: {
            override_strs_.push_back(std::make_unique<std::string>(ov->val_str, strnlen(ov->val_str, sizeof ov->val_str)));
            nv.type = gguf_type::string;
            nv.str = *override_strs_.back();
            break;
        }
        }
        auto it = kv_index_.find(key);
        if (it == kv_index_.end()) { // a new key
            kv_index_.emplace(key, kvs_.size());
            kvs_.push_back(gguf_kv{key, nv});
            continue;
        }
        gguf_value &cur = kvs_[it->second].value;
        const gguf_type ct = cur.type;
        auto mismatch = [&] {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "kv_override '%s' has type %s, but the file's value has type %s", k,
                 tag_name(ov->tag), gguf_type_name(ct));
        };
        switch (ov->tag) {
        case GPTNEOX_KV_OVERRIDE_TYPE_INT: {
            if (!is_unsigned(ct) && !is_signed(ct)) mismatch();
            int64_t lo, hi;
            int_range(ct, lo, hi);
            if (ov->val_i64 < lo || ov->val_i64 > hi) {
                fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "kv_override '%s' = %" PRId64 " is out of range for %s", k,
                     ov->val_i64, gguf_type_name(ct));
            }
            if (is_unsigned(ct)) {
                nv.num.u = static_cast<uint64_t>(ov->val_i64);
            } else {
                nv.num.i = ov->val_i64;
            }
            break;
        }
        case GPTNEOX_KV_OVERRIDE_TYPE_FLOAT:
            if (ct != gguf_type::f32 && ct != gguf_type::f64) mismatch();
            if (ct == gguf_type::f32) nv.num.f = static_cast<double>(static_cast<float>(ov->val_f64));
            break;
        case GPTNEOX_KV_OVERRIDE_TYPE_BOOL:
            if (ct != gguf_type::boolean) mismatch();
            break;
        default:
            if (ct != gguf_type::string) mismatch();
            break;
        }
        nv.type = ct; // keep the file's type, so that exact-type getters keep working
        cur = nv;
    }
}

} // namespace gptneox
