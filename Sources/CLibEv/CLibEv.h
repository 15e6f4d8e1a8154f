// CLibEv: the part of libev that Swift's ClangImporter cannot see.
//
// libev's watcher API is made of function-like macros (ev_io_init, ev_timer_init, ev_is_active, ...),
// which Swift cannot import. Each one used by EvServer is wrapped here in a `static inline` function named
// `CLibEv_<macro>` (a system-library target has no .c files, so the wrappers live in this header).
// Nothing else belongs here: no logic, no configuration macros (they change the watcher layout and must
// match the system libev.so).
#ifndef C_LIBEV_H
#define C_LIBEV_H

#include <ev.h>

#if !EV_MULTIPLICITY
#error "EvServer needs libev built with EV_MULTIPLICITY (one loop per thread)"
#endif

_Static_assert(sizeof(ev_tstamp) == sizeof(double), "EvServer passes ev_tstamp as Double");

typedef void (*CLibEv_io_cb)(struct ev_loop *loop, ev_io *w, int revents);
typedef void (*CLibEv_timer_cb)(struct ev_loop *loop, ev_timer *w, int revents);
typedef void (*CLibEv_async_cb)(struct ev_loop *loop, ev_async *w, int revents);

// MARK: generic watcher accessors (any watcher type)

static inline int CLibEv_ev_is_active(const void *w) { return ev_is_active((const ev_watcher *)w); }
/// Sets any watcher's `data` field (the pointer to its Swift owner).
static inline void CLibEv_ev_set_data(void *w, void *data) { ((ev_watcher *)w)->data = data; }

// MARK: ev_io

static inline void CLibEv_ev_io_init(ev_io *w, CLibEv_io_cb cb, int fd, int events) {
    ev_io_init(w, cb, fd, events);
}

// MARK: ev_timer

static inline void CLibEv_ev_timer_init(ev_timer *w, CLibEv_timer_cb cb, ev_tstamp after, ev_tstamp repeat) {
    ev_timer_init(w, cb, after, repeat);
}
static inline void CLibEv_ev_timer_set(ev_timer *w, ev_tstamp after, ev_tstamp repeat) {
    ev_timer_set(w, after, repeat);
}

// MARK: ev_async

static inline void CLibEv_ev_async_init(ev_async *w, CLibEv_async_cb cb) { ev_async_init(w, cb); }

// MARK: Linux extensions the loop's code needs
//
// Swift's Glibc module is built without _GNU_SOURCE, so these GNU functions are not visible to Swift.
// They are declared here with glibc's own prototypes (a compatible redeclaration).

#include <sys/socket.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <unistd.h>

extern int accept4(int fd, struct sockaddr *addr, socklen_t *addr_len, int flags);
extern int pthread_setname_np(pthread_t thread, const char *name);

/// accept4 through syscall: see "socket I/O without glibc's cancellation bookkeeping" below.
static inline int CLibEv_accept4(int fd, struct sockaddr *addr, socklen_t *addr_len, int flags) {
    return (int)syscall(SYS_accept4, fd, addr, addr_len, flags);
}
static inline int CLibEv_pthread_setname_np(pthread_t thread, const char *name) {
    return pthread_setname_np(thread, name);
}

// prctl is variadic, which Swift cannot call: the one use, the signal a process gets when its parent dies.
#include <sys/prctl.h>

static inline int CLibEv_prctl_set_pdeathsig(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
}

// Child processes (evserved's workers and `--exec` children): glibc declares these only with _GNU_SOURCE
// (closefrom) or not at all before 2.36 (pidfd_open: here through syscall, which is variadic).
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

static inline int CLibEv_posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
/// A descriptor that becomes readable when process `pid` exits (Linux 5.3); close-on-exec. -1 and errno on failure.
static inline int CLibEv_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

// MARK: socket I/O without glibc's cancellation bookkeeping
//
// recv, send, recvfrom, sendto and accept4 are POSIX cancellation points: once a process has a second
// thread, glibc brackets each of these calls with __pthread_enable_asynccancel/__pthread_disable_asynccancel
// (about 30 instructions per call, measured with callgrind; a single-threaded C server never pays it).
// EvServer never cancels a thread (no pthread_cancel anywhere), so its socket I/O makes the system calls
// directly. Same arguments, result and errno as the libc functions; recv and send are recvfrom and sendto
// with no address, as in glibc.
static inline ssize_t CLibEv_recvfrom(int fd, void *buffer, size_t length, int flags, struct sockaddr *address,
                                      socklen_t *address_length) {
    return syscall(SYS_recvfrom, fd, buffer, length, flags, address, address_length);
}
static inline ssize_t CLibEv_sendto(int fd, const void *buffer, size_t length, int flags,
                                    const struct sockaddr *address, socklen_t address_length) {
    return syscall(SYS_sendto, fd, buffer, length, flags, address, address_length);
}

#endif // C_LIBEV_H
