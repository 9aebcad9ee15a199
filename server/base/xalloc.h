/* server/base/xalloc.h: allocation that never returns NULL. On exhaustion it logs
 * and aborts: sizes from input are capped before allocating, so running out means
 * the machine is full, not that a client was hostile. */
#ifndef PV_XALLOC_H
#define PV_XALLOC_H

#include <stddef.h>

/* Each returns memory the caller frees with free(). */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);

#endif
