/*
 * actions.c - the action registry: built-ins and operator exec actions.
 *
 * Built-ins (SPEC 3.1) are pure functions of the payload: no I/O, no clock,
 * no randomness.  That is what lets the pipeline record a built-in's claim
 * and result in one transaction.
 *   add: a and b default to 0; numbers only (JSON true/false are not
 *   numbers here, unlike Python's bool); int + int stays an exact 64-bit
 *   integer and overflow is refused rather than wrapped or rounded; any
 *   float makes the sum a float, refused if it is not finite.
 *
 * Exec actions (SPEC 6) run an operator's program: argv fixed in the actions
 * file (posix_spawn, never a shell), the payload's compact JSON on stdin, a
 * JSON object expected on stdout.  The child gets only PATH and the variables
 * its entry lists, its own process group (so a timeout or a leftover
 * grandchild is killed with the whole group), no descriptors but its three
 * pipes, and bounded output: stdout and stderr are each cut off at
 * max_output_bytes, which fails the run.  One poll loop watches the pipes
 * and a pidfd, so no signal handler and no SIGCHLD games are needed.
 *
 * The actions file is validated completely at start; every error names the
 * file, the action and the field, and nothing starts with a half-valid
 * registry.
 */
#include "actions.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "canon.h"
#include "log.h"
#include "util.h"

#define MAX_ACTIONS 256
#define MAX_ARGS 64
#define MAX_ENV 64
#define DEFAULT_TIMEOUT_MS 30000
#define MAX_TIMEOUT_MS 3600000
#define DEFAULT_MAX_OUTPUT (1024 * 1024)
#define MAX_OUTPUT_LIMIT (16 * 1024 * 1024)
#define ACTIONS_FILE_MAX (1024 * 1024)
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define STDERR_LOG_MAX 2048

typedef int (*builtin_fn)(const json_t *payload, json_t **result, oe_error *err);

struct action_def {
    char *name;
    builtin_fn builtin; /* NULL for exec actions */
    char **argv;        /* NULL-terminated */
    char **envp;        /* NULL-terminated: PATH + listed variables */
    int timeout_ms;
    size_t max_output;
};

struct actions_registry {
    size_t count;
    action_def defs[MAX_ACTIONS];
    const char *names[MAX_ACTIONS]; /* sorted, borrowed from defs */
};

/* ---- built-ins ----------------------------------------------------------- */

static int run_echo(const json_t *payload, json_t **result, oe_error *err)
{
    *result = json_pack("{s:O}", "echo", (json_t *)payload);
    if (*result == NULL) {
        oe_error_set(err, 503, "busy", "Out of memory");
        return -1;
    }
    return 0;
}

static int add_operand(const json_t *payload, const char *key, json_t **out, oe_error *err)
{
    json_t *v = json_object_get(payload, key);

    if (v == NULL) {
        *out = NULL; /* defaults to 0 */
        return 0;
    }
    if (!json_is_integer(v) && !json_is_real(v)) {
        oe_error_set(err, 422, "invalid_arguments", "Invalid arguments: '%s' must be a number",
                     key);
        return -1;
    }
    *out = v;
    return 0;
}

static int run_add(const json_t *payload, json_t **result, oe_error *err)
{
    json_t *a, *b;
    json_t *sum;

    if (add_operand(payload, "a", &a, err) != 0 || add_operand(payload, "b", &b, err) != 0)
        return -1;
    if ((a == NULL || json_is_integer(a)) && (b == NULL || json_is_integer(b))) {
        long long x = a ? json_integer_value(a) : 0, y = b ? json_integer_value(b) : 0, s;
        if (__builtin_add_overflow(x, y, &s)) {
            oe_error_set(err, 422, "invalid_arguments",
                         "Invalid arguments: integer sum does not fit in 64 bits");
            return -1;
        }
        sum = json_integer(s);
    } else {
        double x = a ? json_number_value(a) : 0.0, y = b ? json_number_value(b) : 0.0;
        double s = x + y;
        if (!isfinite(s)) {
            oe_error_set(err, 422, "invalid_arguments", "Invalid arguments: sum is not finite");
            return -1;
        }
        sum = json_real(s);
    }
    *result = json_pack("{s:o}", "sum", sum);
    if (*result == NULL) {
        oe_error_set(err, 503, "busy", "Out of memory");
        return -1;
    }
    return 0;
}

static const struct {
    const char *name;
    builtin_fn fn;
} BUILTINS[] = {{"add", run_add}, {"echo", run_echo}};

/* ---- registry ------------------------------------------------------------ */

static void free_strv(char **v)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

void actions_registry_free(actions_registry *reg)
{
    size_t i;

    if (reg == NULL)
        return;
    for (i = 0; i < reg->count; i++) {
        free(reg->defs[i].name);
        free_strv(reg->defs[i].argv);
        free_strv(reg->defs[i].envp);
    }
    free(reg);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static action_def *add_def(actions_registry *reg, const char *name)
{
    action_def *d;

    if (reg->count == MAX_ACTIONS)
        return NULL;
    d = &reg->defs[reg->count];
    memset(d, 0, sizeof(*d));
    if ((d->name = strdup(name)) == NULL)
        return NULL;
    reg->count++;
    return d;
}

/* Sets why to "FILE: action 'NAME': FIELD: problem". */
static int bad(char *why, size_t why_len, const char *file, const char *action, const char *field,
               const char *problem)
{
    if (action && field)
        snprintf(why, why_len, "%s: action '%s': field '%s': %s", file, action, field, problem);
    else if (action)
        snprintf(why, why_len, "%s: action '%s': %s", file, action, problem);
    else
        snprintf(why, why_len, "%s: %s", file, problem);
    return -1;
}

static int load_argv(const char *file, const char *name, const json_t *exec, action_def *d,
                     char *why, size_t why_len)
{
    struct stat stt;
    size_t i, n = json_array_size(exec);

    if (!json_is_array(exec) || n == 0)
        return bad(why, why_len, file, name, "exec", "must be a non-empty array of strings");
    if (n > MAX_ARGS)
        return bad(why, why_len, file, name, "exec", "has too many arguments (max 64)");
    if ((d->argv = calloc(n + 1, sizeof(char *))) == NULL)
        return bad(why, why_len, file, name, "exec", "out of memory");
    for (i = 0; i < n; i++) {
        const json_t *a = json_array_get(exec, i);
        if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a))
            return bad(why, why_len, file, name, "exec", "every element must be a string");
        if ((d->argv[i] = strdup(json_string_value(a))) == NULL)
            return bad(why, why_len, file, name, "exec", "out of memory");
    }
    if (d->argv[0][0] != '/')
        return bad(why, why_len, file, name, "exec",
                   "the program must be an absolute path (no PATH lookup, no shell)");
    if (stat(d->argv[0], &stt) != 0 || !S_ISREG(stt.st_mode) || access(d->argv[0], X_OK) != 0)
        return bad(why, why_len, file, name, "exec",
                   "the program does not exist or is not executable");
    return 0;
}

/* "env": a list of variable names passed through from the server's
 * environment, or an object of NAME: value pairs set for the child. */
static int load_env(const char *file, const char *name, const json_t *env, action_def *d, char *why,
                    size_t why_len)
{
    const char *path = getenv("PATH");
    size_t n = 0, cap = MAX_ENV + 2, i;
    const char *key;
    json_t *value;
    oe_buf b;

    if ((d->envp = calloc(cap, sizeof(char *))) == NULL)
        return bad(why, why_len, file, name, "env", "out of memory");
    oe_buf_init(&b, 64 * 1024);
    oe_buf_printf(&b, "PATH=%s", path && *path ? path : DEFAULT_PATH);
    d->envp[n++] = oe_buf_detach(&b, NULL);
    if (env == NULL)
        return 0;
    if (json_is_array(env)) {
        if (json_array_size(env) > MAX_ENV)
            return bad(why, why_len, file, name, "env", "lists too many variables (max 64)");
        json_array_foreach(env, i, value)
        {
            const char *v;
            if (!json_is_string(value) || json_string_length(value) == 0 ||
                strchr(json_string_value(value), '=') != NULL)
                return bad(why, why_len, file, name, "env",
                           "must list variable names (strings without '=')");
            if ((v = getenv(json_string_value(value))) == NULL)
                continue; /* unset in the server: unset in the child */
            oe_buf_printf(&b, "%s=%s", json_string_value(value), v);
            d->envp[n++] = oe_buf_detach(&b, NULL);
        }
        return 0;
    }
    if (!json_is_object(env))
        return bad(why, why_len, file, name, "env",
                   "must be a list of variable names or an object of NAME: value");
    if (json_object_size(env) > MAX_ENV)
        return bad(why, why_len, file, name, "env", "sets too many variables (max 64)");
    json_object_foreach((json_t *)env, key, value)
    {
        if (!json_is_string(value) || *key == '\0' || strchr(key, '=') != NULL ||
            strlen(json_string_value(value)) != json_string_length(value))
            return bad(why, why_len, file, name, "env",
                       "values must be strings and names must not contain '='");
        oe_buf_printf(&b, "%s=%s", key, json_string_value(value));
        d->envp[n++] = oe_buf_detach(&b, NULL);
    }
    return 0;
}

static int load_limit(const char *file, const char *name, const json_t *entry, const char *field,
                      long long lo, long long hi, long long dflt, long long *out, char *why,
                      size_t why_len)
{
    const json_t *v = json_object_get(entry, field);
    char problem[96];

    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(problem, sizeof(problem), "must be an integer from %lld to %lld", lo, hi);
        return bad(why, why_len, file, name, field, problem);
    }
    *out = json_integer_value(v);
    return 0;
}

static int load_exec_action(const char *file, const char *name, const json_t *entry,
                            actions_registry *reg, char *why, size_t why_len)
{
    static const char *const known[] = {"exec", "timeout_ms", "max_output_bytes", "env"};
    long long timeout, max_output;
    const char *key;
    json_t *value;
    action_def *d;
    size_t i, len = strlen(name);

    if (len == 0 || len > 128)
        return bad(why, why_len, file, name, NULL, "action names are 1 to 128 bytes");
    if (!json_is_object(entry))
        return bad(why, why_len, file, name, NULL, "must be an object");
    json_object_foreach((json_t *)entry, key, value)
    {
        int ok = 0;
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok)
            return bad(why, why_len, file, name, key,
                       "unknown field (expected exec, timeout_ms, max_output_bytes, env)");
    }
    if (actions_find(reg, name, len) != NULL)
        return bad(why, why_len, file, name, NULL,
                   "is already a built-in (set \"builtins\": false to replace built-ins)");
    if ((d = add_def(reg, name)) == NULL)
        return bad(why, why_len, file, name, NULL, "too many actions (max 256)");
    if (load_argv(file, name, json_object_get(entry, "exec"), d, why, why_len) != 0 ||
        load_env(file, name, json_object_get(entry, "env"), d, why, why_len) != 0 ||
        load_limit(file, name, entry, "timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, &timeout,
                   why, why_len) != 0 ||
        load_limit(file, name, entry, "max_output_bytes", 1, MAX_OUTPUT_LIMIT, DEFAULT_MAX_OUTPUT,
                   &max_output, why, why_len) != 0)
        return -1;
    d->timeout_ms = (int)timeout;
    d->max_output = (size_t)max_output;
    return 0;
}

static int load_file(const char *file, actions_registry *reg, int *builtins, char *why,
                     size_t why_len)
{
    FILE *f = fopen(file, "rb");
    char *text = NULL;
    json_t *root = NULL, *actions, *b, *entry;
    const char *name, *key;
    size_t n;
    oe_error err;
    int rc = -1;

    if (f == NULL) {
        snprintf(why, why_len, "%s: %s", file, strerror(errno));
        return -1;
    }
    text = malloc(ACTIONS_FILE_MAX + 1);
    n = text ? fread(text, 1, ACTIONS_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (text == NULL || n > ACTIONS_FILE_MAX) {
        bad(why, why_len, file, NULL, NULL, "larger than 1 MiB");
        goto out;
    }
    if (canon_parse(text, n, &root, &err) != 0) {
        bad(why, why_len, file, NULL, NULL, err.detail);
        goto out;
    }
    json_object_foreach(root, key, b)
    {
        if (strcmp(key, "actions") != 0 && strcmp(key, "builtins") != 0) {
            snprintf(why, why_len, "%s: unknown top-level field '%s' (expected actions, builtins)",
                     file, key);
            goto out;
        }
    }
    b = json_object_get(root, "builtins");
    if (b != NULL && !json_is_boolean(b)) {
        bad(why, why_len, file, NULL, NULL, "\"builtins\" must be true or false");
        goto out;
    }
    *builtins = b == NULL || json_is_true(b);
    actions = json_object_get(root, "actions");
    if (!json_is_object(actions)) {
        bad(why, why_len, file, NULL, NULL, "\"actions\" must be an object of name: entry");
        goto out;
    }
    if (!*builtins) {
        /* Built-ins were added first; drop them before the file's own. */
        size_t i;
        for (i = 0; i < reg->count; i++)
            free(reg->defs[i].name);
        reg->count = 0;
    }
    json_object_foreach(actions, name, entry)
    {
        if (load_exec_action(file, name, entry, reg, why, why_len) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(root);
    free(text);
    return rc;
}

int actions_registry_load(const oe_config *cfg, actions_registry **out, char *why, size_t why_len)
{
    actions_registry *reg = calloc(1, sizeof(*reg));
    int builtins = 1;
    size_t i;

    *out = NULL;
    if (reg == NULL)
        return -1;
    for (i = 0; i < sizeof(BUILTINS) / sizeof(BUILTINS[0]); i++) {
        action_def *d = add_def(reg, BUILTINS[i].name);
        if (d == NULL)
            goto fail;
        d->builtin = BUILTINS[i].fn;
    }
    if (cfg->actions_file != NULL &&
        load_file(cfg->actions_file, reg, &builtins, why, why_len) != 0)
        goto fail;
    for (i = 0; i < reg->count; i++)
        reg->names[i] = reg->defs[i].name;
    qsort(reg->names, reg->count, sizeof(reg->names[0]), cmp_names);
    *out = reg;
    return 0;
fail:
    actions_registry_free(reg);
    return -1;
}

const action_def *actions_find(const actions_registry *reg, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < reg->count; i++)
        if (strlen(reg->defs[i].name) == len && memcmp(reg->defs[i].name, name, len) == 0)
            return &reg->defs[i];
    return NULL;
}

const char *const *actions_names(const actions_registry *reg, size_t *count)
{
    *count = reg->count;
    return reg->names;
}

const char *actions_name(const action_def *def)
{
    return def->name;
}

int actions_is_builtin(const action_def *def)
{
    return def->builtin != NULL;
}

int actions_run(const action_def *def, const json_t *payload, json_t **result, oe_error *err)
{
    *result = NULL;
    return def->builtin(payload, result, err);
}

/* ---- running a program --------------------------------------------------- */

typedef struct child_io {
    int in, out, err, pidfd;
    pid_t pid;
} child_io;

static int spawn_child(const action_def *def, child_io *c, char *why, size_t why_len)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int rc;

    if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 || pipe2(perr, O_CLOEXEC) != 0) {
        snprintf(why, why_len, "pipe: %s", strerror(errno));
        goto fail;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    /* Own process group (pgid = pid) so the whole tree can be killed; a
     * clean signal mask and default dispositions, whatever the server's. */
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(&c->pid, def->argv[0], &fa, &attr, def->argv, def->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        snprintf(why, why_len, "cannot start %s: %s", def->argv[0], strerror(rc));
        goto fail;
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    c->in = pin[1];
    c->out = pout[0];
    c->err = perr[0];
    fcntl(c->in, F_SETFL, O_NONBLOCK);
    c->pidfd = pidfd_open(c->pid, 0);
    return 0;
fail:
    for (rc = 0; rc < 2; rc++) {
        if (pin[rc] != -1)
            close(pin[rc]);
        if (pout[rc] != -1)
            close(pout[rc]);
        if (perr[rc] != -1)
            close(perr[rc]);
    }
    return -1;
}

static void close_fd(int *fd)
{
    if (*fd != -1) {
        close(*fd);
        *fd = -1;
    }
}

/* Reads what is available; -1 when over the limit. */
static int drain(int *fd, oe_buf *b)
{
    char chunk[16384];
    ssize_t n = read(*fd, chunk, sizeof(chunk));

    if (n > 0)
        return oe_buf_append(b, chunk, (size_t)n);
    if (n == 0 || (errno != EINTR && errno != EAGAIN))
        close_fd(fd);
    return 0;
}

typedef enum { RUN_EXITED, RUN_TIMEOUT, RUN_OVERFLOW } run_end;

/* Has the child exited?  Asks without reaping it (WNOWAIT). */
static int child_exited(pid_t pid)
{
    siginfo_t info;

    memset(&info, 0, sizeof(info));
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

/* Feeds stdin, collects stdout/stderr, until the child has exited and both
 * pipes are closed, or the deadline or a limit is hit. */
static run_end supervise(const action_def *def, child_io *c, const char *input, size_t len,
                         oe_buf *out, oe_buf *err, int *status)
{
    uint64_t deadline = oe_monotonic_ms() + (uint64_t)def->timeout_ms;
    size_t written = 0;
    int exited = 0;

    if (len == 0)
        close_fd(&c->in);
    while (!exited || c->out != -1 || c->err != -1) {
        struct pollfd p[4];
        int n = 0, i, wait_ms;
        uint64_t now = oe_monotonic_ms();

        if (now >= deadline)
            return RUN_TIMEOUT;
        wait_ms = (int)(deadline - now);
        if (c->in != -1)
            p[n++] = (struct pollfd){c->in, POLLOUT, 0};
        if (c->out != -1)
            p[n++] = (struct pollfd){c->out, POLLIN, 0};
        if (c->err != -1)
            p[n++] = (struct pollfd){c->err, POLLIN, 0};
        if (!exited && c->pidfd != -1)
            p[n++] = (struct pollfd){c->pidfd, POLLIN, 0};
        else if (!exited && wait_ms > 50)
            wait_ms = 50; /* no pidfd: poll waitpid */
        if (poll(p, (nfds_t)n, wait_ms) < 0 && errno != EINTR)
            return RUN_TIMEOUT;
        for (i = 0; i < n; i++) {
            if (p[i].revents == 0)
                continue;
            if (p[i].fd == c->in) {
                ssize_t w = write(c->in, input + written, len - written);
                if (w > 0)
                    written += (size_t)w;
                if (written == len || (w < 0 && errno != EAGAIN && errno != EINTR))
                    close_fd(&c->in);
            } else if (p[i].fd == c->out) {
                if (drain(&c->out, out) != 0)
                    return RUN_OVERFLOW;
            } else if (p[i].fd == c->err) {
                if (drain(&c->err, err) != 0)
                    return RUN_OVERFLOW;
            }
        }
        if (!exited && child_exited(c->pid)) {
            exited = 1;
            /* A grandchild may still hold the pipes open: the run is over
             * when the program we started is; take its group down while the
             * leader is still unreaped, so its pid (the group id) cannot
             * have been reused by anyone else. */
            kill(-c->pid, SIGKILL);
            waitpid(c->pid, status, 0);
            close_fd(&c->in);
        }
    }
    return RUN_EXITED;
}

static void log_stderr(const action_def *def, const oe_buf *err)
{
    if (err->len == 0)
        return;
    oe_log("warn", "action %s stderr: %.*s", def->name,
           (int)(err->len > STDERR_LOG_MAX ? STDERR_LOG_MAX : err->len), err->data);
}

int actions_exec(const action_def *def, const char *input, size_t input_len, json_t **result,
                 oe_error *e)
{
    child_io c = {-1, -1, -1, -1, 0};
    oe_buf out, err;
    char why[256];
    int status = 0, rc = -1;
    run_end end;
    oe_error perr;

    *result = NULL;
    oe_buf_init(&out, def->max_output);
    oe_buf_init(&err, def->max_output);
    if (spawn_child(def, &c, why, sizeof(why)) != 0) {
        oe_error_set(e, 502, "action_failed", "Action '%s' failed: %s", def->name, why);
        goto out;
    }
    end = supervise(def, &c, input, input_len, &out, &err, &status);
    if (end != RUN_EXITED) {
        kill(-c.pid, SIGKILL);
        waitpid(c.pid, &status, 0);
    }
    log_stderr(def, &err);
    if (end == RUN_TIMEOUT) {
        oe_error_set(e, 502, "action_failed", "Action '%s' failed: timed out after %d ms",
                     def->name, def->timeout_ms);
    } else if (end == RUN_OVERFLOW) {
        oe_error_set(e, 502, "action_failed", "Action '%s' failed: output exceeded %zu bytes",
                     def->name, def->max_output);
    } else if (WIFSIGNALED(status)) {
        oe_error_set(e, 502, "action_failed", "Action '%s' failed: killed by signal %d", def->name,
                     WTERMSIG(status));
    } else if (WEXITSTATUS(status) != 0) {
        oe_error_set(e, 502, "action_failed", "Action '%s' failed: exit code %d", def->name,
                     WEXITSTATUS(status));
    } else if (canon_parse(out.data ? out.data : "", out.len, result, &perr) != 0) {
        oe_error_set(e, 502, "action_failed", "Action '%s' failed: its output is not a JSON object",
                     def->name);
    } else {
        rc = 0;
    }
out:
    close_fd(&c.in);
    close_fd(&c.out);
    close_fd(&c.err);
    close_fd(&c.pidfd);
    oe_buf_free(&out);
    oe_buf_free(&err);
    return rc;
}
