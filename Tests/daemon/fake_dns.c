/* An LD_PRELOAD shim for the Redis lookup tests (test_redis_lookup.py compiles it into .build/): two made-up
 * names answered without DNS, everything else forwarded to the real getaddrinfo (dlsym RTLD_NEXT).
 *
 *   slow.redis.test     127.0.0.1, after sleeping FAKE_DNS_SLOW_SECONDS (3 when unset): a resolver that is
 *                       slow to answer
 *   twofold.redis.test  ::1 then 127.0.0.1 (as `localhost` resolves on many hosts): a client that tries only
 *                       the first address misses a Redis listening on 127.0.0.1 only
 *   missing.redis.test  no address (EAI_NONAME), at once
 *   moving.redis.test   the address written in the file FAKE_DNS_MOVING_FILE (read at each lookup): a name
 *                       whose address changes
 *
 * Each answer is the real getaddrinfo's for the numeric addresses (with the caller's hints), chained, so
 * glibc's freeaddrinfo frees it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static int answer(getaddrinfo_fn real, const char *const *addresses, const char *service,
                  const struct addrinfo *hints, struct addrinfo **result) {
    struct addrinfo *head = NULL, **tail = &head;
    for (; *addresses != NULL; addresses++) {
        struct addrinfo *found = NULL;
        if (real(*addresses, service, hints, &found) != 0) continue;  /* a family the hints exclude */
        *tail = found;
        while (*tail != NULL) tail = &(*tail)->ai_next;
    }
    *result = head;
    return head != NULL ? 0 : EAI_NONAME;
}

/* The first line of FAKE_DNS_MOVING_FILE, into `address` (empty when there is none). */
static void moving_address(char *address, size_t size) {
    const char *path = getenv("FAKE_DNS_MOVING_FILE");
    FILE *file = path != NULL ? fopen(path, "r") : NULL;
    address[0] = 0;
    if (file == NULL) return;
    if (fgets(address, (int)size, file) == NULL) address[0] = 0;
    address[strcspn(address, "\r\n")] = 0;
    fclose(file);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **result) {
    getaddrinfo_fn real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    static const char *const slow[] = {"127.0.0.1", NULL};
    static const char *const twofold[] = {"::1", "127.0.0.1", NULL};
    static const char *const missing[] = {NULL};
    if (node != NULL && strcmp(node, "slow.redis.test") == 0) {
        const char *seconds = getenv("FAKE_DNS_SLOW_SECONDS");
        sleep(seconds != NULL ? (unsigned)atoi(seconds) : 3);
        return answer(real, slow, service, hints, result);
    }
    if (node != NULL && strcmp(node, "twofold.redis.test") == 0) return answer(real, twofold, service, hints, result);
    if (node != NULL && strcmp(node, "missing.redis.test") == 0) return answer(real, missing, service, hints, result);
    if (node != NULL && strcmp(node, "moving.redis.test") == 0) {
        char address[64];
        moving_address(address, sizeof address);
        const char *const moving[] = {address[0] != 0 ? address : NULL, NULL};
        return answer(real, moving, service, hints, result);
    }
    return real(node, service, hints, result);
}
