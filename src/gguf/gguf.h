// GGUF v2/v3 reader: maps a file read-only (or reads it into memory) and parses the header, metadata
// and tensor infos with every count, offset and size checked against the file before use.
// Any problem throws gptneox::error(GPTNEOX_STATUS_FORMAT / _IO / _UNSUPPORTED) with a message that
// names the file and what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gptneox.h"

namespace gptneox {

// GGUF metadata value types (gguf_type).
enum class gguf_type : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
    u64 = 10, i64 = 11, f64 = 12,
};
const char *gguf_type_name(gguf_type t);

// One metadata value. Scalars are widened into the matching field; strings and arrays point into the
// mapped file (valid as long as the gguf_file).
struct gguf_value {
    gguf_type type = gguf_type::u8;
    gguf_type elem_type = gguf_type::u8; // arrays only
    uint64_t n_elems = 0;                // arrays only
    const uint8_t *elems = nullptr;      // arrays only: raw element bytes (strings: u64 len + bytes each)
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
    } num = {0};
    std::string_view str; // strings only
    bool overridden = false; // set by apply_overrides (the getters then also accept INT64 / FLOAT64 values)
};

struct gguf_kv {
    std::string key;
    gguf_value value;
};

struct gguf_tensor_info {
    std::string name;
    uint32_t n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1}; // ne[0] innermost
    uint32_t type = 0;            // ggml type id
    uint64_t offset = 0;          // relative to the data section
    uint64_t n_bytes = 0;
    const uint8_t *data = nullptr; // into the mapping (nullptr when opened without tensor data)
};

class gguf_file {
public:
    // Open and validate `path`. use_mmap=false reads the file into memory instead.
    static std::unique_ptr<gguf_file> open(const std::string &path, bool use_mmap = true);
    ~gguf_file();
    gguf_file(const gguf_file &) = delete;
    gguf_file &operator=(const gguf_file &) = delete;

    const std::string &path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t file_size() const { return size_; }
    size_t alignment() const { return alignment_; }

    const std::vector<gguf_kv> &kvs() const { return kvs_; }
    const gguf_kv *find(const std::string &key) const; // nullptr if absent

    // Typed getters: throw FORMAT naming the key if present with another type; the *_or forms return
    // `def` when absent. Integer getters accept exactly the integer type named (as llama.cpp does).
    uint32_t get_u32(const std::string &key) const;
    uint32_t get_u32_or(const std::string &key, uint32_t def) const;
    float get_f32(const std::string &key) const;
    float get_f32_or(const std::string &key, float def) const;
    bool get_bool(const std::string &key) const;
    bool get_bool_or(const std::string &key, bool def) const;
    std::string get_str(const std::string &key) const;
    std::string get_str_or(const std::string &key, const std::string &def) const;

    // Arrays: checked element type; throw FORMAT if absent or mistyped.
    std::vector<std::string_view> get_str_array(const std::string &key) const;
    std::vector<float> get_f32_array(const std::string &key) const;
    std::vector<int32_t> get_i32_array(const std::string &key) const;
    std::vector<uint8_t> get_u8_array(const std::string &key) const;

    // A value rendered as text (for gptneox_model_meta_val_str*): arrays "[a, b, ...]" capped at 8 elements.
    static std::string value_to_string(const gguf_value &v);

    const std::vector<gguf_tensor_info> &tensors() const { return tensors_; }
    const gguf_tensor_info *find_tensor(const std::string &name) const; // nullptr if absent

    // Replace (or add) metadata values from a key[0] == 0 terminated array (NULL: no-op); see
    // gptneox_model_kv_override. Throws INVALID_ARGUMENT naming the key on a type mismatch.
    void apply_overrides(const gptneox_model_kv_override *ov);

    // Lock the mapping in RAM (best effort). Returns false on failure.
    bool mlock();
    // The data is a mapping of the file (not a copy in memory).
    bool mapped() const { return mapped_; }

private:
    gguf_file() = default;
    void parse();

    std::string path_;
    int fd_ = -1;
    const uint8_t *base_ = nullptr;
    uint64_t size_ = 0;
    bool mapped_ = false;
    std::vector<uint8_t> owned_; // when not mapped
    uint32_t version_ = 0;
    size_t alignment_ = 32;
    std::vector<gguf_kv> kvs_;
    std::unordered_map<std::string, size_t> kv_index_;
    std::vector<gguf_tensor_info> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
    std::vector<std::unique_ptr<std::string>> override_strs_; // storage of overriding string values
};

// ggml type table: block size (elements) and bytes per block; 0/0 for ids this build does not know.
struct ggml_type_size {
    const char *name;
    int64_t blck;
    size_t type_size;
};
ggml_type_size ggml_type_info(uint32_t type);

} // namespace gptneox
