/*
 * loadgen: the benchmark's load generator. Plain C and epoll, so it shares no code with EvServer and
 * cannot flatter it. One thread: on a 2-core machine it takes one core, the server the other.
 *
 *   loadgen pingpong HOST PORT CONNECTIONS SECONDS   each connection sends 64 bytes, waits for the echo, repeats
 *   loadgen churn    HOST PORT CONCURRENCY SECONDS   connect, one 64-byte request, echo, close; CONCURRENCY at once
 *   loadgen idle     HOST PORT COUNT                 opens COUNT connections, prints "held N", waits for a line on
 *                                                    stdin (the runner measures the server), then one message on each
 *   loadgen udp      HOST PORT INFLIGHT SECONDS      INFLIGHT datagrams of 64 bytes in flight (one per socket);
 *                                                    each carries a sequence number and only the echo of a
 *                                                    socket's latest datagram counts and sends the next, so a
 *                                                    resend after 0.2 s (a lost or late datagram) never leaves
 *                                                    more than INFLIGHT in flight for long
 *   loadgen udp      HOST PORT INFLIGHT SECONDS GAP  the same, pausing GAP microseconds after each echo before
 *                                                    the next datagram: with INFLIGHT 1 the server finds its
 *                                                    socket empty after each reply and sleeps per datagram
 *
 * Prints one JSON line: requests, seconds, rate, p50/p99/p999 latency (microseconds), errors, and the CPU
 * seconds the generator itself used (when it is near `seconds`, the generator was the bottleneck).
 * Only loopback addresses are accepted.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MESSAGE 64
#define HISTOGRAM_US 2000000 /* latencies up to 2 s at 1 µs resolution; longer ones land in the last bucket */

static uint32_t *histogram;
static uint64_t completed, errors, all_completed; /* all_completed counts the warm-up too */
static struct sockaddr_storage target;
static socklen_t target_length;
static char payload[MESSAGE];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void record(double started) {
    uint64_t us = (uint64_t)((now() - started) * 1e6);
    histogram[us < HISTOGRAM_US ? us : HISTOGRAM_US - 1]++;
    completed++;
    all_completed++;
}

static double percentile(double p) {
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < HISTOGRAM_US; i++) total += histogram[i];
    if (total == 0) return 0;
    uint64_t rank = (uint64_t)(p * total);
    for (int i = 0; i < HISTOGRAM_US; i++) {
        seen += histogram[i];
        if (seen > rank) return i;
    }
    return HISTOGRAM_US;
}

static void reset_stats(void) {
    memset(histogram, 0, sizeof(uint32_t) * HISTOGRAM_US);
    completed = errors = 0;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

static void report(const char *workload, int parallel, double seconds, double cpu) {
    printf("{\"workload\": \"%s\", \"parallel\": %d, \"requests\": %llu, \"seconds\": %.3f, \"rate\": %.1f, "
           "\"p50_us\": %.0f, \"p99_us\": %.0f, \"p999_us\": %.0f, \"errors\": %llu, \"generator_cpu\": %.3f, "
           "\"all_requests\": %llu}\n",
           workload, parallel, (unsigned long long)completed, seconds, completed / seconds, percentile(0.5),
           percentile(0.99), percentile(0.999), (unsigned long long)errors, cpu, (unsigned long long)all_completed);
    fflush(stdout);
}

static int new_socket(int type) {
    int fd = socket(target.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("socket"); exit(1); }
    if (type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* One connection (or UDP socket) of a workload. */
struct conn {
    int fd;
    int received;   /* bytes of the echo so far */
    int connected;
    int udp;
    uint32_t sequence; /* UDP: the number in the latest datagram sent; an echo of an older one is ignored */
    double started; /* when the current request (or connection, for churn) began */
};

static int epoll_fd;

static void watch(struct conn *c, uint32_t events, int op) {
    struct epoll_event event = {.events = events, .data.ptr = c};
    if (epoll_ctl(epoll_fd, op, c->fd, &event) < 0) { perror("epoll_ctl"); exit(1); }
}

static int send_request(struct conn *c) {
    c->received = 0;
    c->started = now();
    char message[MESSAGE];
    memcpy(message, payload, MESSAGE);
    if (c->udp) memcpy(message, &(uint32_t){++c->sequence}, sizeof c->sequence);
    ssize_t n = send(c->fd, message, MESSAGE, MSG_NOSIGNAL);
    return n == MESSAGE ? 0 : -1;
}

/* Reads what is there; returns 1 when the whole echo has arrived, 0 when more is due, -1 on error. */
static int read_echo(struct conn *c) {
    char buffer[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buffer, sizeof buffer, 0);
        if (n > 0 && c->udp && (n != MESSAGE || memcmp(buffer, &c->sequence, sizeof c->sequence))) continue;
        if (n > 0) {
            c->received += n;
            if (c->received >= MESSAGE) return 1;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
}

static void start_connect(struct conn *c) {
    c->fd = new_socket(SOCK_STREAM);
    c->connected = 0;
    c->started = now();
    if (connect(c->fd, (struct sockaddr *)&target, target_length) < 0 && errno != EINPROGRESS) {
        errors++;
        close(c->fd);
        c->fd = -1;
        return;
    }
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void run(const char *workload, int parallel, double seconds, long gap_us) {
    struct conn *conns = calloc(parallel, sizeof *conns);
    struct epoll_event events[256];
    int is_churn = !strcmp(workload, "churn"), is_udp = !strcmp(workload, "udp");
    for (int i = 0; i < parallel; i++) {
        if (is_udp) {
            conns[i].fd = new_socket(SOCK_DGRAM);
            conns[i].udp = 1;
            connect(conns[i].fd, (struct sockaddr *)&target, target_length);
            watch(&conns[i], EPOLLIN, EPOLL_CTL_ADD);
            send_request(&conns[i]);
        } else {
            start_connect(&conns[i]);
        }
    }
    double warmup_end = now() + 0.5, end = warmup_end + seconds, cpu_start = 0;
    int warm = 0;
    while (1) {
        double t = now();
        if (!warm && t >= warmup_end) {
            reset_stats();
            warm = 1;
            cpu_start = cpu_seconds();
            printf("measuring\n"); /* the runner samples the server's CPU time now */
            fflush(stdout);
        }
        if (t >= end) break;
        int ready = epoll_wait(epoll_fd, events, 256, 10);
        for (int e = 0; e < ready; e++) {
            struct conn *c = events[e].data.ptr;
            if (!is_udp && !c->connected) {
                int error = 0;
                socklen_t length = sizeof error;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &length);
                if (error) { errors++; close(c->fd); start_connect(c); continue; }
                c->connected = 1;
                watch(c, EPOLLIN, EPOLL_CTL_MOD);
                double began = c->started;
                if (send_request(c) < 0) { errors++; close(c->fd); start_connect(c); continue; }
                if (is_churn) c->started = began; /* churn measures from connect */
                continue;
            }
            int state = read_echo(c);
            if (state == 0) continue;
            if (state < 0) {
                errors++;
                if (is_udp) { send_request(c); continue; }
                close(c->fd);
                start_connect(c);
                continue;
            }
            record(c->started);
            if (gap_us > 0) {
                struct timespec gap = {.tv_sec = gap_us / 1000000, .tv_nsec = gap_us % 1000000 * 1000};
                nanosleep(&gap, NULL);
            }
            if (is_churn) { close(c->fd); start_connect(c); }
            else if (send_request(c) < 0) { errors++; close(c->fd); start_connect(c); }
        }
        if (is_udp) { /* a lost datagram: count it and send another */
            double t2 = now();
            for (int i = 0; i < parallel; i++)
                if (t2 - conns[i].started > 0.2) { errors++; send_request(&conns[i]); }
        }
    }
    report(workload, parallel, seconds, cpu_seconds() - cpu_start);
}

/* Opens `count` connections, holds them until a line arrives on stdin, then checks each answers once. */
static void idle(int count) {
    int *fds = malloc(sizeof(int) * count);
    int held = 0;
    for (int i = 0; i < count; i++) {
        int fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&target, target_length) < 0) { errors++; fds[i] = -1; if (fd >= 0) close(fd); continue; }
        fds[i] = fd;
        held++;
    }
    printf("held %d\n", held);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return;
    double started = now(), cpu_start = cpu_seconds();
    for (int i = 0; i < count; i++) {
        if (fds[i] < 0) continue;
        struct timeval timeout = {.tv_sec = 5};
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        double one = now();
        char buffer[MESSAGE];
        int got = 0;
        if (send(fds[i], payload, MESSAGE, MSG_NOSIGNAL) == MESSAGE) {
            while (got < MESSAGE) {
                ssize_t n = recv(fds[i], buffer, MESSAGE - got, 0);
                if (n <= 0) break;
                got += n;
            }
        }
        if (got == MESSAGE) record(one); else errors++;
        close(fds[i]);
    }
    report("idle", count, now() - started, cpu_seconds() - cpu_start);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: loadgen pingpong|churn|udp HOST PORT PARALLEL SECONDS [GAP_US (udp)] | "
                        "loadgen idle HOST PORT COUNT\n");
        return 2;
    }
    const char *workload = argv[1], *host = argv[2];
    int port = atoi(argv[3]), parallel = atoi(argv[4]);
    memset(payload, 'x', MESSAGE);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&target;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&target;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1 && (ntohl(v4->sin_addr.s_addr) >> 24) == 127) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        target_length = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1 && IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        target_length = sizeof *v6;
    } else {
        fprintf(stderr, "loadgen: only loopback targets (127.0.0.0/8, ::1)\n");
        return 2;
    }
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    histogram = calloc(HISTOGRAM_US, sizeof(uint32_t));
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (!strcmp(workload, "idle")) { idle(parallel); return 0; }
    if (argc < 6) { fprintf(stderr, "loadgen: SECONDS missing\n"); return 2; }
    run(workload, parallel, atof(argv[5]), argc > 6 ? atol(argv[6]) : 0);
    return 0;
}
