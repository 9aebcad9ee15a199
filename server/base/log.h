/* server/base/log.h: one line per event on stderr, as JSON (default) or key=value
 * text. Thread-safe: each line is written with a single write. */
#ifndef PV_LOG_H
#define PV_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN,
    LOG_INFO,
    LOG_DEBUG,
};

/* Sets the threshold (default LOG_WARN) and the format (default JSON). Call from
 * main() before threads start. */
void log_init(enum log_level level, bool is_text);

bool log_enabled(enum log_level level);

/* Writes one line: level, component 'comp' and the formatted message. */
void log_msg(enum log_level level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
