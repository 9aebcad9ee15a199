/* server/base/log.c: structured log lines on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level threshold = LOG_WARN;
static bool text_format;

void log_init(enum log_level level, bool is_text)
{
    threshold = level;
    text_format = is_text;
}

bool log_enabled(enum log_level level)
{
    return level <= threshold;
}

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_ERROR:
        return "error";
    case LOG_WARN:
        return "warn";
    case LOG_INFO:
        return "info";
    case LOG_DEBUG:
        return "debug";
    }
    return "?";
}

/* Appends 's' JSON-escaped to 'out' (capacity 'cap', current length *len). */
static void append_escaped(char *out, size_t cap, size_t *len, const char *s)
{
    for (; *s != '\0' && *len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[(*len)++] = '\\';
            out[(*len)++] = (char)c;
        } else if (c < 0x20) {
            *len += (size_t)snprintf(out + *len, cap - *len, "\\u%04x", c);
        } else {
            out[(*len)++] = (char)c;
        }
    }
}

void log_msg(enum log_level level, const char *comp, const char *fmt, ...)
{
    char msg[1024];
    char line[2400];
    size_t len = 0;
    struct timespec ts;
    struct tm tm;
    char when[32];
    va_list ap;
    int n;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    if (text_format) {
        n = snprintf(line, sizeof(line), "%s.%03ldZ level=%s comp=%s %s\n", when,
                     ts.tv_nsec / 1000000, level_name(level), comp, msg);
        len = n < 0 ? 0 : ((size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    } else {
        n = snprintf(line, sizeof(line), "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"comp\":\"", when,
                     ts.tv_nsec / 1000000, level_name(level));
        len = n < 0 ? 0 : (size_t)n;
        append_escaped(line, sizeof(line) - 16, &len, comp);
        memcpy(line + len, "\",\"msg\":\"", 9);
        len += 9;
        append_escaped(line, sizeof(line) - 16, &len, msg);
        memcpy(line + len, "\"}\n", 3);
        len += 3;
    }
    if (write(STDERR_FILENO, line, len) < 0)
        return;
}
