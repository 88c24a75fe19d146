/*
 * plugcheck plugin contract, ABI v1.0.
 *
 * A plugin is a shared library exporting one symbol, plugcheck_entry, that
 * returns a pointer to a static plugcheck_plugin. The host checks the magic,
 * the ABI version and struct_size before it calls anything; methods are
 * registered by name during init. Keep this file in step with
 * plugins/abi/src/lib.rs: a test checks every size and offset.
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
#define PLUGCHECK_ABI_MINOR 0
#define PLUGCHECK_ENTRY_SYMBOL "plugcheck_entry"

/* Status codes; methods may return other non-zero values of their own. */
#define PLUGCHECK_OK 0
#define PLUGCHECK_ERR_INVALID_ARGUMENT (-1)
#define PLUGCHECK_ERR_DUPLICATE (-2)
#define PLUGCHECK_ERR_PANIC (-3)
#define PLUGCHECK_ERR_NOT_INITIALIZED (-4)
#define PLUGCHECK_ERR_FAILED (-5)

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

/* Given to init; valid until shutdown returns. */
typedef struct plugcheck_host {
    uint32_t struct_size; /* sizeof as the host compiled it */
    uint16_t abi_major, abi_minor; /* the host's ABI version */
    void *ctx;
    void (*log)(void *ctx, int32_t level, const char *utf8_message); /* 1 error ... 5 trace */
    int32_t (*register_method)(void *ctx, const char *name, plugcheck_method fn);
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
    int32_t (*save_state)(plugcheck_buf *out); /* NULL = stateless */
    int32_t (*restore_state)(const uint8_t *in, size_t len);
    void (*free_buf)(plugcheck_buf *buf); /* frees what the plugin handed out */
} plugcheck_plugin;

/* The one symbol a plugin exports. Go authors, whose cgo declares it from
 * the //export, define PLUGCHECK_NO_ENTRY_DECLARATION before including. */
#ifndef PLUGCHECK_NO_ENTRY_DECLARATION
PLUGCHECK_EXPORT const plugcheck_plugin *plugcheck_entry(void);
#endif

#ifdef __cplusplus
}
#endif

#endif /* PLUGCHECK_H */
