#define _GNU_SOURCE
#include "CLinux.h"
#include <pthread.h>
#include <errno.h>
#include <sys/auxv.h>

int clinux_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int clinux_block_signal(int signo) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int clinux_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

static __thread void *current_loop;

void *clinux_current_loop(void) { return current_loop; }
void clinux_set_current_loop(void *loop) { current_loop = loop; }

int clinux_secure_execution(void) {
    return getauxval(AT_SECURE) != 0;
}

int clinux_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
