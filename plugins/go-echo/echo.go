// go-echo: a plugcheck plugin of ABI 1.1 in Go, built with
// -buildmode=c-shared and cgo against the public header. The template for
// Go authors:
//
//	go build -buildmode=c-shared -o libgo_echo.so .
//	GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc \
//	    go build -buildmode=c-shared -o go_echo.dll .
//
// (-buildmode=plugin is no choice: it exists only for Go hosts, and not on
// Windows at all.) The descriptor and the trampolines the host calls are C,
// in the preamble; the work is Go. Each instance the host makes is a Go
// value behind a cgo.Handle; each method gets its instance and its call
// (deadline, cancellation, trace id, a log that tags lines with it). A Go
// runtime never unloads: hosts see this plugin stay resident after it is
// closed.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../abi/include
#define PLUGCHECK_NO_ENTRY_DECLARATION
#include <stdlib.h>
#include "plugcheck.h"

// Go functions, exported below (the prototypes cgo generates for them).
extern int32_t goEcho(uintptr_t instance, plugcheck_call *call, uint8_t *in, size_t len, plugcheck_buf *out, int32_t reversed);
extern int32_t goSelftest(void);
extern int32_t goWait(plugcheck_call *call);
extern uintptr_t goCreateInstance(void);
extern void goDestroyInstance(uintptr_t instance);

static const plugcheck_host *the_host;

static int32_t echo(void *instance, const plugcheck_call *call, const uint8_t *in, size_t len, plugcheck_buf *out) {
    return goEcho((uintptr_t)instance, (plugcheck_call *)call, (uint8_t *)in, len, out, 0);
}

static int32_t reverse(void *instance, const plugcheck_call *call, const uint8_t *in, size_t len, plugcheck_buf *out) {
    return goEcho((uintptr_t)instance, (plugcheck_call *)call, (uint8_t *)in, len, out, 1);
}

static int32_t selftest(void *instance, const plugcheck_call *call, const uint8_t *in, size_t len, plugcheck_buf *out) {
    (void)instance;
    (void)call;
    (void)in;
    (void)len;
    (void)out;
    return goSelftest();
}

static int32_t wait_probe(void *instance, const plugcheck_call *call, const uint8_t *in, size_t len, plugcheck_buf *out) {
    (void)instance;
    (void)in;
    (void)len;
    (void)out;
    return goWait((plugcheck_call *)call);
}

// What Go cannot do itself: call the host's function pointers.
static int call_usable(const plugcheck_call *call) {
    return call != NULL && call->struct_size >= sizeof(plugcheck_call) && call->now_ns != NULL && call->log != NULL;
}
static int call_past_deadline(const plugcheck_call *call) {
    return call->deadline_ns != PLUGCHECK_NO_DEADLINE && call->now_ns() >= call->deadline_ns;
}
static void call_log(const plugcheck_call *call, int32_t level, const char *message) {
    call->log(call->ctx, level, message);
}

static int32_t init(const plugcheck_host *host) {
    // A host of ABI 1.0 has a smaller table (and refuses this plugin).
    if (host == NULL || host->struct_size < sizeof(plugcheck_host) || host->register_method_1_1 == NULL)
        return PLUGCHECK_ERR_INVALID_ARGUMENT;
    the_host = host;
    int32_t status = host->register_method_1_1(host->ctx, "echo", echo);
    if (status == PLUGCHECK_OK) status = host->register_method_1_1(host->ctx, "reverse", reverse);
    if (status == PLUGCHECK_OK) status = host->register_method_1_1(host->ctx, "selftest", selftest);
    if (status == PLUGCHECK_OK) status = host->register_method_1_1(host->ctx, "selftest.wait", wait_probe);
    return status;
}

static void shutdown(void) { the_host = NULL; }

static int32_t create_instance(void **instance) {
    if (instance == NULL) return PLUGCHECK_ERR_INVALID_ARGUMENT;
    *instance = (void *)goCreateInstance();
    return PLUGCHECK_OK;
}

static void destroy_instance(void *instance) { goDestroyInstance((uintptr_t)instance); }

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
    .free_buf = free_buf,
    .create_instance = create_instance,
    .destroy_instance = destroy_instance,
    .save_instance = NULL, // stateless: what an instance counted is not carried over
    .restore_instance = NULL,
};

static plugcheck_plugin *describe(const char *toolchain) {
    descriptor.toolchain = toolchain;
    return &descriptor;
}
*/
import "C"

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync/atomic"
	"time"
	"unsafe"
)

// toolchain names the Go that built the plugin, e.g. "go1.19.8"; C memory
// that lives as long as the library.
var toolchain = C.CString(runtime.Version())

// instance is one instance's state: the bytes it echoed.
type instance struct {
	bytes atomic.Uint64
}

//export plugcheck_entry
func plugcheck_entry() *C.plugcheck_plugin {
	return C.describe(toolchain)
}

//export goCreateInstance
func goCreateInstance() C.uintptr_t {
	return C.uintptr_t(cgo.NewHandle(&instance{}))
}

//export goDestroyInstance
func goDestroyInstance(handle C.uintptr_t) {
	if handle != 0 {
		cgo.Handle(handle).Delete()
	}
}

//export goEcho
func goEcho(handle C.uintptr_t, call *C.plugcheck_call, in *C.uint8_t, length C.size_t, out *C.plugcheck_buf, reversed C.int32_t) C.int32_t {
	if handle == 0 {
		return C.PLUGCHECK_ERR_NOT_INITIALIZED
	}
	if out == nil || (in == nil && length > 0) {
		return C.PLUGCHECK_ERR_INVALID_ARGUMENT
	}
	self := cgo.Handle(handle).Value().(*instance)
	self.bytes.Add(uint64(length))
	if reversed != 0 {
		logTo(call, C.PLUGCHECK_LOG_TRACE, fmt.Sprintf("reversed %d byte(s)", length))
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

// logTo sends a line through the call's log, tagged with its trace id.
func logTo(call *C.plugcheck_call, level C.int32_t, message string) {
	if C.call_usable(call) == 0 {
		return
	}
	text := C.CString(message)
	defer C.free(unsafe.Pointer(text))
	C.call_log(call, level, text)
}

//export goWait
func goWait(call *C.plugcheck_call) C.int32_t {
	if C.call_usable(call) == 0 {
		return C.PLUGCHECK_ERR_INVALID_ARGUMENT
	}
	for C.plugcheck_cancelled(call) == 0 && C.call_past_deadline(call) == 0 {
		time.Sleep(time.Millisecond)
	}
	return C.PLUGCHECK_ERR_CANCELLED
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
