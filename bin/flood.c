/*
 * flood: a bounded flood of peerd beacons and garbage at a multicast group, for bin/flood-test
 * and tests/flood.rs. Built on demand by them: cc -O2 -o flood bin/flood.c
 *
 *   flood --interface ADDR [--group 239.255.49.1] [--port 24901] [--seconds 5] [--rate 0]
 *         [--names 1000000] [--garbage-every 4] [--seed 1] [--count 0] [--ttl-ms 0]
 *         [--hostname NAME]
 *
 * Sends, for --seconds, valid version-1 beacons (docs/wire-format.md) from --names distinct
 * made-up hostnames (flood-0000000, flood-0000001, ... cycled through, each with an instance of
 * its own and a sequence number that grows by one per lap, so a name heard again is a renewal)
 * and, every --garbage-every'th datagram, garbage: random bytes, half of them behind a valid
 * magic and version. --rate caps datagrams per second (0: as fast as the kernel takes them).
 * --count stops after that many datagrams (0: when --seconds are over). --ttl-ms puts the ttl
 * field in every beacon, asking to stay listed that long (0: no field). --hostname makes every
 * beacon claim that one hostname, each from an instance of its own at sequence 0: the shape of
 * a sender that would flood a victim's log with its own hostname.
 * Datagrams go out in batches with sendmmsg(2). At the end it prints what it sent and the rate,
 * and a last line of key=value pairs for scripts.
 *
 * Network safety: the multicast TTL is 0, so no datagram leaves the host; they reach only the
 * sockets that joined the group on the interface given, through multicast loopback. And it
 * refuses an interface outside 127.0.0.0/8 unless it runs in a network namespace other than
 * the one of PID 1 (one a test made for it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_DATAGRAM 600 /* past the agent's 512-byte limit: oversized garbage too */
#define MAX_BATCH 64
#define HOSTNAME_LEN 13 /* "flood-" and seven digits */

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

/* splitmix64: a fixed, fast mixing of a counter; instances and garbage need no better. */
static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void put_u64(unsigned char *at, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        at[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* A version-1 beacon from made-up host `name`, its lap-th, asking for `ttl_ms` if not 0; with
 * `claimed`, that hostname from an instance of its own instead. Returns its length. */
static size_t beacon(unsigned char *out, uint64_t name, uint64_t lap, uint64_t seed,
                     uint32_t ttl_ms, const char *claimed) {
    memcpy(out, "PEER", 4);
    out[4] = 1; /* version */
    out[5] = 0; /* flags: not a goodbye */
    put_u64(out + 6, mix(seed ^ (name << 1)));
    put_u64(out + 14, claimed ? 0 : lap);
    size_t len;
    if (claimed) {
        len = strlen(claimed);
        memcpy(out + 23, claimed, len);
    } else {
        char host[HOSTNAME_LEN + 1];
        snprintf(host, sizeof host, "flood-%07llu", (unsigned long long)(name % 10000000));
        len = HOSTNAME_LEN;
        memcpy(out + 23, host, len);
    }
    out[22] = (unsigned char)len;
    size_t at = 23 + len;
    if (ttl_ms > 0) {
        /* The ttl field: type 1, length 4, u32 milliseconds, all big-endian. */
        out[at++] = 1;
        out[at++] = 0;
        out[at++] = 4;
        for (int shift = 24; shift >= 0; shift -= 8) out[at++] = (unsigned char)(ttl_ms >> shift);
    }
    return at;
}

/* Garbage: 1 to MAX_DATAGRAM random bytes, every other one behind "PEER" and version 1 so the
 * decoder gets past the magic; returns its length. */
static size_t garbage(unsigned char *out, uint64_t n, uint64_t seed) {
    uint64_t r = mix(seed ^ 0x6761726261676500ULL ^ n);
    size_t len = 1 + (size_t)(r % MAX_DATAGRAM);
    for (size_t i = 0; i < len; i += 8) {
        unsigned char word[8];
        put_u64(word, mix(r + i));
        memcpy(out + i, word, len - i < 8 ? len - i : 8);
    }
    if (n % 2 == 0 && len >= 5) {
        memcpy(out, "PEER\x01", 5);
    }
    return len;
}

static int is_isolated_netns(void) {
    struct stat own, init;
    if (stat("/proc/self/ns/net", &own) != 0 || stat("/proc/1/ns/net", &init) != 0) {
        return 0;
    }
    return own.st_ino != init.st_ino || own.st_dev != init.st_dev;
}

static void usage(const char *why) {
    fprintf(stderr,
            "flood: %s\n"
            "usage: flood --interface ADDR [--group 239.255.49.1] [--port 24901] [--seconds 5]\n"
            "             [--rate DATAGRAMS_PER_S, 0 = unlimited] [--names 1000000]\n"
            "             [--garbage-every 4, 0 = none] [--seed 1] [--count 0 = unbounded]\n"
            "             [--ttl-ms 0 = no ttl field] [--hostname NAME]\n",
            why);
    exit(2);
}

static unsigned long long number(const char *flag, const char *value) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (errno || *end || !*value || value[0] == '-') {
        fprintf(stderr, "flood: %s wants a whole number, not %s\n", flag, value);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv) {
    const char *group = "239.255.49.1", *interface = NULL;
    unsigned long long port = 24901, seconds = 5, rate = 0, names = 1000000, garbage_every = 4,
                       seed = 1, count = 0, ttl_ms = 0;
    const char *claimed = NULL;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (i + 1 >= argc) usage("every flag takes a value");
        const char *value = argv[++i];
        if (!strcmp(flag, "--interface")) interface = value;
        else if (!strcmp(flag, "--group")) group = value;
        else if (!strcmp(flag, "--port")) port = number(flag, value);
        else if (!strcmp(flag, "--seconds")) seconds = number(flag, value);
        else if (!strcmp(flag, "--rate")) rate = number(flag, value);
        else if (!strcmp(flag, "--names")) names = number(flag, value);
        else if (!strcmp(flag, "--garbage-every")) garbage_every = number(flag, value);
        else if (!strcmp(flag, "--seed")) seed = number(flag, value);
        else if (!strcmp(flag, "--count")) count = number(flag, value);
        else if (!strcmp(flag, "--ttl-ms")) ttl_ms = number(flag, value);
        else if (!strcmp(flag, "--hostname")) claimed = value;
        else usage("unknown flag");
    }
    if (!interface) usage("--interface is required");
    if (port == 0 || port > 65535) usage("--port must be 1..65535");
    if (seconds == 0 || seconds > 3600) usage("--seconds must be 1..3600: a flood is bounded");
    if (names == 0 || names > 10000000) usage("--names must be 1..10000000");
    if (ttl_ms > 4294967295ULL) usage("--ttl-ms must fit 32 bits");
    if (claimed && (strlen(claimed) == 0 || strlen(claimed) > 253))
        usage("--hostname must be 1..253 bytes");

    struct in_addr group_addr, if_addr;
    if (inet_pton(AF_INET, group, &group_addr) != 1 || !IN_MULTICAST(ntohl(group_addr.s_addr)))
        usage("--group must be an IPv4 multicast address");
    if (inet_pton(AF_INET, interface, &if_addr) != 1) usage("--interface must be an IPv4 address");
    int loopback = (ntohl(if_addr.s_addr) >> 24) == 127;
    if (!loopback && !is_isolated_netns()) {
        fprintf(stderr,
                "flood: refusing to flood from %s in the machine's own network namespace; "
                "run it inside one of its own (ip netns exec) or use 127.0.0.1\n",
                interface);
        return 2;
    }

    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    if (sock < 0) {
        perror("flood: socket");
        return 1;
    }
    unsigned char ttl = 0, loop = 1;
    struct sockaddr_in source = {.sin_family = AF_INET, .sin_addr = if_addr, .sin_port = 0};
    if (setsockopt(sock, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0 ||
        setsockopt(sock, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0 ||
        setsockopt(sock, IPPROTO_IP, IP_MULTICAST_IF, &if_addr, sizeof if_addr) != 0 ||
        bind(sock, (struct sockaddr *)&source, sizeof source) != 0) {
        perror("flood: setting up the socket");
        return 1;
    }
    struct sockaddr_in target = {
        .sin_family = AF_INET, .sin_addr = group_addr, .sin_port = htons((uint16_t)port)};

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* Small batches at a low rate, so the flood is spread out rather than sent in bursts. */
    size_t batch = MAX_BATCH;
    if (rate > 0 && rate / 1000 < MAX_BATCH) batch = rate / 1000 > 0 ? rate / 1000 : 1;

    static unsigned char buffers[MAX_BATCH][MAX_DATAGRAM];
    struct iovec iov[MAX_BATCH];
    struct mmsghdr msgs[MAX_BATCH];
    memset(msgs, 0, sizeof msgs);
    for (size_t i = 0; i < MAX_BATCH; i++) {
        iov[i].iov_base = buffers[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &target;
        msgs[i].msg_hdr.msg_namelen = sizeof target;
    }

    uint64_t made = 0, sent = 0, beacons = 0, garbage_sent = 0, errors = 0;
    uint64_t next_name = 0; /* beacons made so far: name = n % names, lap = n / names */
    int is_garbage[MAX_BATCH];
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    double elapsed = 0;
    while (!stop && (elapsed = seconds_since(&start)) < (double)seconds &&
           (count == 0 || made < count)) {
        if (rate > 0 && (double)sent > elapsed * (double)rate) {
            double ahead = (double)sent / (double)rate - elapsed;
            struct timespec pause = {(time_t)ahead, (long)((ahead - (double)(time_t)ahead) * 1e9)};
            nanosleep(&pause, NULL);
            continue;
        }
        size_t this_batch = batch;
        if (count > 0 && count - made < this_batch) this_batch = (size_t)(count - made);
        for (size_t i = 0; i < this_batch; i++, made++) {
            is_garbage[i] = garbage_every > 0 && made % garbage_every == garbage_every - 1;
            if (is_garbage[i]) {
                iov[i].iov_len = garbage(buffers[i], made, seed);
            } else {
                iov[i].iov_len = beacon(buffers[i], next_name % names, next_name / names, seed,
                                        (uint32_t)ttl_ms, claimed);
                next_name++;
            }
        }
        size_t done = 0;
        while (done < this_batch) {
            int n = sendmmsg(sock, msgs + done, (unsigned)(this_batch - done), 0);
            if (n < 0) {
                if (errno == EINTR && stop) break;
                /* A full queue drops this one; the flood goes on. */
                errors++;
                done++;
                continue;
            }
            for (int i = 0; i < n; i++) {
                if (is_garbage[done + (size_t)i]) garbage_sent++;
                else beacons++;
            }
            done += (size_t)n;
            sent += (uint64_t)n;
        }
    }
    elapsed = seconds_since(&start);
    uint64_t distinct = next_name < names ? next_name : names;
    printf("flood: sent %llu datagrams in %.1f s (%.0f/s): %llu beacons from %llu distinct "
           "hostnames, %llu garbage; %llu send errors\n",
           (unsigned long long)sent, elapsed, (double)sent / elapsed, (unsigned long long)beacons,
           (unsigned long long)distinct, (unsigned long long)garbage_sent,
           (unsigned long long)errors);
    printf("sent=%llu beacons=%llu garbage=%llu names=%llu seconds=%.3f rate=%.0f errors=%llu\n",
           (unsigned long long)sent, (unsigned long long)beacons,
           (unsigned long long)garbage_sent, (unsigned long long)distinct, elapsed,
           (double)sent / elapsed, (unsigned long long)errors);
    return 0;
}
