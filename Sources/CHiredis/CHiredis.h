// CHiredis: Debian's hiredis (libhiredis-dev) as Swift sees it, for EvServerRedis.
//
// hiredis's libev adapter (<hiredis/adapters/libev.h>) is a header of `static` functions, and the commands
// Swift would call are variadic; both are wrapped here in `static inline` functions named
// `CHiredis_<original>` (a system-library target has no .c files), as CLibEv does for libev's macros.
// Nothing else belongs here.
#ifndef C_HIREDIS_H
#define C_HIREDIS_H

#include <ev.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

typedef void (*CHiredis_callback)(redisAsyncContext *context, void *reply, void *privdata);
typedef void (*CHiredis_connect_callback)(const redisAsyncContext *context, int status);

/// Attaches `context` to the libev loop `loop`: its reads and writes become two ev_io watchers there.
/// Call on the loop's thread.
static inline int CHiredis_redisLibevAttach(struct ev_loop *loop, redisAsyncContext *context) {
    return redisLibevAttach(loop, context);
}

/// The connect and disconnect callbacks (both have the same C type: one typedef serves both).
static inline void CHiredis_setCallbacks(redisAsyncContext *context, CHiredis_connect_callback connected,
                                         CHiredis_connect_callback disconnected) {
    redisAsyncSetConnectCallback(context, connected);
    redisAsyncSetDisconnectCallback(context, disconnected);
}

/// The `n`th element of an array reply, or NULL past its end.
static inline redisReply *CHiredis_element(const redisReply *reply, size_t n) {
    return reply != NULL && reply->type == REDIS_REPLY_ARRAY && n < reply->elements ? reply->element[n] : NULL;
}

/// Why the connection failed: the async context's error, else its inner context's (a failed connect sets
/// only that one before the connect callback runs); NULL when neither is set.
static inline const char *CHiredis_errstr(const redisAsyncContext *context) {
    if (context->err != 0 && context->errstr != NULL) return context->errstr;
    return context->c.err != 0 ? context->c.errstr : NULL;
}

/// `INCR key` on a blocking connection of its own to host:port, which may take `timeout_ms` to connect and
/// as long to answer: the counter's new value, or -1 when Redis cannot be reached or answers otherwise.
/// For a number handed out once at start (a node number), not for the serving path.
static inline long long CHiredis_increment(const char *host, int port, int timeout_ms, const char *key) {
    struct timeval timeout = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    redisContext *context = redisConnectWithTimeout(host, port, timeout);
    if (context == NULL) return -1;
    if (context->err != 0) {
        redisFree(context);
        return -1;
    }
    redisSetTimeout(context, timeout);
    redisReply *reply = redisCommand(context, "INCR %s", key);
    long long value = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply != NULL) freeReplyObject(reply);
    redisFree(context);
    return value;
}

#endif // C_HIREDIS_H
