// GGUF reader tests: a tiny in-test writer builds files byte by byte (layout of gguf.md §2-§5), then
// a valid file must parse with the values written, and each corruption must fail with gptneox::error of
// the right status and a message naming the problem. Plain main(); prints "N passed, M failed".
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "common/status.h"
#include "gguf/gguf.h"

using namespace gptneox;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const std::string &what) {
    if (ok) {
        ++g_pass;
    } else {
        ++g_fail;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

// ---- byte writer -------------------------------------------------------------------------------------

struct bytes {
    std::vector<uint8_t> b;
    void raw(const void *p, size_t n) { b.insert(b.end(), (const uint8_t *)p, (const uint8_t *)p + n); }
    void u8(uint8_t v) { raw(&v, 1); }
    void u32(uint32_t v) { raw(&v, 4); }
    void u64(uint64_t v) { raw(&v, 8); }
    void f32(float v) { raw(&v, 4); }
    void str(const std::string &s) { u64(s.size()); raw(s.data(), s.size()); }
    void pad(size_t a) { while (b.size() % a) u8(0); }
};

struct kv_spec {
    std::string key;
    uint32_t type;
    std::vector<uint8_t> val; // encoded value (for arrays: elem type, count, elements)
};

struct tensor_spec {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type = 0;
    uint64_t nbytes = 0;       // data size written
    int64_t offset = -1;       // -1: the correct running offset
    int32_t n_dims = -1;       // -1: ne.size()
};

struct file_spec {
    char magic[4] = {'G', 'G', 'U', 'F'};
    uint32_t version = 3;
    std::vector<kv_spec> kvs;
    std::vector<tensor_spec> tensors;
    uint64_t align = 32;
    int64_t tensor_count = -1, kv_count = -1; // -1: the real counts
};

bytes enc_u32(uint32_t v) { bytes b; b.u32(v); return b; }
bytes enc_str(const std::string &s) { bytes b; b.str(s); return b; }

kv_spec kv_u32(const std::string &k, uint32_t v) { return {k, 4, enc_u32(v).b}; }
kv_spec kv_str(const std::string &k, const std::string &v) { return {k, 8, enc_str(v).b}; }
kv_spec kv_f32(const std::string &k, float v) { bytes b; b.f32(v); return {k, 6, b.b}; }
kv_spec kv_bool(const std::string &k, bool v) { bytes b; b.u8(v); return {k, 7, b.b}; }
kv_spec kv_str_arr(const std::string &k, const std::vector<std::string> &v) {
    bytes b;
    b.u32(8);
    b.u64(v.size());
    for (auto &s : v) b.str(s);
    return {k, 9, b.b};
}
kv_spec kv_i32_arr(const std::string &k, const std::vector<int32_t> &v) {
    bytes b;
    b.u32(5);
    b.u64(v.size());
    for (int32_t x : v) b.raw(&x, 4);
    return {k, 9, b.b};
}

std::vector<uint8_t> serialize(const file_spec &s) {
    bytes b;
    b.raw(s.magic, 4);
    b.u32(s.version);
    b.u64(s.tensor_count >= 0 ? (uint64_t)s.tensor_count : s.tensors.size());
    b.u64(s.kv_count >= 0 ? (uint64_t)s.kv_count : s.kvs.size());
    for (auto &kv : s.kvs) {
        b.str(kv.key);
        b.u32(kv.type);
        b.raw(kv.val.data(), kv.val.size());
    }
    uint64_t off = 0;
    for (auto &t : s.tensors) {
        b.str(t.name);
        b.u32(t.n_dims >= 0 ? (uint32_t)t.n_dims : (uint32_t)t.ne.size());
        for (uint64_t x : t.ne) b.u64(x);
        b.u32(t.type);
        b.u64(t.offset != -1 ? (uint64_t)t.offset : off);
        off += (t.nbytes + s.align - 1) / s.align * s.align;
    }
    if (!s.tensors.empty()) b.pad(s.align);
    for (auto &t : s.tensors) {
        for (uint64_t i = 0; i < t.nbytes; ++i) b.u8((uint8_t)(i * 7 + 1));
        b.pad(s.align);
    }
    return b.b;
}

// The valid test file: several value types, two tensors (as in gguf.md §12 plus extras).
file_spec valid_spec() {
    file_spec s;
    s.kvs.push_back(kv_str("general.architecture", "gptneox"));
    s.kvs.push_back(kv_u32("gptneox.context_length", 2048));
    s.kvs.push_back(kv_bool("gptneox.use_parallel_residual", true));
    s.kvs.push_back(kv_f32("gptneox.attention.layer_norm_epsilon", 1e-5f));
    s.kvs.push_back(kv_str_arr("tokenizer.ggml.tokens", {"a", "bc", ""}));
    s.kvs.push_back(kv_i32_arr("tokenizer.ggml.token_type", {1, -3, 6}));
    tensor_spec x{"x", {3, 2}, 0, 24};
    tensor_spec y{"y", {5}, 1, 10};
    tensor_spec q{"blk.0.attn_qkv.weight", {64, 2}, 8, 2 * 2 * 34};
    s.tensors = {x, y, q};
    return s;
}

std::string g_tmp;

void write_file(const std::vector<uint8_t> &b) {
    unlink(g_tmp.c_str()); // a fresh file: rewriting a truncated one makes ext4 flush on close (slow)
    FILE *f = std::fopen(g_tmp.c_str(), "wb");
    if (!f) { std::perror("fopen"); _exit(2); }
    if (!b.empty()) std::fwrite(b.data(), 1, b.size(), f);
    std::fclose(f);
}

// Parse `b`; returns "" on success, else the status and message as "<status>|<message>".
struct outcome {
    bool ok = false;
    gptneox_status status = GPTNEOX_STATUS_OK;
    std::string msg;
};
outcome parse(const std::vector<uint8_t> &b, bool use_mmap = true) {
    write_file(b);
    outcome o;
    try {
        auto f = gguf_file::open(g_tmp, use_mmap);
        o.ok = true;
    } catch (const error &e) {
        o.status = e.status();
        o.msg = e.what();
    }
    return o;
}

void expect_fail(const std::string &name, const std::vector<uint8_t> &b, gptneox_status st, const std::string &phrase) {
    outcome o = parse(b);
    bool ok = !o.ok && o.status == st && o.msg.find(phrase) != std::string::npos && o.msg.find(g_tmp) == 0;
    check(ok, name + ": expected status " + std::to_string(st) + " and '" + phrase + "', got " +
                  (o.ok ? "success" : std::to_string(o.status) + " '" + o.msg + "'"));
}

void expect_fail(const std::string &name, const file_spec &s, gptneox_status st, const std::string &phrase) {
    expect_fail(name, serialize(s), st, phrase);
}

// ---- tests -------------------------------------------------------------------------------------------

void test_valid(bool use_mmap) {
    const std::string tag = use_mmap ? "valid(mmap): " : "valid(read): ";
    file_spec s = valid_spec();
    std::vector<uint8_t> b = serialize(s);
    write_file(b);
    try {
        auto f = gguf_file::open(g_tmp, use_mmap);
        check(f->version() == 3, tag + "version");
        check(f->file_size() == b.size(), tag + "file size");
        check(f->alignment() == 32, tag + "alignment");
        check(f->kvs().size() == 6, tag + "kv count");
        check(f->get_str("general.architecture") == "gptneox", tag + "arch");
        check(f->get_u32("gptneox.context_length") == 2048, tag + "u32");
        check(f->get_u32_or("missing.key", 7) == 7, tag + "u32 default");
        check(f->get_bool("gptneox.use_parallel_residual") == true, tag + "bool");
        check(f->get_f32("gptneox.attention.layer_norm_epsilon") == 1e-5f, tag + "f32");
        auto toks = f->get_str_array("tokenizer.ggml.tokens");
        check(toks.size() == 3 && toks[0] == "a" && toks[1] == "bc" && toks[2].empty(), tag + "string array");
        auto tt = f->get_i32_array("tokenizer.ggml.token_type");
        check(tt.size() == 3 && tt[0] == 1 && tt[1] == -3 && tt[2] == 6, tag + "i32 array");
        check(gguf_file::value_to_string(f->find("tokenizer.ggml.tokens")->value) == "[\"a\", \"bc\", \"\"]",
              tag + "array text");
        check(gguf_file::value_to_string(f->find("gptneox.attention.layer_norm_epsilon")->value) == "1e-05",
              tag + "float text");
        check(gguf_file::value_to_string(f->find("gptneox.use_parallel_residual")->value) == "true", tag + "bool text");
        check(f->tensors().size() == 3, tag + "tensor count");
        const gguf_tensor_info *x = f->find_tensor("x"), *y = f->find_tensor("y"),
                               *q = f->find_tensor("blk.0.attn_qkv.weight");
        check(x && y && q && !f->find_tensor("z"), tag + "find_tensor");
        if (x && y && q) {
            check(x->n_dims == 2 && x->ne[0] == 3 && x->ne[1] == 2 && x->ne[2] == 1 && x->type == 0, tag + "x info");
            check(x->n_bytes == 24 && y->n_bytes == 10 && q->n_bytes == 136, tag + "n_bytes");
            check(x->offset == 0 && y->offset == 32 && q->offset == 64, tag + "offsets");
            check(y->data - x->data == 32 && q->data - x->data == 64, tag + "data pointers");
            check((size_t)(x->data - f->tensors()[0].data) == 0 && x->data[0] == 1 && x->data[1] == 8 &&
                      y->data[9] == (uint8_t)(9 * 7 + 1),
                  tag + "data bytes");
            // data section = the last 32 + 32 + 160 bytes of the file (x, y, q padded to 32)
            const size_t ds = b.size() - 224;
            check(std::memcmp(x->data, &b[ds], 24) == 0 && std::memcmp(y->data, &b[ds + 32], 10) == 0 &&
                      std::memcmp(q->data, &b[ds + 64], 136) == 0,
                  tag + "data points at the right bytes");
        }
        // typed getters are strict
        try {
            f->get_u32("gptneox.attention.layer_norm_epsilon");
            check(false, tag + "typed getter mismatch");
        } catch (const error &e) {
            check(e.status() == GPTNEOX_STATUS_FORMAT && std::string(e.what()).find("has type FLOAT32, expected UINT32") !=
                                                             std::string::npos,
                  tag + "typed getter mismatch message: " + e.what());
        }
        try {
            f->get_str("general.name");
            check(false, tag + "missing key");
        } catch (const error &e) {
            check(std::string(e.what()).find("missing key 'general.name'") != std::string::npos,
                  tag + "missing key message");
        }
    } catch (const error &e) {
        check(false, tag + "valid file failed: " + e.what());
    }
}

// gguf.md §12 worked example: 5 KVs, x F32 (2,3), y F16 (5): data at 0x160, file size 416.
void test_worked_example() {
    file_spec s;
    s.kvs = {kv_str("general.architecture", "gptneox"), kv_u32("gptneox.context_length", 2048),
             kv_bool("gptneox.use_parallel_residual", false), kv_f32("gptneox.attention.layer_norm_epsilon", 1e-5f),
             kv_str_arr("tokenizer.ggml.tokens", {"a", "bc"})};
    s.tensors = {tensor_spec{"x", {3, 2}, 0, 24}, tensor_spec{"y", {5}, 1, 10}};
    auto b = serialize(s);
    check(b.size() == 416, "worked example size " + std::to_string(b.size()));
    write_file(b);
    try {
        auto f = gguf_file::open(g_tmp);
        const uint8_t *base = f->find_tensor("x")->data - 0x160;
        check(f->find_tensor("y")->data - base == 0x180, "worked example y at 0x180");
        check(f->get_bool("gptneox.use_parallel_residual") == false, "worked example bool");
    } catch (const error &e) {
        check(false, std::string("worked example: ") + e.what());
    }
}

void put_u32(std::vector<uint8_t> &b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); }
void put_u64(std::vector<uint8_t> &b, size_t at, uint64_t v) { std::memcpy(&b[at], &v, 8); }

void test_header() {
    std::vector<uint8_t> good = serialize(valid_spec());
    file_spec s = valid_spec();
    std::memcpy(s.magic, "GGUX", 4);
    expect_fail("bad magic", s, GPTNEOX_STATUS_FORMAT, "bad magic");
    s = valid_spec();
    s.version = 1;
    expect_fail("version 1", s, GPTNEOX_STATUS_UNSUPPORTED, "version 1");
    s.version = 4;
    expect_fail("version 4", s, GPTNEOX_STATUS_UNSUPPORTED, "version 4");
    s.version = 0;
    expect_fail("version 0", s, GPTNEOX_STATUS_FORMAT, "version 0");
    s.version = 2;
    check(parse(serialize(s)).ok, "version 2 accepted");
    s.version = 0x03000000; // version 3 written big-endian
    expect_fail("big-endian version", s, GPTNEOX_STATUS_UNSUPPORTED, "big-endian");
    expect_fail("truncated header (6 bytes)", std::vector<uint8_t>(good.begin(), good.begin() + 6),
                GPTNEOX_STATUS_FORMAT, "truncated");
    expect_fail("truncated header (20 bytes)", std::vector<uint8_t>(good.begin(), good.begin() + 20),
                GPTNEOX_STATUS_FORMAT, "truncated");
    expect_fail("empty file", std::vector<uint8_t>(), GPTNEOX_STATUS_FORMAT, "truncated");
    s = valid_spec();
    s.tensor_count = (int64_t)1 << 40;
    expect_fail("huge tensor count", s, GPTNEOX_STATUS_FORMAT, "tensor count");
    s = valid_spec();
    s.tensor_count = -1;
    auto b = serialize(s);
    put_u64(b, 8, ~0ull);
    expect_fail("negative tensor count", b, GPTNEOX_STATUS_FORMAT, "tensor count");
    s = valid_spec();
    s.kv_count = (int64_t)1 << 50;
    expect_fail("huge kv count", s, GPTNEOX_STATUS_FORMAT, "key-value count");
    s = valid_spec();
    s.kv_count = 7; // one more than written: the 7th key is read from the tensor infos
    outcome o = parse(serialize(s));
    check(!o.ok && o.status == GPTNEOX_STATUS_FORMAT, "kv count one too many: " + o.msg);
    try {
        gguf_file::open("/nonexistent/dir/model.gguf");
        check(false, "open missing file");
    } catch (const error &e) {
        check(e.status() == GPTNEOX_STATUS_IO && std::string(e.what()).find("/nonexistent/dir/model.gguf: cannot open") == 0,
              std::string("open missing file: ") + e.what());
    }
}

void test_kvs() {
    file_spec s = valid_spec();
    auto b = serialize(s);
    // Cut inside the value of the 4th key: header 24, then key+type+value of the first three keys.
    size_t kv3_value = 24 + (8 + 20 + 4 + 8 + 7) + (8 + 22 + 4 + 4) + (8 + 29 + 4 + 1) + (8 + 36 + 4);
    expect_fail("truncated in a KV", std::vector<uint8_t>(b.begin(), b.begin() + kv3_value + 2), GPTNEOX_STATUS_FORMAT,
                "truncated: the value of key 'gptneox.attention.layer_norm_epsilon' needs 4 bytes at offset 199");

    s = valid_spec();
    b = serialize(s);
    put_u64(b, 24, 1ull << 40); // length of the first key
    expect_fail("huge string length", b, GPTNEOX_STATUS_FORMAT, "string length 1099511627776");

    s = valid_spec();
    put_u64(s.kvs[0].val, 0, 5000); // the value string of general.architecture: 5000 bytes that are not there
    expect_fail("value string length past the end", s, GPTNEOX_STATUS_FORMAT, "string length 5000");

    s = valid_spec();
    put_u64(s.kvs[4].val, 4, 1ull << 40);
    expect_fail("huge array count", s, GPTNEOX_STATUS_FORMAT, "array count 1099511627776");
    s = valid_spec();
    put_u64(s.kvs[5].val, 4, 1000000); // i32 array: 4 MB of data that is not there
    expect_fail("array count past the end", s, GPTNEOX_STATUS_FORMAT, "array count 1000000");

    s = valid_spec();
    s.kvs[1].type = 13;
    expect_fail("unknown value type", s, GPTNEOX_STATUS_FORMAT, "unknown value type 13");
    s = valid_spec();
    put_u32(s.kvs[5].val, 0, 9);
    expect_fail("nested array", s, GPTNEOX_STATUS_FORMAT, "nested array");
    s = valid_spec();
    put_u32(s.kvs[5].val, 0, 77);
    expect_fail("unknown array element type", s, GPTNEOX_STATUS_FORMAT, "unknown element type 77");
    s = valid_spec();
    s.kvs.push_back(kv_u32("gptneox.context_length", 4096));
    expect_fail("duplicate key", s, GPTNEOX_STATUS_FORMAT, "duplicate key 'gptneox.context_length'");
    s = valid_spec();
    s.kvs.push_back(kv_u32("", 1));
    expect_fail("empty key", s, GPTNEOX_STATUS_FORMAT, "empty key");

    s = valid_spec();
    s.kvs.push_back(kv_u32("general.alignment", 48));
    s.align = 48;
    expect_fail("alignment 48", s, GPTNEOX_STATUS_FORMAT, "not a power of two");
    s.kvs.back() = kv_u32("general.alignment", 0);
    expect_fail("alignment 0", s, GPTNEOX_STATUS_FORMAT, "not a power of two");
    s = valid_spec();
    s.kvs.push_back({"general.alignment", 10, std::vector<uint8_t>(8, 0)});
    s.kvs.back().val[0] = 64;
    s.align = 64;
    expect_fail("alignment as UINT64", s, GPTNEOX_STATUS_FORMAT, "general.alignment has type UINT64, expected UINT32");
    s = valid_spec();
    s.kvs.push_back(kv_u32("general.alignment", 64));
    s.align = 64;
    outcome o = parse(serialize(s));
    check(o.ok, "alignment 64 accepted: " + o.msg);
    s.align = 32; // written with 32 but declared 64: offsets no longer match
    o = parse(serialize(s));
    check(!o.ok && o.status == GPTNEOX_STATUS_FORMAT, "alignment 64 with data laid out at 32: " + o.msg);
}

void test_tensors() {
    file_spec s = valid_spec();
    s.tensors[1].ne = {5, 1, 1, 1, 1};
    expect_fail("n_dims 5", s, GPTNEOX_STATUS_FORMAT, "has 5 dimensions");
    s = valid_spec();
    s.tensors[1].ne = {(uint64_t)-5};
    expect_fail("negative ne", s, GPTNEOX_STATUS_FORMAT, "negative dimension");
    s = valid_spec();
    s.tensors[0].ne = {1ull << 40, 1ull << 40};
    expect_fail("ne product overflow", s, GPTNEOX_STATUS_FORMAT, "overflow");

    s = valid_spec();
    s.tensors[1].offset = 1 << 20;
    const size_t data_start = serialize(valid_spec()).size() - 224; // x, y, q padded: 32 + 32 + 160
    expect_fail("offset past end", s, GPTNEOX_STATUS_FORMAT,
                "'y' data (file offset " + std::to_string(data_start + (1 << 20)) +
                    ", 10 bytes) runs past the end of the file (" + std::to_string(serialize(s).size()) + " bytes)");
    s.tensors[1].offset = (int64_t)(~0ull - 7);
    expect_fail("offset overflow", s, GPTNEOX_STATUS_FORMAT, "'y' data offset 18446744073709551608 is out of range");
    s = valid_spec();
    s.tensors[2].ne = {64, 200}; // data written is for 2 rows only
    expect_fail("tensor larger than the file", s, GPTNEOX_STATUS_FORMAT, "runs past the end of the file");
    auto b = serialize(valid_spec());
    expect_fail("file cut inside the data", std::vector<uint8_t>(b.begin(), b.end() - 40), GPTNEOX_STATUS_FORMAT,
                "'blk.0.attn_qkv.weight' data (file offset " + std::to_string(b.size() - 160) +
                    ", 136 bytes) runs past the end of the file");

    s = valid_spec();
    s.tensors[1].offset = 24; // right after x's 24 bytes, not aligned
    expect_fail("misaligned offset", s, GPTNEOX_STATUS_FORMAT, "'y' has data offset 24, expected 32");
    s = valid_spec();
    s.tensors[1].offset = 64; // gap
    s.tensors[2].offset = 32; // and reordered
    expect_fail("non-sequential offset", s, GPTNEOX_STATUS_FORMAT, "'y' has data offset 64, expected 32");
    s = valid_spec();
    s.tensors[2].offset = 0; // overlaps x
    expect_fail("overlapping offset", s, GPTNEOX_STATUS_FORMAT, "expected 64");

    s = valid_spec();
    s.tensors[1].type = 4; // removed Q4_2
    expect_fail("removed tensor type", s, GPTNEOX_STATUS_FORMAT, "unknown type id 4");
    s.tensors[1].type = 200;
    expect_fail("unknown tensor type", s, GPTNEOX_STATUS_FORMAT, "unknown type id 200");
    s = valid_spec();
    s.tensors[2].ne = {48, 2};
    expect_fail("ne[0] % blck", s, GPTNEOX_STATUS_FORMAT, "ne[0] = 48 is not a multiple of the block size 32");
    s = valid_spec();
    s.tensors[1].name = "x";
    expect_fail("duplicate tensor name", s, GPTNEOX_STATUS_FORMAT, "duplicate tensor name 'x'");
    s = valid_spec();
    s.tensors[1].name = std::string(64, 'n');
    expect_fail("tensor name of 64 bytes", s, GPTNEOX_STATUS_FORMAT, "is 64 bytes long");
    s.tensors[1].name = std::string(63, 'n');
    outcome o = parse(serialize(s));
    check(o.ok, "tensor name of 63 bytes accepted: " + o.msg);
    s = valid_spec();
    s.tensors[1].name = "";
    expect_fail("empty tensor name", s, GPTNEOX_STATUS_FORMAT, "empty name");

    // n_dims 0 is a scalar (1 element)
    s = valid_spec();
    s.tensors[1].ne = {};
    s.tensors[1].nbytes = 2;
    o = parse(serialize(s));
    check(o.ok, "0-d tensor accepted: " + o.msg);
}

// Every cut of the valid file fails cleanly until the last tensor's data is complete.
void test_all_cuts() {
    auto b = serialize(valid_spec());
    const size_t data_end = b.size() - (160 - 136); // the last tensor's 136 bytes are followed by 24 of padding
    int bad = 0;
    for (size_t cut = 0; cut < b.size(); ++cut) {
        outcome o = parse(std::vector<uint8_t>(b.begin(), b.begin() + cut));
        bool should_fail = cut < data_end;
        if (should_fail ? (o.ok || o.status != GPTNEOX_STATUS_FORMAT) : !o.ok) {
            if (bad++ < 5) std::printf("  cut %zu: %s\n", cut, o.ok ? "accepted" : o.msg.c_str());
        }
    }
    check(bad == 0, "every truncation point (" + std::to_string(bad) + " wrong)");
}

// Random byte corruption: must either parse or throw gptneox::error, never crash (run under ASan/UBSan).
void test_fuzz() {
    auto good = serialize(valid_spec());
    std::mt19937 rng(12345);
    int other = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        auto b = good;
        int n = 1 + (int)(rng() % 4);
        for (int k = 0; k < n; ++k) {
            size_t at = rng() % b.size();
            switch (rng() % 3) {
            case 0: b[at] = (uint8_t)rng(); break;
            case 1: b[at] ^= (uint8_t)(1u << (rng() % 8)); break;
            default: b[at] = 0xff; break;
            }
        }
        write_file(b);
        try {
            auto f = gguf_file::open(g_tmp, iter % 2 == 0);
            for (auto &kv : f->kvs()) gguf_file::value_to_string(kv.value);
        } catch (const error &) {
        } catch (...) {
            ++other;
        }
    }
    check(other == 0, "fuzz: only gptneox::error is thrown");
}

// The real llama.cpp vocab file (GGUF v3, 17 keys, no tensors), if the artifacts are present.
void test_real_file() {
    const char *path = "/work/shared/artifacts/tokenizers/gpt-neox-20b/ggml-vocab-gpt-neox.gguf";
    if (access(path, R_OK) != 0) {
        std::printf("skip: %s not found\n", path);
        return;
    }
    try {
        auto f = gguf_file::open(path);
        check(f->version() == 3 && f->kvs().size() == 17 && f->tensors().empty(), "real file header");
        check(f->get_str("general.architecture") == "gptneox", "real file arch");
        check(f->get_str_array("tokenizer.ggml.tokens").size() == 50432, "real file tokens");
        check(f->get_str_array("tokenizer.ggml.merges").size() == 50009, "real file merges");
        check(f->get_u32("gptneox.block_count") == 44, "real file block_count");
    } catch (const error &e) {
        check(false, std::string("real file: ") + e.what());
    }
}

void test_type_table() {
    check(std::string(ggml_type_info(12).name) == "Q4_K" && ggml_type_info(12).blck == 256 &&
              ggml_type_info(12).type_size == 144,
          "type table Q4_K");
    check(ggml_type_info(8).blck == 32 && ggml_type_info(8).type_size == 34, "type table Q8_0");
    check(ggml_type_info(30).blck == 1 && ggml_type_info(30).type_size == 2, "type table BF16");
    check(ggml_type_info(4).blck == 0 && ggml_type_info(33).blck == 0 && ggml_type_info(1000).blck == 0,
          "type table removed ids");
}

// ---- kv overrides ------------------------------------------------------------------------------------

gptneox_model_kv_override ov_entry(const char *key, int32_t tag) {
    gptneox_model_kv_override o;
    std::memset(&o, 0, sizeof o);
    std::snprintf(o.key, sizeof o.key, "%s", key);
    o.tag = tag;
    return o;
}

// Apply `ovs` (terminated here) to a fresh parse of valid_spec(); "" on success, else the message.
std::string apply(std::vector<gptneox_model_kv_override> ovs, std::unique_ptr<gguf_file> *out = nullptr) {
    ovs.push_back(ov_entry("", 0));
    write_file(serialize(valid_spec()));
    try {
        auto f = gguf_file::open(g_tmp, true);
        f->apply_overrides(ovs.data());
        if (out) *out = std::move(f);
        return "";
    } catch (const error &e) {
        check(e.status() == GPTNEOX_STATUS_INVALID_ARGUMENT, std::string("override error status: ") + e.what());
        return e.what();
    }
}

void test_overrides() {
    auto i = ov_entry("gptneox.context_length", GPTNEOX_KV_OVERRIDE_TYPE_INT);
    i.val_i64 = 4096;
    auto fl = ov_entry("gptneox.attention.layer_norm_epsilon", GPTNEOX_KV_OVERRIDE_TYPE_FLOAT);
    fl.val_f64 = 0.25;
    auto b = ov_entry("gptneox.use_parallel_residual", GPTNEOX_KV_OVERRIDE_TYPE_BOOL);
    b.val_bool = false;
    auto st = ov_entry("general.architecture", GPTNEOX_KV_OVERRIDE_TYPE_STR);
    std::memset(st.val_str, 'z', sizeof st.val_str); // 128 bytes, no NUL: all of them are the value
    auto ni = ov_entry("new.int", GPTNEOX_KV_OVERRIDE_TYPE_INT);
    ni.val_i64 = 7;
    auto nf = ov_entry("new.float", GPTNEOX_KV_OVERRIDE_TYPE_FLOAT);
    nf.val_f64 = 1.5;
    std::unique_ptr<gguf_file> f;
    std::string err = apply({i, fl, b, st, ni, nf}, &f);
    check(err.empty(), "overrides of matching types: " + err);
    if (f) {
        check(f->get_u32("gptneox.context_length") == 4096, "override u32");
        check(f->find("gptneox.context_length")->value.type == gguf_type::u32, "override keeps the file's type");
        check(f->get_f32("gptneox.attention.layer_norm_epsilon") == 0.25f, "override f32");
        check(!f->get_bool("gptneox.use_parallel_residual"), "override bool");
        check(f->get_str("general.architecture") == std::string(128, 'z'), "override str of 128 bytes");
        check(f->get_u32("new.int") == 7 && f->get_u32_or("new.int", 0) == 7, "added int read as u32");
        check(f->get_f32_or("new.float", 0.0f) == 1.5f, "added float read as f32");
        check(gguf_file::value_to_string(f->find("new.int")->value) == "7", "added int text");
        check(f->kvs().size() == valid_spec().kvs.size() + 2, "added keys are listed");
    }
    auto bad_bool = ov_entry("gptneox.use_parallel_residual", GPTNEOX_KV_OVERRIDE_TYPE_INT);
    err = apply({bad_bool});
    check(err.find("gptneox.use_parallel_residual") != std::string::npos && err.find("BOOL") != std::string::npos,
          "int for a BOOL key: " + err);
    auto bad_str = ov_entry("gptneox.attention.layer_norm_epsilon", GPTNEOX_KV_OVERRIDE_TYPE_STR);
    err = apply({bad_str});
    check(err.find("layer_norm_epsilon") != std::string::npos, "str for a FLOAT32 key: " + err);
    auto bad_arr = ov_entry("tokenizer.ggml.tokens", GPTNEOX_KV_OVERRIDE_TYPE_STR);
    err = apply({bad_arr});
    check(err.find("tokenizer.ggml.tokens") != std::string::npos, "str for an array key: " + err);
    auto neg = ov_entry("gptneox.context_length", GPTNEOX_KV_OVERRIDE_TYPE_INT);
    neg.val_i64 = -1;
    err = apply({neg});
    check(err.find("out of range") != std::string::npos, "negative for a UINT32 key: " + err);
    auto tag = ov_entry("x", 9);
    err = apply({tag});
    check(err.find("unknown type tag") != std::string::npos, "unknown tag: " + err);
    auto big = ov_entry("new.big", GPTNEOX_KV_OVERRIDE_TYPE_INT);
    big.val_i64 = int64_t(1) << 40;
    err = apply({big}, &f);
    check(err.empty(), "a big added int is accepted: " + err);
    if (f) {
        std::string msg;
        try {
            (void)f->get_u32("new.big");
        } catch (const error &e) {
            msg = e.what();
        }
        check(msg.find("new.big") != std::string::npos, "a big added int read as u32 fails: " + msg);
    }
    check(apply({}).empty(), "empty override list");
}

} // namespace

int main() {
    char tmpl[] = "/tmp/gguf_test_XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        std::perror("mkstemp");
        return 2;
    }
    close(fd);
    g_tmp = tmpl;
    g_tmp += ".gguf";
    unlink(tmpl);

    test_type_table();
    test_valid(true);
    test_valid(false);
    test_worked_example();
    test_header();
    test_kvs();
    test_tensors();
    test_all_cuts();
    test_fuzz();
    test_real_file();
    test_overrides();

    unlink(g_tmp.c_str());
    std::printf("gguf_test: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
