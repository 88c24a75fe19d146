/*
 * c-echo: a plugcheck plugin of ABI 1.1 in C, written against the public
 * header only. The template for C and C++ authors:
 *
 *   cc -shared -fPIC -I plugins/abi/include -o libc_echo.so echo.c      (Linux)
 *   x86_64-w64-mingw32-gcc -shared -I plugins/abi/include -o c_echo.dll echo.c
 *
 * Each instance (create_instance) counts the bytes it echoed; methods get
 * their instance and their call. Methods: `echo` returns its input,
 * `reverse` returns it reversed (and logs through its call, so the line
 * carries the caller's trace id), `selftest` checks both, `selftest.wait`
 * returns once its call is cancelled or its deadline passes. Buffers
 * handed to the host are malloc'd and come back through free_buf.
 */
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <time.h>
#endif

#include "plugcheck.h"

/* Sleeps a millisecond: the wait probe's step. */
static void nap(void) {
#if defined(_WIN32)
    Sleep(1);
#else
    struct timespec step = {0, 1000000};
    nanosleep(&step, NULL);
#endif
}

static const plugcheck_host *the_host;

static void say(int32_t level, const char *message) {
    if (the_host != NULL && the_host->log != NULL) the_host->log(the_host->ctx, level, message);
}

/* Copies `len` bytes into a fresh buffer for the host (reversed if asked). */
static int32_t hand_out(const uint8_t *in, size_t len, int reversed, plugcheck_buf *out) {
    if (out == NULL || (in == NULL && len > 0)) return PLUGCHECK_ERR_INVALID_ARGUMENT;
    out->ptr = NULL;
    out->len = 0;
    if (len == 0) return PLUGCHECK_OK;
    uint8_t *bytes = malloc(len);
    if (bytes == NULL) return PLUGCHECK_ERR_FAILED;
    for (size_t i = 0; i < len; i++) bytes[i] = reversed ? in[len - 1 - i] : in[i];
    out->ptr = bytes;
    out->len = len;
    return PLUGCHECK_OK;
}

/* One instance: what it has echoed so far. */
typedef struct c_echo {
    uint64_t bytes;
} c_echo;

static int32_t echo(void *instance, const plugcheck_call *call, const uint8_t *in, size_t len,
                    plugcheck_buf *out) {
    (void)call;
    c_echo *self = instance;
    if (self == NULL) return PLUGCHECK_ERR_NOT_INITIALIZED;
    self->bytes += len;
    return hand_out(in, len, 0, out);
}

static int32_t reverse(void *instance, const plugcheck_call *call, const uint8_t *in, size_t len,
                       plugcheck_buf *out) {
    c_echo *self = instance;
    if (self == NULL) return PLUGCHECK_ERR_NOT_INITIALIZED;
    self->bytes += len;
    if (call != NULL && call->struct_size >= sizeof(plugcheck_call) && call->log != NULL)
        call->log(call->ctx, PLUGCHECK_LOG_TRACE, "reversed");
    return hand_out(in, len, 1, out);
}

/* Returns once the call is cancelled or its deadline passes. */
static int32_t wait_probe(void *instance, const plugcheck_call *call, const uint8_t *in, size_t len,
                          plugcheck_buf *out) {
    (void)instance;
    (void)in;
    (void)len;
    (void)out;
    if (call == NULL || call->struct_size < sizeof(plugcheck_call) || call->now_ns == NULL)
        return PLUGCHECK_ERR_INVALID_ARGUMENT;
    while (!plugcheck_cancelled(call) &&
           (call->deadline_ns == PLUGCHECK_NO_DEADLINE || call->now_ns() < call->deadline_ns))
        nap();
    return PLUGCHECK_ERR_CANCELLED;
}

static void free_buf(plugcheck_buf *buf) {
    if (buf == NULL) return;
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = 0;
}

static int32_t selftest(void *instance, const plugcheck_call *call, const uint8_t *in, size_t len,
                        plugcheck_buf *out) {
    (void)instance;
    (void)in;
    (void)len;
    (void)out;
    const uint8_t sample[] = "plugcheck";
    c_echo scratch = {0};
    plugcheck_buf echoed = {NULL, 0}, reversed = {NULL, 0};
    int32_t status = echo(&scratch, call, sample, 9, &echoed);
    if (status == PLUGCHECK_OK) status = reverse(&scratch, call, sample, 9, &reversed);
    int ok = status == PLUGCHECK_OK && echoed.len == 9 && reversed.len == 9 &&
             memcmp(echoed.ptr, "plugcheck", 9) == 0 && memcmp(reversed.ptr, "kcehcgulp", 9) == 0;
    free_buf(&echoed);
    free_buf(&reversed);
    if (!ok) say(PLUGCHECK_LOG_ERROR, "echo or reverse returned the wrong bytes");
    return ok ? PLUGCHECK_OK : PLUGCHECK_ERR_FAILED;
}

static int32_t init(const plugcheck_host *host) {
    /* A host of ABI 1.0 has a smaller table (and refuses this plugin). */
    if (host == NULL || host->struct_size < sizeof(plugcheck_host) ||
        host->register_method_1_1 == NULL)
        return PLUGCHECK_ERR_INVALID_ARGUMENT;
    the_host = host;
    static const struct {
        const char *name;
        plugcheck_method_1_1 method;
    } methods[] = {{"echo", echo},
                   {"reverse", reverse},
                   {"selftest", selftest},
                   {"selftest.wait", wait_probe}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        int32_t status = host->register_method_1_1(host->ctx, methods[i].name, methods[i].method);
        if (status != PLUGCHECK_OK) return status;
    }
    say(PLUGCHECK_LOG_DEBUG, "c-echo ready");
    return PLUGCHECK_OK;
}

static void echo_shutdown(void) { the_host = NULL; }

static int32_t create_instance(void **instance) {
    if (instance == NULL) return PLUGCHECK_ERR_INVALID_ARGUMENT;
    *instance = calloc(1, sizeof(c_echo));
    return *instance != NULL ? PLUGCHECK_OK : PLUGCHECK_ERR_FAILED;
}

static void destroy_instance(void *instance) { free(instance); }

#define STR2(x) #x
#define STR(x) STR2(x)
#if defined(__clang__)
#define TOOLCHAIN "clang " __clang_version__
#elif defined(__GNUC__)
#define TOOLCHAIN "gcc " STR(__GNUC__) "." STR(__GNUC_MINOR__) "." STR(__GNUC_PATCHLEVEL__)
#else
#define TOOLCHAIN NULL
#endif

static const plugcheck_plugin descriptor = {
    .magic = PLUGCHECK_MAGIC,
    .abi_major = PLUGCHECK_ABI_MAJOR,
    .abi_minor = PLUGCHECK_ABI_MINOR,
    .struct_size = sizeof(plugcheck_plugin),
    .name = "c-echo",
    .version = "1.0.0",
    .toolchain = TOOLCHAIN,
    .init = init,
    .shutdown = echo_shutdown,
    .free_buf = free_buf,
    .create_instance = create_instance,
    .destroy_instance = destroy_instance,
    .save_instance = NULL, /* stateless: what it counted is not carried over */
    .restore_instance = NULL,
};

PLUGCHECK_EXPORT const plugcheck_plugin *plugcheck_entry(void) { return &descriptor; }
