// GGUF v2/v3 reader. Layout and validation rules: /work/shared/reference/gguf.md (§2-§7).
// Every read goes through `cursor`, which checks the remaining bytes first; every count read from the
// file is compared with the bytes left before anything is sized from it.
#include "gguf/gguf.h"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/status.h"

namespace gptneox {

namespace {

constexpr uint64_t kMaxStringLen = 1ull << 30; // llama.cpp's limit (1 GiB)
constexpr uint64_t kMaxArrayCount = 1ull << 30;
constexpr size_t kMaxName = 64; // GGML_MAX_NAME: names must be shorter
constexpr uint32_t kMaxDims = 4;

// Bytes of one scalar of type t; 0 for string/array/unknown.
size_t scalar_size(uint32_t t) {
    switch (static_cast<gguf_type>(t)) {
    case gguf_type::u8: case gguf_type::i8: case gguf_type::boolean: return 1;
    case gguf_type::u16: case gguf_type::i16: return 2;
    case gguf_type::u32: case gguf_type::i32: case gguf_type::f32: return 4;
    case gguf_type::u64: case gguf_type::i64: case gguf_type::f64: return 8;
    default: return 0;
    }
}

bool known_type(uint32_t t) { return t <= static_cast<uint32_t>(gguf_type::f64); }

// Little-endian loads from unaligned memory (x86-64 and every other target we build for is LE).
template <typename T> T load(const uint8_t *p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

// A bounds-checked reader over [base, base + size). `what` describes the field being read, for messages.
class cursor {
public:
    cursor(const std::string &path, const uint8_t *base, uint64_t size) : path_(path), base_(base), size_(size) {}

    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return size_ - pos_; }

    const uint8_t *take(uint64_t n, const char *what) {
        if (n > remaining()) {
            fail(GPTNEOX_STATUS_FORMAT,
                 "%s: file is truncated: %s needs %" PRIu64 " bytes at offset %" PRIu64 ", but the file has %" PRIu64
                 " bytes",
                 path_.c_str(), what, n, pos_, size_);
        }
        const uint8_t *p = base_ + pos_;
        pos_ += n;
        return p;
    }
    uint32_t u32(const char *what) { return load<uint32_t>(take(4, what)); }
    uint64_t u64(const char *what) { return load<uint64_t>(take(8, what)); }

    std::string_view str(const char *what) {
        uint64_t len = u64(what);
        if (len > kMaxStringLen || len > remaining()) {
            fail(GPTNEOX_STATUS_FORMAT,
                 "%s: %s: string length %" PRIu64 " at offset %" PRIu64 " is larger than the %" PRIu64
                 " bytes left in the file",
                 path_.c_str(), what, len, pos_ - 8, remaining());
        }
        const uint8_t *p = take(len, what);
        return std::string_view(reinterpret_cast<const char *>(p), static_cast<size_t>(len));
    }

private:
    const std::string &path_;
    const uint8_t *base_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

// Shortest decimal text that reads back to the same float/double.
std::string float_text(double v, bool is_f32) {
    char buf[64];
    for (int prec = 1; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, v);
        double back = std::strtod(buf, nullptr);
        if (is_f32 ? static_cast<float>(back) == static_cast<float>(v) : back == v) break;
    }
    return buf;
}

std::string scalar_text(uint32_t t, const uint8_t *p) {
    switch (static_cast<gguf_type>(t)) {
    case gguf_type::u8: return std::to_string(load<uint8_t>(p));
    case gguf_type::i8: return std::to_string(load<int8_t>(p));
    case gguf_type::u16: return std::to_string(load<uint16_t>(p));
    case gguf_type::i16: return std::to_string(load<int16_t>(p));
    case gguf_type::u32: return std::to_string(load<uint32_t>(p));
    case gguf_type::i32: return std::to_string(load<int32_t>(p));
    case gguf_type::u64: return std::to_string(load<uint64_t>(p));
    case gguf_type::i64: return std::to_string(load<int64_t>(p));
    case gguf_type::f32: return float_text(load<float>(p), true);
    case gguf_type::f64: return float_text(load<double>(p), false);
    case gguf_type::boolean: return *p ? "true" : "false";
    default: return "?";
    }
}

// Fill v.num from a scalar of type t at p.
void set_scalar(gguf_value &v, uint32_t t, const uint8_t *p) {
    switch (static_cast<gguf_type>(t)) {
    case gguf_type::u8: v.num.u = load<uint8_t>(p); break;
    case gguf_type::u16: v.num.u = load<uint16_t>(p); break;
    case gguf_type::u32: v.num.u = load<uint32_t>(p); break;
    case gguf_type::u64: v.num.u = load<uint64_t>(p); break;
    case gguf_type::i8: v.num.i = load<int8_t>(p); break;
    case gguf_type::i16: v.num.i = load<int16_t>(p); break;
    case gguf_type::i32: v.num.i = load<int32_t>(p); break;
    case gguf_type::i64: v.num.i = load<int64_t>(p); break;
    case gguf_type::f32: v.num.f = load<float>(p); break;
    case gguf_type::f64: v.num.f = load<double>(p); break;
    case gguf_type::boolean: v.num.b = *p != 0; break;
    default: break;
    }
}

// The table of gguf.md §7. Removed / unknown ids have blck 0.
struct type_row {
    const char *name;
    int64_t blck;
    size_t size;
};
constexpr type_row kTypes[] = {
    {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},    {"Q4_1", 32, 20},    {"Q4_2", 0, 0},
    {"Q4_3", 0, 0},       {"Q5_0", 32, 22},    {"Q5_1", 32, 24},    {"Q8_0", 32, 34},    {"Q8_1", 32, 36},
    {"Q2_K", 256, 84},    {"Q3_K", 256, 110},  {"Q4_K", 256, 144},  {"Q5_K", 256, 176},  {"Q6_K", 256, 210},
    {"Q8_K", 256, 292},   {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},  {"IQ4_XS", 256, 136}, {"I8", 1, 1},
    {"I16", 1, 2},        {"I32", 1, 4},       {"I64", 1, 8},       {"F64", 1, 8},       {"IQ1_M", 256, 56},
    {"BF16", 1, 2},       {"Q4_0_4_4", 0, 0},  {"Q4_0_4_8", 0, 0},  {"Q4_0_8_8", 0, 0},  {"TQ1_0", 256, 54},
    {"TQ2_0", 256, 66},   {"IQ4_NL_4_4", 0, 0}, {"IQ4_NL_4_8", 0, 0}, {"IQ4_NL_8_8", 0, 0}, {"MXFP4", 32, 17},
    {"NVFP4", 64, 36},    {"Q1_0", 128, 18},   {"Q2_0", 64, 18},
};
constexpr uint32_t kNumTypes = sizeof(kTypes) / sizeof(kTypes[0]);

std::string shape_text(const gguf_tensor_info &t) {
    std::string s = "[";
    for (uint32_t j = 0; j < t.n_dims; ++j) s += (j ? ", " : "") + std::to_string(t.ne[j]);
    return s + "]";
}

} // namespace

const char *gguf_type_name(gguf_type t) {
    static const char *const names[] = {"UINT8", "INT8",  "UINT16", "INT16", "UINT32", "INT32",  "FLOAT32",
                                        "BOOL",  "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
    auto i = static_cast<uint32_t>(t);
    return i < sizeof(names) / sizeof(names[0]) ? names[i] : "unknown";
}

ggml_type_size ggml_type_info(uint32_t type) {
    if (type >= kNumTypes) return {"unknown", 0, 0};
    return {kTypes[type].name, kTypes[type].blck, kTypes[type].size};
}

// ---------------------------------------------------------------------------------------------------
// Opening

std::unique_ptr<gguf_file> gguf_file::open(const std::string &path, bool use_mmap) {
    std::unique_ptr<gguf_file> f(new gguf_file());
    f->path_ = path;
    f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f->fd_ < 0) fail(GPTNEOX_STATUS_IO, "%s: cannot open: %s", path.c_str(), std::strerror(errno));
    struct stat st;
    if (::fstat(f->fd_, &st) != 0) fail(GPTNEOX_STATUS_IO, "%s: cannot stat: %s", path.c_str(), std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail(GPTNEOX_STATUS_IO, "%s: not a regular file", path.c_str());
    f->size_ = static_cast<uint64_t>(st.st_size);
    if (f->size_ < 8) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: file is truncated: %" PRIu64 " bytes is too short for a GGUF header",
             path.c_str(), f->size_);
    }
    if (f->size_ > std::numeric_limits<size_t>::max()) fail(GPTNEOX_STATUS_IO, "%s: file too large", path.c_str());
    if (use_mmap) {
        void *p = ::mmap(nullptr, static_cast<size_t>(f->size_), PROT_READ, MAP_PRIVATE, f->fd_, 0);
        if (p == MAP_FAILED) fail(GPTNEOX_STATUS_IO, "%s: mmap failed: %s", path.c_str(), std::strerror(errno));
        f->base_ = static_cast<const uint8_t *>(p);
        f->mapped_ = true;
    } else {
        f->owned_.resize(static_cast<size_t>(f->size_));
        size_t done = 0;
        while (done < f->owned_.size()) {
            ssize_t n = ::pread(f->fd_, f->owned_.data() + done, f->owned_.size() - done, static_cast<off_t>(done));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) fail(GPTNEOX_STATUS_IO, "%s: read failed: %s", path.c_str(), std::strerror(errno));
            if (n == 0) fail(GPTNEOX_STATUS_IO, "%s: file shrank while reading it", path.c_str());
            done += static_cast<size_t>(n);
        }
        f->base_ = f->owned_.data();
    }
    ::close(f->fd_);
    f->fd_ = -1;
    f->parse();
    return f;
}

gguf_file::~gguf_file() {
    if (mapped_ && base_) ::munmap(const_cast<uint8_t *>(base_), static_cast<size_t>(size_));
    if (fd_ >= 0) ::close(fd_);
}

bool gguf_file::mlock() {
    if (!base_ || size_ == 0) return true;
    return ::mlock(base_, static_cast<size_t>(size_)) == 0;
}

// ---------------------------------------------------------------------------------------------------
// Parsing

void gguf_file::parse() {
    const char *p = path_.c_str();
    cursor c(path_, base_, size_);

    const uint8_t *magic = c.take(4, "the magic");
    if (std::memcmp(magic, "GGUF", 4) != 0) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: not a GGUF file (bad magic: bytes %02x %02x %02x %02x, expected \"GGUF\")", p,
             magic[0], magic[1], magic[2], magic[3]);
    }
    version_ = c.u32("the version");
    if (version_ == 0) fail(GPTNEOX_STATUS_FORMAT, "%s: invalid GGUF version 0", p);
    if ((version_ & 0xFFFFu) == 0) {
        fail(GPTNEOX_STATUS_UNSUPPORTED,
             "%s: GGUF version field reads 0x%08x: the file is big-endian (endianness mismatch); only little-endian "
             "files are supported",
             p, version_);
    }
    if (version_ == 1) fail(GPTNEOX_STATUS_UNSUPPORTED, "%s: GGUF version 1 is no longer supported (need 2 or 3)", p);
    if (version_ > 3) fail(GPTNEOX_STATUS_UNSUPPORTED, "%s: GGUF version %u is not supported (need 2 or 3)", p, version_);

    uint64_t n_tensors = c.u64("the tensor count");
    uint64_t n_kv = c.u64("the key-value count");
    // Smallest records: KV = key len + 1 key byte + type + 1 value byte; tensor info = name len + 1 byte +
    // n_dims + type + offset. A count that cannot fit in the remaining bytes is corrupt.
    if (n_kv > c.remaining() / 14) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: key-value count %" PRIu64 " is impossible: only %" PRIu64 " bytes follow (corrupt or truncated file)", p,
             n_kv, c.remaining());
    }
    if (n_tensors > c.remaining() / 25) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: tensor count %" PRIu64 " is impossible: only %" PRIu64 " bytes follow (corrupt or truncated file)", p,
             n_tensors, c.remaining());
    }

    // Key-value pairs.
    kvs_.reserve(static_cast<size_t>(n_kv < 4096 ? n_kv : 4096)); // a corrupt count must not allocate much
    for (uint64_t i = 0; i < n_kv; ++i) {
        std::string what = format("the key of key-value pair #%" PRIu64, i);
        std::string_view key = c.str(what.c_str());
        if (key.empty()) fail(GPTNEOX_STATUS_FORMAT, "%s: key-value pair #%" PRIu64 " has an empty key", p, i);
        gguf_kv kv;
        kv.key.assign(key);
        const char *k = kv.key.c_str();
        if (kv_index_.count(kv.key)) fail(GPTNEOX_STATUS_FORMAT, "%s: duplicate key '%s'", p, k);
        what = format("the value of key '%s'", k);
        const char *w = what.c_str();
        uint32_t type = c.u32(w);
        if (!known_type(type)) fail(GPTNEOX_STATUS_FORMAT, "%s: key '%s' has unknown value type %u", p, k, type);
        gguf_value &v = kv.value;
        v.type = static_cast<gguf_type>(type);
        if (v.type == gguf_type::string) {
            v.str = c.str(w);
        } else if (v.type == gguf_type::array) {
            uint32_t et = c.u32(w);
            if (et == static_cast<uint32_t>(gguf_type::array)) {
                fail(GPTNEOX_STATUS_FORMAT, "%s: key '%s' is a nested array (arrays of arrays are not allowed)", p, k);
            }
            if (!known_type(et)) {
                fail(GPTNEOX_STATUS_FORMAT, "%s: key '%s' is an array of unknown element type %u", p, k, et);
            }
            uint64_t n = c.u64(w);
            size_t es = et == static_cast<uint32_t>(gguf_type::string) ? 8 : scalar_size(et);
            if (n > kMaxArrayCount || n > c.remaining() / es) {
                fail(GPTNEOX_STATUS_FORMAT,
                     "%s: key '%s': array count %" PRIu64 " of %s is larger than the %" PRIu64 " bytes left in the file",
                     p, k, n, gguf_type_name(static_cast<gguf_type>(et)), c.remaining());
            }
            v.elem_type = static_cast<gguf_type>(et);
            v.n_elems = n;
            v.elems = base_ + c.pos();
            if (v.elem_type == gguf_type::string) {
                for (uint64_t j = 0; j < n; ++j) c.str(w);
            } else {
                c.take(n * es, w);
            }
        } else {
            set_scalar(v, type, c.take(scalar_size(type), w));
        }
        kv_index_.emplace(kv.key, kvs_.size());
        kvs_.push_back(std::move(kv));
    }

    // Alignment.
    if (const gguf_kv *a = find("general.alignment")) {
        if (a->value.type != gguf_type::u32) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: general.alignment has type %s, expected UINT32", p,
                 gguf_type_name(a->value.type));
        }
        uint64_t al = a->value.num.u;
        if (al == 0 || (al & (al - 1)) != 0) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: general.alignment %" PRIu64 " is not a power of two", p, al);
        }
        alignment_ = static_cast<size_t>(al);
    }

    // Tensor infos.
    tensors_.reserve(static_cast<size_t>(n_tensors < 4096 ? n_tensors : 4096));
    for (uint64_t i = 0; i < n_tensors; ++i) {
        std::string what = format("the name of tensor #%" PRIu64, i);
        std::string_view name = c.str(what.c_str());
        gguf_tensor_info t;
        t.name.assign(name);
        const char *tn = t.name.c_str();
        if (name.empty()) fail(GPTNEOX_STATUS_FORMAT, "%s: tensor #%" PRIu64 " has an empty name", p, i);
        if (name.size() >= kMaxName || std::memchr(name.data(), 0, name.size())) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: tensor name '%.*s...' is %zu bytes long (at most %zu allowed)", p, 32,
                 name.data(), name.size(), kMaxName - 1);
        }
        if (tensor_index_.count(t.name)) fail(GPTNEOX_STATUS_FORMAT, "%s: duplicate tensor name '%s'", p, tn);
        what = format("the info of tensor '%s'", tn);
        const char *w = what.c_str();
        t.n_dims = c.u32(w);
        if (t.n_dims > kMaxDims) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: tensor '%s' has %u dimensions (at most %u allowed)", p, tn, t.n_dims,
                 kMaxDims);
        }
        for (uint32_t j = 0; j < t.n_dims; ++j) {
            uint64_t ne = c.u64(w);
            if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                fail(GPTNEOX_STATUS_FORMAT, "%s: tensor '%s' has a negative dimension ne[%u] = %" PRId64, p, tn, j,
                     static_cast<int64_t>(ne));
            }
            t.ne[j] = static_cast<int64_t>(ne);
        }
        int64_t n_elems = 1;
        for (uint32_t j = 0; j < kMaxDims; ++j) {
            if (__builtin_mul_overflow(n_elems, t.ne[j], &n_elems)) {
                fail(GPTNEOX_STATUS_FORMAT, "%s: tensor '%s' shape %s has too many elements (overflow)", p, tn,
                     shape_text(t).c_str());
            }
        }
        t.type = c.u32(w);
        ggml_type_size ti = ggml_type_info(t.type);
        if (ti.blck == 0) fail(GPTNEOX_STATUS_FORMAT, "%s: tensor '%s' has unknown type id %u", p, tn, t.type);
        if (t.ne[0] % ti.blck != 0) {
            fail(GPTNEOX_STATUS_FORMAT,
                 "%s: tensor '%s' of type %s: ne[0] = %" PRId64 " is not a multiple of the block size %" PRId64, p, tn,
                 ti.name, t.ne[0], ti.blck);
        }
        uint64_t nb = static_cast<uint64_t>(t.ne[0] / ti.blck) * ti.type_size;
        for (uint32_t j = 1; j < kMaxDims; ++j) {
            if (__builtin_mul_overflow(nb, static_cast<uint64_t>(t.ne[j]), &nb)) {
                fail(GPTNEOX_STATUS_FORMAT, "%s: tensor '%s' byte size overflows", p, tn);
            }
        }
        t.n_bytes = nb;
        t.offset = c.u64(w);
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    // Data section: starts at the next multiple of the alignment; tensors laid out in order, each padded.
    uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
    uint64_t expected = 0;
    for (gguf_tensor_info &t : tensors_) {
        const char *tn = t.name.c_str();
        uint64_t start = 0, end = 0;
        if (__builtin_add_overflow(data_start, t.offset, &start) || __builtin_add_overflow(start, t.n_bytes, &end)) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: tensor '%s' data offset %" PRIu64 " is out of range", p, tn, t.offset);
        }
        if (end > size_) {
            fail(GPTNEOX_STATUS_FORMAT,
                 "%s: tensor '%s' data (file offset %" PRIu64 ", %" PRIu64 " bytes) runs past the end of the file (%" PRIu64
                 " bytes)",
                 p, tn, start, t.n_bytes, size_);
        }
        if (t.offset != expected) {
            fail(GPTNEOX_STATUS_FORMAT,
                 "%s: tensor '%s' has data offset %" PRIu64 ", expected %" PRIu64
                 " (tensor data must be sequential and aligned to %zu bytes)",
                 p, tn, t.offset, expected, alignment_);
        }
        uint64_t padded = (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
        if (__builtin_add_overflow(expected, padded, &expected)) {
            fail(GPTNEOX_STATUS_FORMAT, "%s: tensor data offsets overflow", p);
        }
        t.data = base_ + data_start + t.offset;
    }
}

// ---------------------------------------------------------------------------------------------------
// Lookups

const gguf_kv *gguf_file::find(const std::string &key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const gguf_tensor_info *gguf_file::find_tensor(const std::string &name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
const gguf_value *typed(const gguf_file &f, const std::string &key, gguf_type want, bool required) {
    const gguf_kv *kv = f.find(key);
    if (!kv) {
        if (required) fail(GPTNEOX_STATUS_FORMAT, "%s: missing key '%s'", f.path().c_str(), key.c_str());
        return nullptr;
    }
    if (kv->value.overridden && want == gguf_type::u32 && kv->value.type == gguf_type::i64) {
        // An override of a key absent from the file is INT64: accept it when in range (num.u aliases num.i).
        if (kv->value.num.i < 0 || kv->value.num.i > static_cast<int64_t>(UINT32_MAX)) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "kv_override '%s' = %" PRId64 " is out of range for UINT32",
                 key.c_str(), kv->value.num.i);
        }
        return &kv->value;
    }
    if (kv->value.overridden && want == gguf_type::f32 && kv->value.type == gguf_type::f64) return &kv->value;
    if (kv->value.type != want) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: key '%s' has type %s, expected %s", f.path().c_str(), key.c_str(),
             gguf_type_name(kv->value.type), gguf_type_name(want));
    }
    return &kv->value;
}

const gguf_value *typed_array(const gguf_file &f, const std::string &key, gguf_type elem) {
    const gguf_value *v = typed(f, key, gguf_type::array, true);
    if (v->elem_type != elem) {
        fail(GPTNEOX_STATUS_FORMAT, "%s: key '%s' is an array of %s, expected an array of %s", f.path().c_str(),
             key.c_str(), gguf_type_name(v->elem_type), gguf_type_name(elem));
    }
    return v;
}
} // namespace

uint32_t gguf_file::get_u32(const std::string &key) const {
    return static_cast<uint32_t>(typed(*this, key, gguf_type::u32, true)->num.u);
}
uint32_t gguf_file::get_u32_or(const std::string &key, uint32_t def) const {
    const gguf_value *v = typed(*this, key, gguf_type::u32, false);
    return v ? static_cast<uint32_t>(v->num.u) : def;
}
float gguf_file::get_f32(const std::string &key) const {
    return static_cast<float>(typed(*this, key, gguf_type::f32, true)->num.f);
}
float gguf_file::get_f32_or(const std::string &key, float def) const {
    const gguf_value *v = typed(*this, key, gguf_type::f32, false);
    return v ? static_cast<float>(v->num.f) : def;
}
bool gguf_file::get_bool(const std::string &key) const { return typed(*this, key, gguf_type::boolean, true)->num.b; }
bool gguf_file::get_bool_or(const std::string &key, bool def) const {
    const gguf_value *v = typed(*this, key, gguf_type::boolean, false);
    return v ? v->num.b : def;
}
std::string gguf_file::get_str(const std::string &key) const {
    return std::string(typed(*this, key, gguf_type::string, true)->str);
}
std::string gguf_file::get_str_or(const std::string &key, const std::string &def) const {
    const gguf_value *v = typed(*this, key, gguf_type::string, false);
    return v ? std::string(v->str) : def;
}

std::vector<std::string_view> gguf_file::get_str_array(const std::string &key) const {
    const gguf_value *v = typed_array(*this, key, gguf_type::string);
    std::vector<std::string_view> out;
    out.reserve(static_cast<size_t>(v->n_elems));
    const uint8_t *q = v->elems; // validated by parse()
    for (uint64_t i = 0; i < v->n_elems; ++i) {
        uint64_t len = load<uint64_t>(q);
        out.emplace_back(reinterpret_cast<const char *>(q + 8), static_cast<size_t>(len));
        q += 8 + len;
    }
    return out;
}

std::vector<float> gguf_file::get_f32_array(const std::string &key) const {
    const gguf_value *v = typed_array(*this, key, gguf_type::f32);
    std::vector<float> out(static_cast<size_t>(v->n_elems));
    if (!out.empty()) std::memcpy(out.data(), v->elems, out.size() * sizeof(float));
    return out;
}

std::vector<int32_t> gguf_file::get_i32_array(const std::string &key) const {
    const gguf_value *v = typed_array(*this, key, gguf_type::i32);
    std::vector<int32_t> out(static_cast<size_t>(v->n_elems));
    if (!out.empty()) std::memcpy(out.data(), v->elems, out.size() * sizeof(int32_t));
    return out;
}

std::vector<uint8_t> gguf_file::get_u8_array(const std::string &key) const {
    const gguf_value *v = typed_array(*this, key, gguf_type::u8);
    return std::vector<uint8_t>(v->elems, v->elems + v->n_elems);
}

std::string gguf_file::value_to_string(const gguf_value &v) {
    switch (v.type) {
    case gguf_type::string: return std::string(v.str);
    case gguf_type::array: {
        std::string s = "[";
        const uint8_t *q = v.elems;
        uint64_t shown = v.n_elems < 8 ? v.n_elems : 8;
        for (uint64_t i = 0; i < shown; ++i) {
            if (i) s += ", ";
            if (v.elem_type == gguf_type::string) {
                uint64_t len = load<uint64_t>(q);
                s += '"';
                for (uint64_t j = 0; j < len; ++j) {
                    char ch = static_cast<char>(q[8 + j]);
                    if (ch == '"' || ch == '\\') s += '\\';
                    s += ch;
                }
                s += '"';
                q += 8 + len;
            } else {
                uint32_t et = static_cast<uint32_t>(v.elem_type);
                s += scalar_text(et, q);
                q += scalar_size(et);
            }
        }
        if (v.n_elems > shown) s += ", ...";
        return s + "]";
    }
    default: {
        uint8_t raw[8];
        switch (v.type) { // re-encode the widened value so scalar_text formats it by type
        case gguf_type::f32: {
            float f = static_cast<float>(v.num.f);
            std::memcpy(raw, &f, 4);
            break;
        }
        case gguf_type::f64: std::memcpy(raw, &v.num.f, 8); break;
        case gguf_type::boolean: raw[0] = v.num.b ? 1 : 0; break;
        case gguf_type::i8: case gguf_type::i16: case gguf_type::i32: case gguf_type::i64: {
            int64_t x = v.num.i;
            return std::to_string(x);
        }
        default: return std::to_string(v.num.u);
        }
        return scalar_text(static_cast<uint32_t>(v.type), raw);
    }
    }
}

} // namespace gptneox
