/*
 * sockmap.bpf.c: the CONNECT relay in the kernel (loaded by
 * daemon/sockmap.c).  A stream verdict program runs on every socket of
 * sg_src when data arrives, and sends the data to the socket's peer in
 * sg_dst; sg_peer, keyed by socket cookie, names the peer and counts the
 * bytes taken.
 *
 * Two socket maps, because a session's two sockets cannot enter one map
 * at once: a socket in a map with the verdict program has its data
 * redirected from then on, so its peer must already be a target.  Both
 * sockets go into sg_dst (no program: they only become targets), then
 * each into sg_src.
 *
 * Back-pressure: the kernel queues redirected data toward a socket that
 * cannot send without bound (the sender's window stays open: redirected
 * data no longer counts against its receive buffer).  So the program
 * compares what it sent from a socket with what was written into the
 * peer's stream, and past SOCKMAP_BACKLOG holds that socket's data back
 * (SK_PASS: it stays in the socket's own queue, which counts against its
 * receive buffer, and TCP closes the window, as with splice) and tells
 * user space on sg_note.  User space reads what was held back (after
 * what was sent before it went out) and writes it to the peer, counting
 * it in sg_user; once it wrote all (done == passed), the next data that
 * arrives is sent on by the program again.
 *
 * The bound has one hole: a held-back skb goes to the socket's readable
 * queue (counted) only while its psock's work queue is empty; that queue
 * also holds the other direction's data waiting to be sent out of this
 * socket, so when both directions are stalled, held-back skbs queue
 * there uncounted and the window stays open (a client that never reads
 * and sends made the kernel hold 400 MB).  So past sg_overflow bytes held
 * back and not yet read by user space (user space sets it per socket
 * from its receive buffer) the program says so (SOCKMAP_NOTE_OVERFLOW)
 * and user space ends the session.
 *
 * Why not take the socket out of sg_src to pause it: the kernel drops
 * an skb whose data-ready run finds the program gone (sk_psock_verdict_
 * recv: no program means SK_DROP), so a pause racing an arrival lost
 * one skb (64 KB) in some slow-reader runs.
 *
 * Must not: keep state beyond sg_peer, write sg_user.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "sockmap_bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SOCKMAP_MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u64);
} sg_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SOCKMAP_MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u64);
} sg_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SOCKMAP_MAX_SOCKETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct sockmap_peer);
} sg_peer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SOCKMAP_MAX_SOCKETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct sockmap_user);
} sg_user SEC(".maps");

/* Set by the loader before the load: 2 x net.ipv4.tcp_rmem's maximum +
 * 4 MiB, above what a receive buffer can hold. */
const volatile __u64 sg_overflow = 16 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SOCKMAP_NOTE_RING);
} sg_note SEC(".maps");

/* The fields read from the peer's TCP socket; their offsets are the
 * running kernel's (CO-RE: libbpf relocates them from its BTF). */
struct tcp_sock {
	__u64 bytes_acked;
	__u32 snd_una;
	__u32 write_seq;
} __attribute__((preserve_access_index));

/* Written into the peer's stream so far: as user space counts it. */
static __u64 sg_written(struct sockmap_peer *p)
{
	struct bpf_sock *sk = bpf_map_lookup_elem(&sg_dst, &p->peer);
	struct tcp_sock *tp;
	__u64 w = ~0ULL;

	if (sk == NULL)
		return w;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp != NULL)
		w = tp->bytes_acked + (__u32)(tp->write_seq - tp->snd_una);
	bpf_sk_release(sk);
	return w;
}

SEC("sk_skb/stream_verdict")
int sg_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct sockmap_note n = {.cookie = cookie};
	struct sockmap_user *u;
	struct sockmap_peer *p;
	__u64 w, done, read, limit, len = skb->len;

	/* A FIN comes as an empty skb: nothing to send (user space sees
	 * the EOF and shuts the peer down once its data went out). */
	if (len == 0)
		return SK_DROP;
	p = bpf_map_lookup_elem(&sg_peer, &cookie);
	if (p == NULL)
		return SK_DROP; /* never while the session lives */
	u = bpf_map_lookup_elem(&sg_user, &cookie);
	done = u != NULL ? u->done : 0;
	read = u != NULL ? u->read : 0;
	limit = u != NULL && u->limit != 0 ? u->limit : sg_overflow;
	if (p->hold) {
		/* Until user space wrote all that was held back: what came
		 * after it must not overtake it. */
		if (done != p->passed)
			goto pass;
		p->hold = 0;
	}
	w = sg_written(p);
	/* Sent and not yet in the peer's stream: sent minus what the
	 * peer's stream got but user space's writes.  Held back only if
	 * user space will know (the notice went on the ring). */
	n.what = SOCKMAP_NOTE_HOLD;
	if (w != ~0ULL &&
	    (__s64)(p->bytes - p->passed - (w - p->wbase - done)) >
		    SOCKMAP_BACKLOG &&
	    bpf_ringbuf_output(&sg_note, &n, sizeof(n), 0) == 0) {
		p->hold = 1;
		goto pass;
	}
	p->bytes += len;
	return bpf_sk_redirect_hash(skb, &sg_dst, &p->peer, 0);
pass:
	p->bytes += len;
	p->passed += len;
	n.what = SOCKMAP_NOTE_OVERFLOW;
	if (!(p->flags & SOCKMAP_OVERFLOW_NOTED) && p->passed - read > limit &&
	    bpf_ringbuf_output(&sg_note, &n, sizeof(n), 0) == 0)
		p->flags |= SOCKMAP_OVERFLOW_NOTED;
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
