/*
 * c-echo: a plugcheck plugin in C, written against the public header only.
 * The template for C and C++ authors:
 *
 *   cc -shared -fPIC -I plugins/abi/include -o libc_echo.so echo.c      (Linux)
 *   x86_64-w64-mingw32-gcc -shared -I plugins/abi/include -o c_echo.dll echo.c
 *
 * Methods: `echo` returns its input, `reverse` returns it reversed,
 * `selftest` checks both. Buffers handed to the host are malloc'd and come
 * back through free_buf.
 */
#include <stdlib.h>
#include <string.h>

#include "plugcheck.h"

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

static int32_t echo(const uint8_t *in, size_t len, plugcheck_buf *out) {
    return hand_out(in, len, 0, out);
}

static int32_t reverse(const uint8_t *in, size_t len, plugcheck_buf *out) {
    return hand_out(in, len, 1, out);
}

static void free_buf(plugcheck_buf *buf) {
    if (buf == NULL) return;
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = 0;
}

static int32_t selftest(const uint8_t *in, size_t len, plugcheck_buf *out) {
    (void)in;
    (void)len;
    (void)out;
    const uint8_t sample[] = "plugcheck";
    plugcheck_buf echoed = {NULL, 0}, reversed = {NULL, 0};
    int32_t status = echo(sample, 9, &echoed);
    if (status == PLUGCHECK_OK) status = reverse(sample, 9, &reversed);
    int ok = status == PLUGCHECK_OK && echoed.len == 9 && reversed.len == 9 &&
             memcmp(echoed.ptr, "plugcheck", 9) == 0 && memcmp(reversed.ptr, "kcehcgulp", 9) == 0;
    free_buf(&echoed);
    free_buf(&reversed);
    if (!ok) say(PLUGCHECK_LOG_ERROR, "echo or reverse returned the wrong bytes");
    return ok ? PLUGCHECK_OK : PLUGCHECK_ERR_FAILED;
}

static int32_t init(const plugcheck_host *host) {
    if (host == NULL || host->struct_size < sizeof(plugcheck_host) || host->register_method == NULL)
        return PLUGCHECK_ERR_INVALID_ARGUMENT;
    the_host = host;
    static const struct {
        const char *name;
        plugcheck_method method;
    } methods[] = {{"echo", echo}, {"reverse", reverse}, {"selftest", selftest}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        int32_t status = host->register_method(host->ctx, methods[i].name, methods[i].method);
        if (status != PLUGCHECK_OK) return status;
    }
    say(PLUGCHECK_LOG_DEBUG, "c-echo ready");
    return PLUGCHECK_OK;
}

static void shutdown(void) { the_host = NULL; }

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
    .shutdown = shutdown,
    .save_state = NULL,
    .restore_state = NULL,
    .free_buf = free_buf,
};

PLUGCHECK_EXPORT const plugcheck_plugin *plugcheck_entry(void) { return &descriptor; }
