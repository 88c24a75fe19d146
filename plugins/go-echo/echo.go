// go-echo: a plugcheck plugin in Go, built with -buildmode=c-shared and
// cgo against the public header. The template for Go authors:
//
//	go build -buildmode=c-shared -o libgo_echo.so .
//	GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc \
//	    go build -buildmode=c-shared -o go_echo.dll .
//
// (-buildmode=plugin is no choice: it exists only for Go hosts, and not on
// Windows at all.) The descriptor and the trampolines the host calls are C,
// in the preamble; the work is Go. A Go runtime never unloads: hosts see
// this plugin stay resident after it is closed.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../abi/include
#define PLUGCHECK_NO_ENTRY_DECLARATION
#include <stdlib.h>
#include "plugcheck.h"

// Go functions, exported below (the prototypes cgo generates for them).
extern int32_t goEcho(uint8_t *in, size_t len, plugcheck_buf *out, int32_t reversed);
extern int32_t goSelftest(void);

static const plugcheck_host *the_host;

static int32_t echo(const uint8_t *in, size_t len, plugcheck_buf *out) {
    return goEcho((uint8_t *)in, len, out, 0);
}

static int32_t reverse(const uint8_t *in, size_t len, plugcheck_buf *out) {
    return goEcho((uint8_t *)in, len, out, 1);
}

static int32_t selftest(const uint8_t *in, size_t len, plugcheck_buf *out) {
    (void)in;
    (void)len;
    (void)out;
    return goSelftest();
}

static int32_t init(const plugcheck_host *host) {
    if (host == NULL || host->struct_size < sizeof(plugcheck_host) || host->register_method == NULL)
        return PLUGCHECK_ERR_INVALID_ARGUMENT;
    the_host = host;
    int32_t status = host->register_method(host->ctx, "echo", echo);
    if (status == PLUGCHECK_OK) status = host->register_method(host->ctx, "reverse", reverse);
    if (status == PLUGCHECK_OK) status = host->register_method(host->ctx, "selftest", selftest);
    return status;
}

static void shutdown(void) { the_host = NULL; }

static void free_buf(plugcheck_buf *buf) {
    if (buf == NULL) return;
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = 0;
}

static plugcheck_plugin descriptor = {
    .magic = PLUGCHECK_MAGIC,
    .abi_major = PLUGCHECK_ABI_MAJOR,
    .abi_minor = PLUGCHECK_ABI_MINOR,
    .struct_size = sizeof(plugcheck_plugin),
    .name = "go-echo",
    .version = "1.0.0",
    .toolchain = NULL,
    .init = init,
    .shutdown = shutdown,
    .save_state = NULL,
    .restore_state = NULL,
    .free_buf = free_buf,
};

static plugcheck_plugin *describe(const char *toolchain) {
    descriptor.toolchain = toolchain;
    return &descriptor;
}
*/
import "C"

import (
	"bytes"
	"runtime"
	"unsafe"
)

// toolchain names the Go that built the plugin, e.g. "go1.19.8"; C memory
// that lives as long as the library.
var toolchain = C.CString(runtime.Version())

//export plugcheck_entry
func plugcheck_entry() *C.plugcheck_plugin {
	return C.describe(toolchain)
}

//export goEcho
func goEcho(in *C.uint8_t, length C.size_t, out *C.plugcheck_buf, reversed C.int32_t) C.int32_t {
	if out == nil || (in == nil && length > 0) {
		return C.PLUGCHECK_ERR_INVALID_ARGUMENT
	}
	out.ptr, out.len = nil, 0
	if length == 0 {
		return C.PLUGCHECK_OK
	}
	input := C.GoBytes(unsafe.Pointer(in), C.int(length))
	result := echo(input, reversed != 0)
	buffer := C.malloc(C.size_t(len(result)))
	copy(unsafe.Slice((*byte)(buffer), len(result)), result)
	out.ptr, out.len = (*C.uint8_t)(buffer), C.size_t(len(result))
	return C.PLUGCHECK_OK
}

//export goSelftest
func goSelftest() C.int32_t {
	sample := []byte("plugcheck")
	if !bytes.Equal(echo(sample, false), sample) || string(echo(sample, true)) != "kcehcgulp" {
		return C.PLUGCHECK_ERR_FAILED
	}
	return C.PLUGCHECK_OK
}

// echo returns the input, or a reversed copy of it.
func echo(input []byte, reversed bool) []byte {
	result := append([]byte(nil), input...)
	if reversed {
		for i, j := 0, len(result)-1; i < j; i, j = i+1, j-1 {
			result[i], result[j] = result[j], result[i]
		}
	}
	return result
}

func main() {}
