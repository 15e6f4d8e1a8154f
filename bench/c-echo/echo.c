/*
 * The benchmark's ceiling: a plain C echo server on libev, one loop, one thread, what a careful C
 * programmer writes in an afternoon. TCP echo (a 64 KiB read buffer per wakeup, writes straight back,
 * a small per-connection queue when the kernel takes less) and UDP echo on the same port.
 *
 *   c-echo PORT     prints "listening tcp://127.0.0.1:PORT" when ready (PORT 0: a free port)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct connection {
    ev_io watcher;
    char *pending; /* bytes the kernel did not take yet */
    size_t pending_length;
};

static char buffer[65536];

static void close_connection(struct ev_loop *loop, struct connection *c) {
    ev_io_stop(loop, &c->watcher);
    close(c->watcher.fd);
    free(c->pending);
    free(c);
}

static void connection_cb(struct ev_loop *loop, ev_io *w, int revents) {
    struct connection *c = (struct connection *)w;
    if (revents & EV_WRITE) {
        ssize_t n = send(w->fd, c->pending, c->pending_length, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) { close_connection(loop, c); return; }
        if (n > 0) {
            memmove(c->pending, c->pending + n, c->pending_length - n);
            c->pending_length -= n;
        }
        if (c->pending_length == 0) {
            ev_io_stop(loop, w);
            ev_io_set(w, w->fd, EV_READ);
            ev_io_start(loop, w);
        }
        return;
    }
    ssize_t n = recv(w->fd, buffer, sizeof buffer, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN)) { close_connection(loop, c); return; }
    if (n < 0) return;
    ssize_t sent = send(w->fd, buffer, n, MSG_NOSIGNAL);
    if (sent < 0 && errno != EAGAIN) { close_connection(loop, c); return; }
    if (sent < 0) sent = 0;
    if (sent < n) { /* queue the rest and stop reading until it is gone */
        c->pending = realloc(c->pending, c->pending_length + (n - sent));
        memcpy(c->pending + c->pending_length, buffer + sent, n - sent);
        c->pending_length += n - sent;
        ev_io_stop(loop, w);
        ev_io_set(w, w->fd, EV_WRITE);
        ev_io_start(loop, w);
    }
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct connection *c = calloc(1, sizeof *c);
        ev_io_init(&c->watcher, connection_cb, fd, EV_READ);
        ev_io_start(loop, &c->watcher);
    }
}

static void udp_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop; (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage from;
        socklen_t length = sizeof from;
        ssize_t n = recvfrom(w->fd, buffer, sizeof buffer, 0, (struct sockaddr *)&from, &length);
        if (n < 0) return;
        sendto(w->fd, buffer, n, 0, (struct sockaddr *)&from, length);
    }
}

static int bound_socket(int type, int port) {
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) { perror("bind"); exit(1); }
    return fd;
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents) { (void)w; (void)revents; ev_break(loop, EVBREAK_ALL); }

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = EV_DEFAULT;
    int listener = bound_socket(SOCK_STREAM, port);
    listen(listener, SOMAXCONN);
    struct sockaddr_in bound;
    socklen_t length = sizeof bound;
    getsockname(listener, (struct sockaddr *)&bound, &length);
    int udp = bound_socket(SOCK_DGRAM, ntohs(bound.sin_port));
    ev_io accept_watcher, udp_watcher;
    ev_io_init(&accept_watcher, accept_cb, listener, EV_READ);
    ev_io_start(loop, &accept_watcher);
    ev_io_init(&udp_watcher, udp_cb, udp, EV_READ);
    ev_io_start(loop, &udp_watcher);
    ev_signal term, interrupt;
    ev_signal_init(&term, stop_cb, SIGTERM);
    ev_signal_start(loop, &term);
    ev_signal_init(&interrupt, stop_cb, SIGINT);
    ev_signal_start(loop, &interrupt);
    printf("listening tcp://127.0.0.1:%d\nlistening udp://127.0.0.1:%d\n", ntohs(bound.sin_port), ntohs(bound.sin_port));
    fflush(stdout);
    ev_run(loop, 0);
    return 0;
}
