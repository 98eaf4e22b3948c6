/*
 * The C ABI against the reference service: ensure -> status -> tail_logs ->
 * stop, and the error paths (NULL arguments, a missing program, a service
 * that exits while starting, a missing config file, invalid TOML,
 * _free(NULL)). Run by scripts/test-ffi under
 * valgrind, linked once to the shared and once to the static library.
 *
 * usage: test_ffi REFERENCE_SERVICE_PATH SCRATCH_DIR
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */

#include <pthread.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spfs_autostart.h"

static int failures = 0;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                       \
            failures++;                                                     \
        }                                                                   \
    } while (0)

#define CHECK_CODE(got, want)                                               \
    do {                                                                    \
        int got_ = (int)(got), want_ = (int)(want);                         \
        if (got_ != want_) {                                                \
            fprintf(stderr, "%s:%d: %s gave %d, want %d\n", __FILE__,       \
                    __LINE__, #got, got_, want_);                           \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static const char *scratch;

/* Write a config file under the scratch dir; returns its path (static). */
static const char *write_config(const char *name, const char *fmt, ...) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    return path;
}

static void print_error(const char *what, const struct spfs_autostart_error *err) {
    fprintf(stderr, "%s: code %d: %s\n", what, (int)spfs_autostart_error_code(err),
            spfs_autostart_error_message(err));
    const struct spfs_autostart_string_array *tail = spfs_autostart_error_log_tail(err);
    for (size_t i = 0; i < spfs_autostart_string_array_len(tail); i++)
        fprintf(stderr, "  | %s\n", spfs_autostart_string_array_get(tail, i));
}

/* A manager for the config at `path`; NULL when it cannot be made (the
 * failure counted and its error printed). */
static struct spfs_autostart *new_manager(const char *path) {
    struct spfs_autostart *mgr = NULL;
    struct spfs_autostart_error *err = NULL;
    CHECK_CODE(spfs_autostart_new(path, &mgr, &err), SPFS_AUTOSTART_RESULT_OK);
    if (!mgr)
        print_error("new", err);
    spfs_autostart_error_free(err);
    return mgr;
}

static void test_version(void) {
    CHECK(strcmp(spfs_autostart_version(), SPFS_AUTOSTART_VERSION) == 0);
    char expect[64];
    snprintf(expect, sizeof expect, "%d.%d.%d", SPFS_AUTOSTART_VERSION_MAJOR,
             SPFS_AUTOSTART_VERSION_MINOR, SPFS_AUTOSTART_VERSION_PATCH);
    CHECK(strcmp(expect, SPFS_AUTOSTART_VERSION) == 0);
}

static void test_free_null(void) {
    spfs_autostart_free(NULL);
    spfs_autostart_status_free(NULL);
    spfs_autostart_error_free(NULL);
    spfs_autostart_string_array_free(NULL);
}

static void test_null_accessors(void) {
    CHECK(spfs_autostart_status_state(NULL) == SPFS_AUTOSTART_STATE_STOPPED);
    CHECK(spfs_autostart_status_pid(NULL) == 0);
    CHECK(spfs_autostart_status_version(NULL) == NULL);
    CHECK(spfs_autostart_status_endpoint(NULL) == NULL);
    CHECK(spfs_autostart_status_log_file(NULL) == NULL);
    CHECK(spfs_autostart_status_detail(NULL) == NULL);
    CHECK(spfs_autostart_status_uptime_secs(NULL) == -1);
    CHECK(spfs_autostart_status_idle_exit_in_secs(NULL) == -1);
    CHECK(spfs_autostart_status_idle_exit(NULL) == SPFS_AUTOSTART_IDLE_EXIT_UNKNOWN);
    CHECK(spfs_autostart_status_lease_count(NULL) == 0);
    CHECK(spfs_autostart_status_managed(NULL) == 0);
    CHECK(spfs_autostart_status_idle_timeout_secs(NULL) == -1);
    CHECK(spfs_autostart_status_warnings(NULL) == NULL);
    CHECK(spfs_autostart_status_users(NULL) == NULL);
    CHECK(spfs_autostart_status_mount_count(NULL) == 0);
    CHECK(spfs_autostart_status_mount_root_pid(NULL, 0) == 0);
    CHECK(spfs_autostart_status_mount_runtime_name(NULL, 0) == NULL);
    CHECK(spfs_autostart_status_mount_env_spec(NULL, 0) == NULL);
    CHECK(spfs_autostart_status_mount_editable(NULL, 0) == 0);
    CHECK(spfs_autostart_error_code(NULL) == SPFS_AUTOSTART_RESULT_OK);
    CHECK(spfs_autostart_error_message(NULL) == NULL);
    CHECK(spfs_autostart_error_log_file(NULL) == NULL);
    CHECK(spfs_autostart_error_log_tail(NULL) == NULL);
    CHECK(spfs_autostart_string_array_len(NULL) == 0);
    CHECK(spfs_autostart_string_array_get(NULL, 0) == NULL);
}

/* Every fallible function with a NULL where a pointer is required. */
static void test_null_parameters(struct spfs_autostart *mgr) {
    struct spfs_autostart_error *err = NULL;
    struct spfs_autostart_status *status = NULL;
    struct spfs_autostart_string_array *lines = NULL;
    int stopped = 42;

    CHECK_CODE(spfs_autostart_new(NULL, NULL, &err), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK(err != NULL);
    CHECK_CODE(spfs_autostart_error_code(err), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK(strstr(spfs_autostart_error_message(err), "out") != NULL);
    spfs_autostart_error_free(err);
    err = NULL;

    CHECK_CODE(spfs_autostart_ensure(NULL, &status, &err), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK(status == NULL);
    CHECK(strstr(spfs_autostart_error_message(err), "mgr") != NULL);
    spfs_autostart_error_free(err);
    err = NULL;
    CHECK_CODE(spfs_autostart_ensure(mgr, NULL, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);

    CHECK_CODE(spfs_autostart_status(NULL, &status, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK_CODE(spfs_autostart_status(mgr, NULL, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK(status == NULL);

    CHECK_CODE(spfs_autostart_stop(NULL, &stopped, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK_CODE(spfs_autostart_stop(mgr, NULL, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK(stopped == 42);
    spfs_autostart_stop_method how = 42;
    CHECK_CODE(spfs_autostart_stop_how(NULL, &how, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK_CODE(spfs_autostart_stop_how(mgr, NULL, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK(how == 42);

    CHECK_CODE(spfs_autostart_tail_logs(NULL, 5, &lines, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK_CODE(spfs_autostart_tail_logs(mgr, 5, NULL, NULL), SPFS_AUTOSTART_RESULT_NULL_PARAMETER);
    CHECK(lines == NULL);
}

static void test_invalid_utf8(void) {
    struct spfs_autostart *mgr = NULL;
    struct spfs_autostart_error *err = NULL;
    CHECK_CODE(spfs_autostart_new("/tmp/\xff\xfe.toml", &mgr, &err), SPFS_AUTOSTART_RESULT_INVALID_UTF8);
    CHECK(mgr == NULL);
    CHECK_CODE(spfs_autostart_error_code(err), SPFS_AUTOSTART_RESULT_INVALID_UTF8);
    spfs_autostart_error_free(err);
}

static void test_missing_config(void) {
    struct spfs_autostart *mgr = NULL;
    struct spfs_autostart_error *err = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/no-such-config.toml", scratch);
    CHECK_CODE(spfs_autostart_new(path, &mgr, &err), SPFS_AUTOSTART_RESULT_INVALID_CONFIG);
    CHECK(mgr == NULL);
    CHECK(err && strstr(spfs_autostart_error_message(err), "no-such-config.toml") != NULL);
    spfs_autostart_error_free(err);
}

static void test_invalid_toml(void) {
    struct spfs_autostart *mgr = NULL;
    struct spfs_autostart_error *err = NULL;
    const char *path = write_config("bad.toml", "program = [unclosed\n");
    CHECK_CODE(spfs_autostart_new(path, &mgr, &err), SPFS_AUTOSTART_RESULT_INVALID_CONFIG);
    CHECK(mgr == NULL);
    CHECK(err && strstr(spfs_autostart_error_message(err), "bad.toml") != NULL);
    spfs_autostart_error_free(err);
    /* Without `err` the code alone comes back. */
    CHECK_CODE(spfs_autostart_new(path, &mgr, NULL), SPFS_AUTOSTART_RESULT_INVALID_CONFIG);
    CHECK(mgr == NULL);
}

/* What fixes an error comes as data beside the message: the config file,
 * or an operation and a config key; out of range reads NONE. */
static void test_remedies(const char *program) {
    struct spfs_autostart *mgr = NULL;
    struct spfs_autostart_error *err = NULL;
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no-such-config.toml", scratch);
    CHECK_CODE(spfs_autostart_new(missing, &mgr, &err), SPFS_AUTOSTART_RESULT_INVALID_CONFIG);
    CHECK(spfs_autostart_error_remedy_count(err) == 1);
    CHECK(spfs_autostart_error_remedy(err, 0) == SPFS_AUTOSTART_REMEDY_CONFIG_FILE);
    CHECK(spfs_autostart_error_remedy_key(err, 0) == NULL);
    CHECK(spfs_autostart_error_remedy(err, 1) == SPFS_AUTOSTART_REMEDY_NONE);
    spfs_autostart_error_free(err);
    err = NULL;

    /* A running service of another version than the config expects, with
     * the policy "error": stop it, or change on_version_mismatch. (Started
     * first without expecting a version: a service the call itself starts
     * is judged by its program, whose version no stop changes.) */
    const char *plain = write_config(
        "any-version.toml",
        "program = \"%s\"\nstate_dir = \"%s/mismatch-state\"\nlog_dir = \"%s/mismatch-log\"\n",
        program, scratch, scratch);
    mgr = new_manager(plain);
    if (!mgr)
        return;
    struct spfs_autostart_status *status = NULL;
    CHECK_CODE(spfs_autostart_ensure(mgr, &status, &err), SPFS_AUTOSTART_RESULT_OK);
    spfs_autostart_status_free(status);
    status = NULL;
    spfs_autostart_free(mgr);
    const char *path = write_config(
        "mismatch.toml",
        "program = \"%s\"\nexpected_version = \"9.9.9\"\non_version_mismatch = \"error\"\n"
        "state_dir = \"%s/mismatch-state\"\nlog_dir = \"%s/mismatch-log\"\n",
        program, scratch, scratch);
    mgr = new_manager(path);
    if (!mgr)
        return;
    CHECK_CODE(spfs_autostart_ensure(mgr, &status, &err), SPFS_AUTOSTART_RESULT_VERSION_MISMATCH);
    CHECK(spfs_autostart_error_remedy_count(err) == 2);
    CHECK(spfs_autostart_error_remedy(err, 0) == SPFS_AUTOSTART_REMEDY_RUN);
    CHECK(spfs_autostart_error_remedy_operation(err, 0) == SPFS_AUTOSTART_OPERATION_STOP);
    CHECK(spfs_autostart_error_remedy_key(err, 0) == NULL);
    CHECK(spfs_autostart_error_remedy(err, 1) == SPFS_AUTOSTART_REMEDY_SET_KEY);
    const char *key = spfs_autostart_error_remedy_key(err, 1);
    CHECK(key && strcmp(key, "on_version_mismatch") == 0);
    CHECK(spfs_autostart_error_remedy_operation(err, 1) == SPFS_AUTOSTART_OPERATION_NONE);
    spfs_autostart_error_free(err);
    err = NULL;
    int stopped = -1;
    CHECK_CODE(spfs_autostart_stop(mgr, &stopped, &err), SPFS_AUTOSTART_RESULT_OK);
    CHECK(stopped == 1);
    spfs_autostart_error_free(err);
    spfs_autostart_free(mgr);

    CHECK(spfs_autostart_error_remedy_count(NULL) == 0);
    CHECK(spfs_autostart_error_remedy(NULL, 0) == SPFS_AUTOSTART_REMEDY_NONE);
    CHECK(spfs_autostart_error_remedy_key(NULL, 0) == NULL);
    CHECK(spfs_autostart_error_remedy_operation(NULL, 0) == SPFS_AUTOSTART_OPERATION_NONE);
}

static void test_missing_program(void) {
    struct spfs_autostart *mgr = NULL;
    struct spfs_autostart_error *err = NULL;
    struct spfs_autostart_status *status = NULL;
    const char *path = write_config(
        "missing.toml",
        "program = \"spfs-autostart-no-such-program\"\nstate_dir = \"%s/missing-state\"\n"
        "log_dir = \"%s/missing-log\"\n",
        scratch, scratch);
    mgr = new_manager(path);
    if (!mgr)
        return;
    CHECK_CODE(spfs_autostart_ensure(mgr, &status, &err), SPFS_AUTOSTART_RESULT_BINARY_NOT_FOUND);
    CHECK(status == NULL);
    CHECK_CODE(spfs_autostart_error_code(err), SPFS_AUTOSTART_RESULT_BINARY_NOT_FOUND);
    const char *message = spfs_autostart_error_message(err);
    CHECK(message && strstr(message, "spfs-autostart-no-such-program") != NULL);
    CHECK(message && strstr(message, "looked in") != NULL);
    spfs_autostart_error_free(err);
    spfs_autostart_free(mgr);
}

#define THREADS 8

struct ensure_job {
    const struct spfs_autostart *mgr;
    enum spfs_autostart_result code;
    uint32_t pid;
};

static void *ensure_thread(void *arg) {
    struct ensure_job *job = arg;
    struct spfs_autostart_status *status = NULL;
    job->code = spfs_autostart_ensure(job->mgr, &status, NULL);
    job->pid = spfs_autostart_status_pid(status);
    spfs_autostart_status_free(status);
    return NULL;
}

/* One manager used by many threads at once: one service, one pid. */
static void test_threads(const struct spfs_autostart *mgr) {
    pthread_t threads[THREADS];
    struct ensure_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i].mgr = mgr;
        jobs[i].code = SPFS_AUTOSTART_RESULT_PANIC;
        jobs[i].pid = 0;
        CHECK(pthread_create(&threads[i], NULL, ensure_thread, &jobs[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK_CODE(jobs[i].code, SPFS_AUTOSTART_RESULT_OK);
        CHECK(jobs[i].pid != 0 && jobs[i].pid == jobs[0].pid);
    }
}

/* A C thread with a small stack: 32 KiB (the release library crashed at
 * 56 KiB when the call's future was polled on the caller's stack). */
static void *small_stack_thread(void *arg) {
    struct ensure_job *job = arg;
    struct spfs_autostart_status *status = NULL;
    job->code = spfs_autostart_ensure(job->mgr, &status, NULL);
    job->pid = spfs_autostart_status_pid(status);
    spfs_autostart_status_free(status);
    status = NULL;
    if (job->code == SPFS_AUTOSTART_RESULT_OK)
        job->code = spfs_autostart_status(job->mgr, &status, NULL);
    spfs_autostart_status_free(status);
    return NULL;
}

/* tail_logs, then small_stack_thread's calls. */
static void *tail_first_thread(void *arg) {
    struct ensure_job *job = arg;
    struct spfs_autostart_string_array *lines = NULL;
    job->code = spfs_autostart_tail_logs(job->mgr, 10, &lines, NULL);
    spfs_autostart_string_array_free(lines);
    if (job->code == SPFS_AUTOSTART_RESULT_OK)
        small_stack_thread(job);
    return NULL;
}

/* `body` (one of the threads above) on a thread with a stack of `size`
 * bytes. */
static struct ensure_job on_small_stack(const struct spfs_autostart *mgr, size_t size,
                                        void *(*body)(void *)) {
    pthread_attr_t attr;
    pthread_t thread;
    struct ensure_job job = {mgr, SPFS_AUTOSTART_RESULT_PANIC, 0};
    /* A stack of our own, with a guard page below it: glibc would hand a
     * thread asking for `size` a larger stack it cached from an earlier
     * thread, and an overflow must fault, not go unnoticed. */
    long page = sysconf(_SC_PAGESIZE);
    char *block = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(block != MAP_FAILED);
    CHECK(mprotect(block, page, PROT_NONE) == 0);
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstack(&attr, block + page, size) == 0);
    CHECK(pthread_create(&thread, &attr, body, &job) == 0);
    pthread_join(thread, NULL);
    pthread_attr_destroy(&attr);
    munmap(block, size + page);
    return job;
}

static void test_small_stack(const struct spfs_autostart *mgr, uint32_t pid) {
    struct ensure_job job = on_small_stack(mgr, 32 * 1024, small_stack_thread);
    CHECK_CODE(job.code, SPFS_AUTOSTART_RESULT_OK);
    CHECK(job.pid == pid);
}

/* ensure in the parent, fork(), then calls in the child with the inherited
 * manager (the first on a 16 KiB stack) and a new one: they answer (they hung before), and the parent's
 * manager still works afterwards. The child reports through a pipe, not its
 * exit status: under valgrind a forked child "loses" the memory of the
 * parent's threads, which do not exist in it, and valgrind's error exit code
 * would hide the result. */
static void test_fork(const struct spfs_autostart *mgr, const char *config, uint32_t pid) {
    int result[2];
    CHECK(pipe(result) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        char bad = 0;
        struct spfs_autostart_status *status = NULL;
        struct spfs_autostart *fresh = NULL;
        close(result[0]);
        alarm(120); /* a hang kills the child: a failure, not a stuck test */
        /* The child's first call rebuilds the inherited manager for this
         * process: from a thread with the smallest stack there is (16 KiB),
         * as any call may be (`tail_logs` overflowed it when the manager was
         * built on the caller's stack). */
        struct ensure_job first = on_small_stack(mgr, 16 * 1024, tail_first_thread);
        if (first.code != SPFS_AUTOSTART_RESULT_OK || first.pid != pid)
            bad |= 4;
        if (spfs_autostart_status(mgr, &status, NULL) != SPFS_AUTOSTART_RESULT_OK ||
            spfs_autostart_status_state(status) != SPFS_AUTOSTART_STATE_RUNNING ||
            spfs_autostart_status_pid(status) != pid)
            bad |= 1;
        spfs_autostart_status_free(status);
        status = NULL;
        if (spfs_autostart_new(config, &fresh, NULL) != SPFS_AUTOSTART_RESULT_OK ||
            spfs_autostart_ensure(fresh, &status, NULL) != SPFS_AUTOSTART_RESULT_OK ||
            spfs_autostart_status_pid(status) != pid)
            bad |= 2;
        spfs_autostart_status_free(status);
        spfs_autostart_free(fresh);
        if (write(result[1], &bad, 1) != 1)
            _exit(1);
        _exit(0);
    }
    close(result[1]);
    char got = 'x';
    CHECK(read(result[0], &got, 1) == 1);
    CHECK_CODE(got, 0);
    close(result[0]);
    CHECK(waitpid(child, NULL, 0) == child);
    struct spfs_autostart_status *status = NULL;
    CHECK_CODE(spfs_autostart_status(mgr, &status, NULL), SPFS_AUTOSTART_RESULT_OK);
    CHECK(spfs_autostart_status_pid(status) == pid);
    spfs_autostart_status_free(status);
}

/* A service that exits while starting: its kind's code, and the error
 * carries the service's log file and the last lines it wrote. */
static void test_exit_at_startup(const char *program) {
    struct spfs_autostart *mgr = NULL;
    struct spfs_autostart_error *err = NULL;
    struct spfs_autostart_status *status = NULL;
    const char *path = write_config(
        "fails.toml",
        "program = \"%s\"\nargs = [\"--fail-at-start\", \"c-test startup failure 5e1d\"]\n"
        "state_dir = \"%s/fails-state\"\nlog_dir = \"%s/fails-log\"\n",
        program, scratch, scratch);
    mgr = new_manager(path);
    if (!mgr)
        return;
    CHECK_CODE(spfs_autostart_ensure(mgr, &status, &err),
               SPFS_AUTOSTART_RESULT_EXITED_DURING_STARTUP);
    CHECK(status == NULL);
    CHECK_CODE(spfs_autostart_error_code(err), SPFS_AUTOSTART_RESULT_EXITED_DURING_STARTUP);
    const char *log_file = spfs_autostart_error_log_file(err);
    CHECK(log_file && strstr(log_file, "/fails-log/") != NULL);
    const struct spfs_autostart_string_array *tail = spfs_autostart_error_log_tail(err);
    int found = 0;
    for (size_t i = 0; i < spfs_autostart_string_array_len(tail); i++)
        if (strstr(spfs_autostart_string_array_get(tail, i), "c-test startup failure 5e1d"))
            found = 1;
    CHECK(found);
    spfs_autostart_error_free(err);
    spfs_autostart_free(mgr);
}

static int test_cycle(const char *program) {
    struct spfs_autostart *mgr = NULL;
    struct spfs_autostart_error *err = NULL;
    struct spfs_autostart_status *status = NULL;
    struct spfs_autostart_string_array *lines = NULL;
    int stopped = -1;

    const char *path = write_config(
        "cycle.toml", "program = \"%s\"\nstate_dir = \"%s/state\"\nlog_dir = \"%s/log\"\n",
        program, scratch, scratch);
    mgr = new_manager(path);
    if (!mgr)
        return 1;
    test_null_parameters(mgr);

    if (spfs_autostart_ensure(mgr, &status, &err) != SPFS_AUTOSTART_RESULT_OK) {
        print_error("ensure", err);
        spfs_autostart_error_free(err);
        err = NULL;
        failures++;
    } else {
        CHECK(spfs_autostart_status_state(status) == SPFS_AUTOSTART_STATE_RUNNING);
        CHECK(spfs_autostart_status_pid(status) > 0);
        CHECK(strncmp(spfs_autostart_status_endpoint(status), "unix", 4) == 0);
        CHECK(strstr(spfs_autostart_status_log_file(status), "/log/") != NULL);
        CHECK(spfs_autostart_status_warnings(status) != NULL);
        /* The default idle timeout, and no lease or call: a deadline. */
        CHECK(spfs_autostart_status_idle_exit(status) == SPFS_AUTOSTART_IDLE_EXIT_AFTER);
        CHECK(spfs_autostart_status_idle_exit_in_secs(status) > 0);
        /* The reference service embeds the kit; its default timeout. */
        CHECK(spfs_autostart_status_managed(status) == 1);
        CHECK(spfs_autostart_status_idle_timeout_secs(status) == 1800);
        /* ensure stays one RPC: it does not ask for the mounts. */
        CHECK(spfs_autostart_status_mount_count(status) == 0);
        CHECK(spfs_autostart_status_mount_env_spec(status, 0) == NULL);
        /* Nobody uses it. */
        CHECK(spfs_autostart_string_array_len(spfs_autostart_status_users(status)) == 0);
        uint32_t pid = spfs_autostart_status_pid(status);
        spfs_autostart_status_free(status);
        status = NULL;

        CHECK_CODE(spfs_autostart_status(mgr, &status, &err), SPFS_AUTOSTART_RESULT_OK);
        CHECK(spfs_autostart_status_state(status) == SPFS_AUTOSTART_STATE_RUNNING);
        CHECK(spfs_autostart_status_pid(status) == pid);
        spfs_autostart_status_free(status);
        status = NULL;

        CHECK_CODE(spfs_autostart_tail_logs(mgr, 50, &lines, &err), SPFS_AUTOSTART_RESULT_OK);
        CHECK(spfs_autostart_string_array_len(lines) > 0);
        CHECK(spfs_autostart_string_array_get(lines, 0) != NULL);
        CHECK(spfs_autostart_string_array_get(lines, spfs_autostart_string_array_len(lines)) == NULL);
        spfs_autostart_string_array_free(lines);
        lines = NULL;

        test_threads(mgr);
        test_small_stack(mgr, pid);
        test_fork(mgr, path, pid);
        CHECK_CODE(spfs_autostart_status(mgr, &status, NULL), SPFS_AUTOSTART_RESULT_OK);
        CHECK(spfs_autostart_status_pid(status) == pid);
        spfs_autostart_status_free(status);
        status = NULL;
    }

    /* Always stop, so no service outlives the test. */
    if (spfs_autostart_stop(mgr, &stopped, &err) != SPFS_AUTOSTART_RESULT_OK) {
        print_error("stop", err);
        spfs_autostart_error_free(err);
        err = NULL;
        failures++;
    }
    CHECK(stopped == 1);
    CHECK_CODE(spfs_autostart_stop(mgr, &stopped, NULL), SPFS_AUTOSTART_RESULT_OK);
    CHECK(stopped == 0);

    /* How a stop ended: graceful for a kit service, which shuts down when
       asked; NOT_RUNNING once nothing runs. */
    CHECK_CODE(spfs_autostart_ensure(mgr, &status, NULL), SPFS_AUTOSTART_RESULT_OK);
    spfs_autostart_status_free(status);
    status = NULL;
    spfs_autostart_stop_method how = -1;
    CHECK_CODE(spfs_autostart_stop_how(mgr, &how, NULL), SPFS_AUTOSTART_RESULT_OK);
    CHECK(how == SPFS_AUTOSTART_STOP_METHOD_GRACEFUL);
    CHECK_CODE(spfs_autostart_stop_how(mgr, &how, NULL), SPFS_AUTOSTART_RESULT_OK);
    CHECK(how == SPFS_AUTOSTART_STOP_METHOD_NOT_RUNNING);

    CHECK_CODE(spfs_autostart_status(mgr, &status, NULL), SPFS_AUTOSTART_RESULT_OK);
    CHECK(spfs_autostart_status_state(status) == SPFS_AUTOSTART_STATE_STOPPED);
    CHECK(spfs_autostart_status_pid(status) == 0);
    CHECK(spfs_autostart_status_idle_exit(status) == SPFS_AUTOSTART_IDLE_EXIT_UNKNOWN);
    spfs_autostart_status_free(status);

    spfs_autostart_free(mgr);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s REFERENCE_SERVICE_PATH SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    scratch = argv[2];
    /* The environment overrides config files; keep the caller's out. */
    const char *vars[] = {"SPFS_AUTOSTART_CONFIG", "SPFS_AUTOSTART_STATE_DIR",
                          "SPFS_AUTOSTART_LOG_DIR", "SPFS_AUTOSTART_PROGRAM",
                          "SPFS_AUTOSTART_ENDPOINT", "SPFS_AUTOSTART_IDLE_TIMEOUT_SECS",
                          "SPFS_AUTOSTART_READY_TIMEOUT_SECS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);

    test_version();
    test_free_null();
    test_null_accessors();
    test_invalid_utf8();
    test_missing_config();
    test_invalid_toml();
    test_missing_program();
    test_exit_at_startup(argv[1]);
    test_remedies(argv[1]);
    test_cycle(argv[1]);

    if (failures) {
        fprintf(stderr, "test_ffi: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_ffi: all checks passed\n");
    return 0;
}
