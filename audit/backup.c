/* audit/backup.c: online copies of the audit store (SQLite's backup API), safe beside a
 * running server. */
#include "audit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "schema.h"

pv_status audit_backup(const char *path, const char *out_path, bool is_force, struct pv_err *err)
{
    char tmp[4096];
    sqlite3 *src = NULL;
    sqlite3 *dst = NULL;
    sqlite3_backup *b;
    struct stat st;
    pv_status rc;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", out_path, (long)getpid());

    if (n < 0 || (size_t)n >= sizeof(tmp))
        return pv_err_set(err, PV_EINVAL, "%s: path too long", out_path);
    if (!is_force && stat(out_path, &st) == 0)
        return pv_err_set(err, PV_EINVAL, "%s exists; choose another file or pass --force",
                          out_path);
    rc = schema_open_ro(&src, path, err);
    if (rc)
        return rc;
    remove(tmp);
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = pv_err_set(err, PV_EIO, "%s: %s", out_path,
                        dst != NULL ? sqlite3_errmsg(dst) : "out of memory");
        goto done;
    }
    b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == NULL) {
        rc = pv_err_set(err, PV_EIO, "%s", sqlite3_errmsg(dst));
        goto done;
    }
    /* All pages in one step: one read transaction, hence one consistent snapshot. A
     * step-wise copy would restart each time the server commits. */
    n = sqlite3_backup_step(b, -1);
    if (sqlite3_backup_finish(b) != SQLITE_OK || n != SQLITE_DONE) {
        rc = pv_err_set(err, PV_EIO, "copying %s: %s", path, sqlite3_errmsg(dst));
        goto done;
    }
    /* A standalone file: no -wal beside it to forget when it is moved. */
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = pv_err_set(err, PV_EIO, "%s: %s", out_path, sqlite3_errmsg(dst));
        goto done;
    }
done:
    sqlite3_close(src);
    if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && rc == PV_OK)
        rc = pv_err_set(err, PV_EIO, "cannot close %s", tmp);
    if (rc == PV_OK && rename(tmp, out_path) != 0)
        rc = pv_err_set(err, PV_EIO, "%s: %s", out_path, strerror(errno));
    if (rc)
        remove(tmp);
    return rc;
}
