/*
 * hot_ensure: one `ensure` through the C ABI from a fresh process
 * (spfs-autostart-bench row 1c).
 *
 *   hot_ensure CONFIG_PATH                  new + ensure + free, exit 0 on success
 *   hot_ensure CONFIG_PATH --startup-only   exit at once (the process's own
 *                                           start-up cost, library loaded)
 *
 * Written against include/spfs_autostart.h (docs/DESIGN.md section 10,
 * rustls-ffi conventions). The harness compiles it with
 *   cc -O2 -o hot_ensure hot_ensure.c -I<dir of spfs_autostart.h> \
 *      -Ltarget/release -lspfs_autostart -Wl,-rpath,target/release
 * and reports "not measured" when it does not compile (the header changed
 * under it: mend the names below).
 */
#include <stdio.h>
#include <string.h>

#include "spfs_autostart.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: hot_ensure CONFIG_PATH [--startup-only]\n");
        return 2;
    }
    if (argc > 2 && strcmp(argv[2], "--startup-only") == 0) {
        return 0;
    }
    struct spfs_autostart *manager = NULL;
    struct spfs_autostart_error *error = NULL;
    if (spfs_autostart_new(argv[1], &manager, &error) != SPFS_AUTOSTART_RESULT_OK) {
        fprintf(stderr, "spfs_autostart_new failed\n");
        spfs_autostart_error_free(error);
        return 1;
    }
    struct spfs_autostart_status *status = NULL;
    int rc = 0;
    if (spfs_autostart_ensure(manager, &status, &error) != SPFS_AUTOSTART_RESULT_OK) {
        fprintf(stderr, "spfs_autostart_ensure failed\n");
        spfs_autostart_error_free(error);
        rc = 1;
    } else {
        spfs_autostart_status_free(status);
    }
    spfs_autostart_free(manager);
    return rc;
}
