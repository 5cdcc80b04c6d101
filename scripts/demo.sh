#!/bin/bash
# The demo (README): installs the dependencies, builds socksgate, then in
# three network namespaces (client, gateway, target) it
#   1. starts socksgated on the gateway,
#   2. fetches a page through it with curl --socks5-hostname (CONNECT),
#   3. opens a TCP and a UDP TRANSPARENT association with `socksgate`,
#      moves data through them (the kernel relays it, not the daemon),
#   4. prints `nft list table inet socksgate` while they live and after
#      they end, and the daemon's log,
# and removes everything.  Run as root on Debian 12.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh || exit 1
./scripts/build.sh build-release -DSG_TESTS=OFF -DSG_BUILD_TOOLS=ON || exit 1
export SG_BUILD=$PWD/build-release
. netns-tests/lib.sh
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Topology: client $C4 / $C6 -- gateway $G4, $G4T -- target $T4 / $T6"
sg_topology
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" "log-level info"
sg_daemon
echo "socksgated runs in namespace $NS_G with:"
sed 's/^/    /' "$SG_TMP/socksgated.conf"

mkdir -p "$SG_TMP/www"
echo "hello from the target, through socksgated" >"$SG_TMP/www/index.html"
bg ip netns exec "$NS_T" $PY -m http.server 80 --bind :: --directory "$SG_TMP/www" >/dev/null 2>&1
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 80
wait_listen "$NS_T" 7000

say "CONNECT: curl --socks5-hostname $G4:1080 http://target.test/ (name resolved by the daemon)"
inc curl -sS --max-time 10 --socks5-hostname $G4:1080 http://target.test/

say "TRANSPARENT over TCP: socksgate transparent --proto tcp --source $C4:40000 --dest $T4:7000"
tp_open tcp $C4:40000 $T4:7000 || fail "TCP association refused"
TCP_PID=$TP_PID TCP_BND=$BND_ADDR TCP_PORT=$BND_PORT
echo "    socksgate printed: bound tcp $TCP_BND $TCP_PORT"

say "TRANSPARENT over UDP: socksgate transparent --proto udp --source [$C6]:40001 --dest [$T6]:7000"
tp_open udp "[$C6]:40001" "[$T6]:7000" || fail "UDP association refused"
UDP_PID=$TP_PID
echo "    socksgate printed: bound udp $BND_ADDR $BND_PORT"

say "nft list table inet socksgate   (both associations live)"
nft_table

say "UDP: 100 datagrams from [$C6]:40001 to [$BND_ADDR]:$BND_PORT, DNATed by the kernel to [$T6]:7000"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src "[$C6]:40001" --count 100 --size 512 | sed 's/^/    /'
say "A datagram from another source port is dropped silently and counted:"
inc $PEER udp-expect-silence "$BND_ADDR" "$BND_PORT" --src "[$C6]:40002" | sed 's/^/    /'
say "conntrack entries of the relayed flows (ct mark 0x5a......)"
ing conntrack -L -m 0x5a000000/0xff000000 2>/dev/null

say "TCP: 5 MB from $C4:40000 to $TCP_BND:$TCP_PORT, DNATed to $T4:7000 and echoed back"
inc $PEER tcp-echo-check "$TCP_BND" "$TCP_PORT" --src $C4:40000 --bytes 5000000 | sed 's/^/    /'
echo "    the target closed the connection (FIN): the daemon sees it in conntrack and ends"
echo "    the association (close-on-target-fin yes); socksgate exits with status 3:"
wait "$TCP_PID"
echo "    socksgate exit status $?"

say "Ending the UDP association (socksgate exits, N1 closes)"
kill "$UDP_PID"
wait "$UDP_PID" 2>/dev/null
sleep 2.5
say "nft list table inet socksgate   (after they ended: no element left)"
nft_table | grep -v '^\s*$'
echo "    conntrack entries with our mark: $(ct_ours)"

say "Daemon log"
sed 's/^/    /' "$SG_LOG"
say "Done: namespaces and processes are removed on exit."
