/*
 * plugcheck plugin contract, ABI v1.1.
 *
 * A plugin is a shared library exporting one symbol, plugcheck_entry, that
 * returns a pointer to a static plugcheck_plugin. The host checks the magic,
 * the ABI version and struct_size before it calls anything; methods are
 * registered by name during init. Keep this file in step with
 * plugins/abi/src/lib.rs: a test checks every size and offset.
 *
 * 1.1 adds fields at the end of plugcheck_plugin and plugcheck_host
 * (instances, methods that receive their instance and a call context); a
 * 1.0 plugin, whose struct_size ends before them, loads unchanged. The
 * 1.1 fields are read only from a plugin that says abi_minor >= 1 and whose
 * struct_size covers them. docs/contract.md describes both versions.
 */
#ifndef PLUGCHECK_H
#define PLUGCHECK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PLUGCHECK_MAGIC "PLUGCHK" /* 8 bytes with the terminating NUL */
#define PLUGCHECK_ABI_MAJOR 1
#define PLUGCHECK_ABI_MINOR 1
#define PLUGCHECK_ENTRY_SYMBOL "plugcheck_entry"

/* Status codes; methods may return other non-zero values of their own. */
#define PLUGCHECK_OK 0
#define PLUGCHECK_ERR_INVALID_ARGUMENT (-1)
#define PLUGCHECK_ERR_DUPLICATE (-2)
#define PLUGCHECK_ERR_PANIC (-3)
#define PLUGCHECK_ERR_NOT_INITIALIZED (-4)
#define PLUGCHECK_ERR_FAILED (-5)
#define PLUGCHECK_ERR_CANCELLED (-6) /* 1.1: stopped early, cancelled or past its deadline */

/* Log levels for plugcheck_host.log. */
#define PLUGCHECK_LOG_ERROR 1
#define PLUGCHECK_LOG_WARN 2
#define PLUGCHECK_LOG_INFO 3
#define PLUGCHECK_LOG_DEBUG 4
#define PLUGCHECK_LOG_TRACE 5

#if defined(_WIN32)
#define PLUGCHECK_EXPORT __declspec(dllexport)
#else
#define PLUGCHECK_EXPORT __attribute__((visibility("default")))
#endif

/* Bytes handed from plugin to host; given back through free_buf.
 * An empty result is {NULL, 0} and is not freed. */
typedef struct plugcheck_buf {
    uint8_t *ptr;
    size_t len;
} plugcheck_buf;

typedef int32_t (*plugcheck_method)(const uint8_t *in, size_t in_len, plugcheck_buf *out);

/* ABI 1.1: what the host tells a method about the call it is in. Valid
 * only while the method runs; read a field only when struct_size covers
 * it (later minors append). */
#define PLUGCHECK_NO_DEADLINE UINT64_MAX
typedef struct plugcheck_call {
    uint32_t struct_size; /* sizeof as the host compiled it */
    uint32_t reserved; /* 0 */
    uint64_t deadline_ns; /* on now_ns's clock; PLUGCHECK_NO_DEADLINE when none */
    const volatile uint32_t *cancelled; /* never NULL; non-zero once the host asks the call to stop */
    const char *traceparent; /* the caller's W3C traceparent ("00-<trace id>-<span id>-<flags>"), or NULL */
    void *ctx; /* pass back to log */
    uint64_t (*now_ns)(void); /* the host's monotonic clock, in nanoseconds */
    void (*log)(void *ctx, int32_t level, const char *utf8_message); /* a line tagged with this call's trace id */
} plugcheck_call;

/* ABI 1.1: a method that receives its instance (what create_instance made,
 * or NULL for a plugin without instances) and its call. */
typedef int32_t (*plugcheck_method_1_1)(void *instance, const plugcheck_call *call,
                                        const uint8_t *in, size_t in_len, plugcheck_buf *out);

/* Given to init; valid until shutdown returns. */
typedef struct plugcheck_host {
    uint32_t struct_size; /* sizeof as the host compiled it */
    uint16_t abi_major, abi_minor; /* the host's ABI version */
    void *ctx;
    void (*log)(void *ctx, int32_t level, const char *utf8_message); /* 1 error ... 5 trace */
    int32_t (*register_method)(void *ctx, const char *name, plugcheck_method fn);
    /* ABI 1.1 (present when struct_size covers it) */
    int32_t (*register_method_1_1)(void *ctx, const char *name, plugcheck_method_1_1 fn);
} plugcheck_host;

typedef struct plugcheck_plugin {
    char magic[8]; /* "PLUGCHK\0" */
    uint16_t abi_major, abi_minor; /* the ABI the plugin was built against */
    uint32_t struct_size; /* sizeof as the plugin compiled it */
    const char *name; /* UTF-8, non-empty */
    const char *version; /* UTF-8 semver of the plugin itself */
    const char *toolchain; /* e.g. "gcc 12.2.0"; may be NULL */
    int32_t (*init)(const plugcheck_host *host); /* 0 = ok; registers its methods here */
    void (*shutdown)(void); /* must stop every thread the plugin started */
    int32_t (*save_state)(plugcheck_buf *out); /* NULL = stateless; a 1.1 plugin leaves it NULL */
    int32_t (*restore_state)(const uint8_t *in, size_t len);
    void (*free_buf)(plugcheck_buf *buf); /* frees what the plugin handed out */
    /* ABI 1.1 (abi_minor >= 1, and struct_size covers them) */
    int32_t (*create_instance)(void **instance); /* after init; NULL = one implicit instance */
    void (*destroy_instance)(void *instance); /* before shutdown, once per instance made */
    int32_t (*save_instance)(void *instance, plugcheck_buf *out); /* NULL = stateless */
    int32_t (*restore_instance)(void *instance, const uint8_t *in, size_t len);
} plugcheck_plugin;

/* Sizes of the 1.0 structs, which a 1.1 struct begins with (what a host
 * compares struct_size with). */
#define PLUGCHECK_PLUGIN_V1_0_SIZE offsetof(plugcheck_plugin, create_instance)
#define PLUGCHECK_HOST_V1_0_SIZE offsetof(plugcheck_host, register_method_1_1)

/* Reads a call's cancellation flag (the host sets it from another thread). */
static inline int plugcheck_cancelled(const plugcheck_call *call) {
    if (call == NULL || call->cancelled == NULL) {
        return 0;
    }
#if defined(_MSC_VER)
    return *call->cancelled != 0; /* a volatile read: the flag only ever goes from 0 to 1 */
#else
    return __atomic_load_n(call->cancelled, __ATOMIC_ACQUIRE) != 0;
#endif
}

/* The one symbol a plugin exports. Go authors, whose cgo declares it from
 * the //export, define PLUGCHECK_NO_ENTRY_DECLARATION before including. */
#ifndef PLUGCHECK_NO_ENTRY_DECLARATION
PLUGCHECK_EXPORT const plugcheck_plugin *plugcheck_entry(void);
#endif

#ifdef __cplusplus
}
#endif

#endif /* PLUGCHECK_H */
