// Errors inside the engine: C++ code throws gptneox::error; the exported functions in src/api/ catch it,
// store the message as the calling thread's last error and return a status or NULL.
#pragma once

#include <cstdarg>
#include <stdexcept>
#include <string>

#include "gptneox.h"

namespace gptneox {

class error : public std::runtime_error {
public:
    error(gptneox_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    gptneox_status status() const { return status_; }

private:
    gptneox_status status_;
};

// printf-style formatting into a std::string.
std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vformat(const char *fmt, va_list ap);

// Throw gptneox::error(status, formatted message).
[[noreturn]] void fail(gptneox_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// The calling thread's last error (see gptneox_last_error).
void set_last_error(gptneox_status status, const std::string &message);
void clear_last_error();

// Log through the callback set with gptneox_log_set (stderr by default).
void log(gptneox_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Run `body` (returning T); on any exception record the last error and return `on_error`.
// Every exported function that can fail goes through this, so no exception crosses the C boundary.
template <typename T, typename F> T guard(T on_error, F &&body) noexcept {
    try {
        clear_last_error();
        return body();
    } catch (const error &e) {
        set_last_error(e.status(), e.what());
    } catch (const std::bad_alloc &) {
        set_last_error(GPTNEOX_STATUS_NO_MEMORY, "out of memory");
    } catch (const std::exception &e) {
        set_last_error(GPTNEOX_STATUS_INTERNAL, e.what());
    } catch (...) {
        set_last_error(GPTNEOX_STATUS_INTERNAL, "unknown exception");
    }
    return on_error;
}

} // namespace gptneox
