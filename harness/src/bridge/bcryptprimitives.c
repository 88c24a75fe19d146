/*
 * bcryptprimitives.dll for Wine 8.0, which lacks it: Rust's std (1.78+)
 * imports ProcessPrng from it, so no Rust .exe starts without it.
 * ProcessPrng fills a buffer with random bytes and cannot fail; Wine's
 * advapi32 has RtlGenRandom (SystemFunction036), which does the same.
 * plugcheck builds this with mingw-w64 into its Wine prefix's system32
 * (harness/src/bridge/wine.rs).
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            /* ProcessPrng is documented never to fail; there is no
             * better answer than stopping the process. */
            ExitProcess(0xC0000001);
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
