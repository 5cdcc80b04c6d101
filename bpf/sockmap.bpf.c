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
 * cannot send without bound (the sender's window stays open).  So the
 * program compares what it took from a socket with what was written into
 * the peer's stream since the start, and past SOCKMAP_BACKLOG asks user
 * space (sg_note) to take the socket out of sg_src: its data then waits
 * in its own receive queue and TCP closes the window, as with splice.
 * The requests repeat with every skb until that is done.
 *
 * Must not: pass data to user space (SK_PASS would queue it in the
 * socket's own psock, out of order with what user space reads), or keep
 * state beyond sg_peer.
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
	struct sockmap_peer *p;
	__u64 w;

	/* A FIN comes as an empty skb: nothing to send (user space sees
	 * the EOF and shuts the peer down once its data went out). */
	if (skb->len == 0)
		return SK_DROP;
	p = bpf_map_lookup_elem(&sg_peer, &cookie);
	if (p == NULL)
		return SK_DROP; /* never while the session lives */
	__sync_fetch_and_add(&p->bytes, skb->len);
	w = sg_written(p);
	if (w != ~0ULL && p->bytes > w - p->wbase + SOCKMAP_BACKLOG) {
		struct sockmap_note n = {.cookie = cookie};
		bpf_ringbuf_output(&sg_note, &n, sizeof(n), 0);
	}
	return bpf_sk_redirect_hash(skb, &sg_dst, &p->peer, 0);
}

char LICENSE[] SEC("license") = "GPL";
