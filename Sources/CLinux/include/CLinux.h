#ifndef CLINUX_H
#define CLINUX_H
// Linux system interfaces that Swift's Glibc module does not export
// (epoll, eventfd, CPU affinity macros).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sched.h>

/// Number of CPUs in this process's affinity mask (taskset, cpuset), or -1.
int clinux_affinity_cpu_count(void);

/// Blocks `signo` in the calling thread (and threads it creates later).
int clinux_block_signal(int signo);
/// accept4(2), which glibc declares only under _GNU_SOURCE.
int clinux_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/// The event loop running on this thread (an unretained pointer), or NULL.
void *clinux_current_loop(void);
void clinux_set_current_loop(void *loop);
/// Whether the process runs in secure-execution mode (getauxval(AT_SECURE): setuid, setgid or
/// file capabilities), where glibc ignores or erases GLIBC_TUNABLES.
int clinux_secure_execution(void);
/// Names the calling thread (pthread_setname_np: /proc/PID/task/TID/comm; 15 bytes at most).
int clinux_set_thread_name(const char *name);
#endif
