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
    t_message = message;
    log(GPTNEOX_LOG_LEVEL_ERROR, "%s\n", message.c_str());
}

void clear_last_error() {
    t_status = GPTNEOX_STATUS_OK;
    t_message.clear();
}

void log(gptneox_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vformat(fmt, ap);
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
