/* The physical floor of what plugcheck does per plugin: start a process
 * that opens the plugin and calls its entry, and wait for it. Usage:
 * floor-spawner CHILD PLUGIN ROUNDS. Prints, one per line, each round's
 * wall time from spawning the child to reaping it, in microseconds; exits
 * non-zero if a child failed. posix_spawn on Linux, CreateProcess on
 * Windows: the cheapest way each platform has. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
#endif

#ifdef _WIN32
static double now_us(void) {
    static LARGE_INTEGER frequency;
    LARGE_INTEGER counter;
    if (frequency.QuadPart == 0) {
        QueryPerformanceFrequency(&frequency);
    }
    QueryPerformanceCounter(&counter);
    return (double)counter.QuadPart * 1e6 / (double)frequency.QuadPart;
}

static int run_child(const char *child, const char *plugin) {
    char command[4096];
    STARTUPINFOA startup;
    PROCESS_INFORMATION process;
    DWORD code = 2;
    if (snprintf(command, sizeof command, "\"%s\" \"%s\"", child, plugin) >= (int)sizeof command) {
        return 2;
    }
    memset(&startup, 0, sizeof startup);
    startup.cb = sizeof startup;
    if (!CreateProcessA(child, command, NULL, NULL, FALSE, 0, NULL, NULL, &startup, &process)) {
        return 2;
    }
    WaitForSingleObject(process.hProcess, INFINITE);
    GetExitCodeProcess(process.hProcess, &code);
    CloseHandle(process.hThread);
    CloseHandle(process.hProcess);
    return (int)code;
}
#else
static double now_us(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (double)time.tv_sec * 1e6 + (double)time.tv_nsec / 1e3;
}

static int run_child(const char *child, const char *plugin) {
    char *argv[] = {(char *)child, (char *)plugin, NULL};
    pid_t pid;
    int status;
    if (posix_spawn(&pid, child, NULL, NULL, argv, environ) != 0) {
        return 2;
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return 2;
    }
    return WEXITSTATUS(status);
}
#endif

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: floor-spawner CHILD PLUGIN ROUNDS\n");
        return 2;
    }
    int rounds = atoi(argv[3]);
    for (int round = 0; round < rounds; round++) {
        double started = now_us();
        int code = run_child(argv[1], argv[2]);
        double took = now_us() - started;
        if (code != 0) {
            fprintf(stderr, "floor child exited with %d on %s\n", code, argv[2]);
            return 1;
        }
        printf("%.1f\n", took);
    }
    return 0;
}
