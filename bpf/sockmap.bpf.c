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
 * back and not yet read by user space (twice the socket's receive
 * buffer plus 4 MiB, read live) the program says so
 * (SOCKMAP_NOTE_OVERFLOW) and user space ends the session.
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

/* The socket's receive buffer (struct sock is the first member of
 * tcp_sock, nested; CO-RE relocates the field). */
struct sock {
	int sk_rcvbuf;
} __attribute__((preserve_access_index));

/* Tells user space, and only then lets it see what it is told about:
 * the record is published (submit) after the caller's stores. */
static struct sockmap_note *sg_note_reserve(__u64 cookie, __u32 what)
{
	struct sockmap_note *n = bpf_ringbuf_reserve(&sg_note, sizeof(*n), 0);

	if (n != NULL) {
		n->cookie = cookie;
		n->what = what;
		n->pad = 0;
	}
	return n;
}

/* A socket of the maps (by cookie) as TCP sees it: what was written into
 * its stream (as user space counts it) and its receive buffer.  -1 if
 * it is not there. */
static int sg_tcp(__u64 cookie, __u64 *written, __u64 *rcvbuf)
{
	struct bpf_sock *sk = bpf_map_lookup_elem(&sg_dst, &cookie);
	struct tcp_sock *tp;
	int rc = -1;

	if (sk == NULL)
		return rc;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp != NULL) {
		*written =
			tp->bytes_acked + (__u32)(tp->write_seq - tp->snd_una);
		*rcvbuf = (__u32)((struct sock *)tp)->sk_rcvbuf;
		rc = 0;
	}
	bpf_sk_release(sk);
	return rc;
}

/* Held back and unread above which no receive buffer accounts for it:
 * twice the socket's buffer as it is now (TCP grows it) plus 4 MiB; the
 * loader's sg_overflow if the socket cannot be looked at. */
static __u64 sg_limit(__u64 cookie)
{
	__u64 w, rb;

	if (sg_tcp(cookie, &w, &rb) < 0 || rb == 0)
		return sg_overflow;
	return 2 * rb + (4ULL << 20);
}

SEC("sk_skb/stream_verdict")
int sg_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct sockmap_note *n;
	struct sockmap_user *u;
	struct sockmap_peer *p;
	__u64 w, rb, done, read, len = skb->len;

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
	if (p->hold) {
		/* Until user space wrote all that was held back: what came
		 * after it must not overtake it. */
		if (done != p->passed)
			goto pass;
		p->hold = 0;
	}
	if (sg_tcp(p->peer, &w, &rb) < 0)
		w = ~0ULL;
	/* Sent and not yet in the peer's stream: sent minus what the
	 * peer's stream got but user space's writes.  Held back only if
	 * user space will know (a notice could be reserved on the ring),
	 * and the notice is published after the hold is in place. */
	if (w != ~0ULL &&
	    (__s64)(p->bytes - p->passed - (w - p->wbase - done)) >
		    SOCKMAP_BACKLOG &&
	    (n = sg_note_reserve(cookie, SOCKMAP_NOTE_HOLD)) != NULL) {
		p->hold = 1;
		p->bytes += len;
		p->passed += len;
		bpf_ringbuf_submit(n, 0);
		return SK_PASS;
	}
	p->bytes += len;
	return bpf_sk_redirect_hash(skb, &sg_dst, &p->peer, 0);
pass:
	p->bytes += len;
	p->passed += len;
	if (!(p->flags & SOCKMAP_OVERFLOW_NOTED) &&
	    p->passed - read > sg_limit(cookie) &&
	    (n = sg_note_reserve(cookie, SOCKMAP_NOTE_OVERFLOW)) != NULL) {
		p->flags |= SOCKMAP_OVERFLOW_NOTED;
		bpf_ringbuf_submit(n, 0);
	}
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
