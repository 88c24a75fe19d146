/* The physical floor's child: opens the plugin named by argv[1], looks up
 * plugcheck_entry and calls it, nothing else. Exits 0 when the entry
 * returned a descriptor, 1 when it returned NULL, 2 when the plugin could
 * not be opened or has no entry. Built by `cargo xtask bench` (gcc on
 * Linux, MinGW-w64 for the Windows leg under Wine). */
#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif
#include <stddef.h>

typedef const void *(*entry_fn)(void);

int main(int argc, char **argv) {
    if (argc != 2) {
        return 2;
    }
#ifdef _WIN32
    HMODULE library = LoadLibraryA(argv[1]);
    if (library == NULL) {
        return 2;
    }
    entry_fn entry = (entry_fn)(void (*)(void))GetProcAddress(library, "plugcheck_entry");
#else
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        return 2;
    }
    entry_fn entry = (entry_fn)dlsym(library, "plugcheck_entry");
#endif
    if (entry == NULL) {
        return 2;
    }
    return entry() != NULL ? 0 : 1;
}
