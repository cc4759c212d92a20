#include "status.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <vector>

namespace gptneox {

namespace {
thread_local gptneox_status t_status = GPTNEOX_STATUS_OK;
thread_local std::string t_message;

// The log sink is the one process-wide setting (as llama_log_set is in llama.h).
std::mutex g_log_mutex;
gptneox_log_callback g_log_callback = nullptr;
void *g_log_user_data = nullptr;
// Messages quote names read from files (keys, tensor names), which may hold any bytes; the callers
// (Python decoding with utf-8, terminals) need valid UTF-8, so bytes that do not form a valid UTF-8
// sequence are written as \xNN.
std::string valid_utf8(const std::string &in) {
    std::string out;
    out.reserve(in.size());
    const auto *p = reinterpret_cast<const unsigned char *>(in.data());
    size_t n = in.size(), i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) { // reject overlong forms, surrogates and code points past U+10FFFF
            uint32_t cp = c & (0x7F >> len);
            for (size_t k = 1; k < len; k++) cp = (cp << 6) | (p[i + k] & 0x3F);
            static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min_cp[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok) {
            out.append(in, i, len);
            i += len;
        } else {
            char esc[5];
            std::snprintf(esc, sizeof esc, "\\x%02X", c);
            out += esc;
            i += 1;
        }
    }
    return out;
}
} // namespace

std::string vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return fmt;
    std::string s(static_cast<size_t>(n), '\0');
    std::vsnprintf(s.data(), s.size() + 1, fmt, ap);
    return s;
}

std::string format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

void fail(gptneox_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vformat(fmt, ap);
    va_end(ap);
    throw error(status, s);
}

void set_last_error(gptneox_status status, const std::string &message) {
    t_status = status;
    t_message = valid_utf8(message);
    log(GPTNEOX_LOG_LEVEL_ERROR, "%s\n", t_message.c_str());
}

void clear_last_error() {
    t_status = GPTNEOX_STATUS_OK;
    t_message.clear();
}

void log(gptneox_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = valid_utf8(vformat(fmt, ap));
    va_end(ap);
    std::lock_guard<std::mutex> lock(g_log_mutex);
    if (g_log_callback) {
        g_log_callback(level, s.c_str(), g_log_user_data);
    } else {
        std::fputs(s.c_str(), stderr);
    }
}

} // namespace gptneox

extern "C" {

const char *gptneox_last_error(void) { return gptneox::t_message.c_str(); }
int32_t gptneox_last_status(void) { return gptneox::t_status; }
void gptneox_clear_error(void) { gptneox::clear_last_error(); }

void gptneox_log_set(gptneox_log_callback callback, void *user_data) {
    std::lock_guard<std::mutex> lock(gptneox::g_log_mutex);
    gptneox::g_log_callback = callback;
    gptneox::g_log_user_data = user_data;
}

} // extern "C"
