#!/usr/bin/env bash
# test/netlab/inet.sh — two home routers on one emulated internet, for Ferry's reachability
# tests: each router its own home LAN with home hosts, miniupnpd (UPnP IGD + NAT-PMP) on or off,
# a port-preserving or symmetric NAT, real routers' inbound drop rule, optionally a carrier-grade
# NAT (100.64.0.0/10) in front; plus a public host and a STUN server on the internet segment.
# Built from ../../../shared/netlab/lib.sh (read-only; this script only adds a topology nat.sh has
# not got: two routers, CGN, the drop rule). Everything lives in namespaces it creates.
#
#            "internet" 10.232.100.0/24 (bridge br0 in ${P}-inet-wan)
#   ┌──────────────┬──────────────┬──────────────────┬───────────────────────────────┐
#  ${P}-inet-pub  ${P}-inet-stun  ${P}-inet-r1        ${P}-inet-r2  (or ${P}-inet-cgnI in front:
#  .2 (a public   .3 + .4 (stund, wan0 .11            wan0 .12       wan0 .2I, inside 100.64.I.1/24,
#   host; the     RFC 3489/8489)  br-lan 10.232.1.1   br-lan 10.232.2.1  the router's wan0 100.64.I.2)
#   tracker goes                    ├ ${P}-inet-h1a 10.232.1.2     ├ ${P}-inet-h2a 10.232.2.2
#   here)                           └ ${P}-inet-h1b 10.232.1.3 …   └ …
#
# Usage: inet.sh up | down | env | status | log I
# Settings (environment, read by `up`; `up` with other settings rebuilds):
#   NETLAB_INET_HOSTS=N        home hosts behind each router (1..9, default 1)
#   NETLAB_INET_R<I>_UPNP=1|0  miniupnpd on router I (default 1)
#   NETLAB_INET_R<I>_NAT=cone|symmetric  masquerade keeping ports, or `random,fully-random` (default cone)
#   NETLAB_INET_R<I>_DROP=1|0  drop unsolicited inbound packets at the router, as real ones do (default 1);
#                              0 answers unmapped ports with RST/ICMP like nat.sh's router
#   NETLAB_INET_R<I>_CGN=1|0   a carrier-grade NAT between router I and the internet (default 0);
#                              miniupnpd then maps on the home router only (useless from outside, as in life)
#   NETLAB_INET_R<I>_CGN_NAT=cone|symmetric  the CGN's masquerade keeps ports, or is `random,fully-random`
#                              (default cone); either way it drops unsolicited inbound
#   NETLAB_INET_R<I>_HAIRPIN=1|0  NAT hairpin (default 0): a home host reaching its router's external
#                              address at a mapped port reaches the mapped host. miniupnpd's nftables
#                              rules match `iif "wan0"` only, so a loop in the router copies them, every
#                              0.2 s, into a chain for br-lan traffic to the external address.
#   NETLAB_INET_V6=1|0         global IPv6 as well (default 0): the internet 2001:db8:100::/64 (public
#                              host ::2, router I's wan0 ::1I), home I 2001:db8:I::/64 (router ::1, host
#                              J ::(J+1)) routed by the routers without NAT; the routers' stateful firewall
#                              (the same inet-family ruleset: forward policy drop, established/related
#                              and LAN→WAN accepted, inbound new dropped) then guards IPv6, as home
#                              routers do. ICMPv6 to the router itself is accepted (neighbour discovery).
#                              Not with CGN (an IPv4 matter).
set -u
SCRIPT_NAME=inet.sh
NETLAB_SHARED=${NETLAB_SHARED:-$(cd "$(dirname "$0")/../../../shared/netlab" 2>/dev/null && pwd)}
[ -f "$NETLAB_SHARED/lib.sh" ] || { echo "inet.sh: error: ../shared/netlab/lib.sh not found (set NETLAB_SHARED)" >&2; exit 1; }
. "$NETLAB_SHARED/lib.sh"

COMP=inet
WAN=10.232.100
WAN6=2001:db8:100
V6=${NETLAB_INET_V6:-0}
SWNS="${NETLAB_PREFIX}-inet-wan"
PUBNS="${NETLAB_PREFIX}-inet-pub"
STUNNS="${NETLAB_PREFIX}-inet-stun"
S=$NETLAB_STATE_DIR
ENVF="$S/inet.env"
STUN_PID="$S/inet-stund.pid"
STUN_LOG="$S/inet-stund.log"
HOSTS=${NETLAB_INET_HOSTS:-1}
LETTERS=abcdefghi

rns() { echo "${NETLAB_PREFIX}-inet-r$1"; }
cgnns() { echo "${NETLAB_PREFIX}-inet-cgn$1"; }
hns() { echo "${NETLAB_PREFIX}-inet-h$1${LETTERS:$(($2 - 1)):1}"; }
opt() { local v="NETLAB_INET_R$1_$2"; echo "${!v:-$3}"; }

config() {
	local i
	echo "hosts=$HOSTS v6=$V6"
	for i in 1 2; do
		echo "r$i=$(opt $i UPNP 1),$(opt $i NAT cone),$(opt $i DROP 1),$(opt $i CGN 0),$(opt $i HAIRPIN 0)$([ "$(opt $i CGN 0)" = 1 ] && echo ",cgn-$(opt $i CGN_NAT cone)")"
	done
}

inet_is_up() {
	local ns i
	[ -f "$ENVF" ] && [ -f "$S/inet.config" ] || return 1
	for ns in $(ns_list $COMP); do ns_exists "$ns" || return 1; done
	pid_alive "$STUN_PID" || return 1
	for i in 1 2; do [ "$(opt $i UPNP 1)" = 1 ] && { pid_alive "$S/inet-mu$i.pid" || return 1; }; done
	return 0
}

inet_down() {
	local i
	for i in 1 2; do stop_pidfile "$S/inet-hairpin$i.pid" bash; stop_pidfile "$S/inet-mu$i.pid" miniupnpd; done
	stop_pidfile "$STUN_PID" stund
	ns_del_all $COMP
	rm -f "$ENVF" "$S/inet.config" "$S"/inet-mu?.conf "$S"/inet-mu?.own.pid "$S"/inet-upnp?.leases "$S"/inet-r?.nft "$S"/inet-cgn?.nft
}

# host_on NS IFACE ADDR/PREFIX GATEWAY
host_up() {
	ip -n "$1" addr add "$3" brd + dev "$2"
	ip -n "$1" link set "$2" up
	[ -n "${4:-}" ] && ip -n "$1" route add default via "$4"
	return 0
}

router_rules() { # router_rules I LAN_SUBNET — the home router's nftables ruleset
	local i=$1 lan=$2 masq="masquerade" input="" hairpin="" hairpin_masq=""
	if [ "$(opt "$i" HAIRPIN 0)" = 1 ]; then
		hairpin="
		jump hairpin"
		# The hairpinned answer must come back through the router, not straight from the other host.
		hairpin_masq="
		iifname \"br-lan\" oifname \"br-lan\" ct status dnat masquerade"
	fi
	[ "$(opt "$i" NAT cone)" = symmetric ] && masq="masquerade random,fully-random"
	if [ "$(opt "$i" DROP 1)" = 1 ]; then
		# Real routers drop what nobody asked for; miniupnpd's own STUN tests need the STUN server's
		# unsolicited answers from its second address, so those alone are let in.
		input="
	chain input {
		type filter hook input priority filter; policy accept;
		iifname != \"wan0\" accept
		ct state established,related accept
		ip saddr { $WAN.3, $WAN.4 } udp sport { 3478, 3479 } accept
		meta l4proto ipv6-icmp accept
		drop
	}"
	fi
	cat <<EOF
table inet filter {$input
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "br-lan" oifname "wan0" accept
		iifname "br-lan" oifname "br-lan" ct status dnat accept
		jump miniupnpd
	}
	chain miniupnpd {
	}
	chain hairpin {
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;$hairpin
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump postrouting_miniupnpd$hairpin_masq
		oifname "wan0" ip saddr $lan $masq
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
EOF
}

start_miniupnpd() { # start_miniupnpd I LAN_PREFIX
	local i=$1 lan=$2 ns conf log
	ns=$(rns "$i")
	conf="$S/inet-mu$i.conf"
	log="$S/inet-mu$i.log"
	cat >"$conf" <<EOF
# written by test/netlab/inet.sh
ext_ifname=wan0
listening_ip=br-lan
http_port=5000
enable_natpmp=yes
enable_upnp=yes
ext_perform_stun=yes
ext_stun_host=$WAN.3
ext_stun_port=3478
secure_mode=yes
system_uptime=yes
notify_interval=60
clean_ruleset_interval=600
uuid=$(cat /proc/sys/kernel/random/uuid)
serial=inet000$i
model_number=1
friendly_name=netlab router $i
minissdpdsocket=$S/inet-minissdpd$i.sock
lease_file=$S/inet-upnp$i.leases
allow 1024-65535 $lan.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
	start_daemon "$ns" "$S/inet-mu$i.pid" "$log" miniupnpd -f "$conf" -d -P "$S/inet-mu$i.own.pid"
	wait_listen "$ns" tcp 5000 15 && wait_listen "$ns" udp 5351 5 ||
		die "miniupnpd on router $i did not start listening; its log ($log): $(tail -15 "$log")"
	# Behind a carrier-grade NAT the STUN tests find a restricted NAT: no forwarding, as in life.
	[ "$(opt "$i" CGN 0)" = 1 ] && return 0
	for _ in $(seq 50); do
		grep -q 'Port forwarding is now enabled' "$log" && return 0
		pid_alive "$S/inet-mu$i.pid" || break
		sleep 0.1
	done
	die "miniupnpd on router $i did not enable port forwarding; its log ($log): $(grep -i 'stun\|forward\|error' "$log" | tail -15)"
}

inet_up() {
	local i j ns rn wan_addr lan ext cgn_masq
	if inet_is_up && [ "$(cat "$S/inet.config")" = "$(config)" ]; then
		info "already up"
		return 0
	fi
	inet_down

	ns_add $COMP "$SWNS"
	ip -n "$SWNS" link add br0 type bridge stp_state 0 mcast_snooping 0 || die "cannot create a bridge"
	ip -n "$SWNS" link set br0 up
	bridge_no_netfilter "$SWNS"

	# --- public host and STUN server on the internet
	ns_add $COMP "$PUBNS"
	veth "$PUBNS" eth0 "$SWNS" pub
	ip -n "$SWNS" link set pub master br0 up
	host_up "$PUBNS" eth0 "$WAN.2/24"
	if [ "$V6" = 1 ]; then
		ip -n "$PUBNS" -6 addr add "$WAN6::2/64" dev eth0 nodad
		for i in 1 2; do ip -n "$PUBNS" -6 route add "2001:db8:$i::/64" via "$WAN6::1$i"; done
	fi
	ns_add $COMP "$STUNNS"
	veth "$STUNNS" eth0 "$SWNS" stun
	ip -n "$SWNS" link set stun master br0 up
	host_up "$STUNNS" eth0 "$WAN.3/24"
	ip -n "$STUNNS" addr add "$WAN.4/24" dev eth0
	start_daemon "$STUNNS" "$STUN_PID" "$STUN_LOG" stund -v -h "$WAN.3" -a "$WAN.4"
	wait_listen "$STUNNS" udp 3478 10 || die "stund did not start; its log ($STUN_LOG): $(tail -5 "$STUN_LOG")"

	for i in 1 2; do
		rn=$(rns "$i")
		lan="10.232.$i"
		ns_add $COMP "$rn"
		if [ "$(opt "$i" CGN 0)" = 1 ]; then
			# --- carrier-grade NAT: 100.64.I.0/24 inside, WAN.2I outside, port-preserving (or symmetric) masquerade, drops unsolicited inbound
			ns=$(cgnns "$i")
			cgn_masq="masquerade"
			[ "$(opt "$i" CGN_NAT cone)" = symmetric ] && cgn_masq="masquerade random,fully-random"
			ns_add $COMP "$ns"
			veth "$ns" wan0 "$SWNS" "cgn$i"
			ip -n "$SWNS" link set "cgn$i" master br0 up
			host_up "$ns" wan0 "$WAN.2$i/24"
			veth "$ns" lan0 "$rn" wan0
			host_up "$ns" lan0 "100.64.$i.1/24"
			ip netns exec "$ns" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward' || die "cannot enable ip_forward in $ns"
			cat >"$S/inet-cgn$i.nft" <<EOF
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname != "wan0" accept
		ct state established,related accept
		drop
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" ip saddr 100.64.$i.0/24 $cgn_masq
	}
}
EOF
			ip netns exec "$ns" nft -f "$S/inet-cgn$i.nft" || die "nft could not load the CGN ruleset in $ns"
			host_up "$rn" wan0 "100.64.$i.2/24" "100.64.$i.1"
			wan_addr="100.64.$i.2"
			ext="$WAN.2$i"
		else
			veth "$rn" wan0 "$SWNS" "rtr$i"
			ip -n "$SWNS" link set "rtr$i" master br0 up
			host_up "$rn" wan0 "$WAN.1$i/24"
			wan_addr="$WAN.1$i"
			ext="$WAN.1$i"
		fi
		ip -n "$rn" link add br-lan type bridge stp_state 0 mcast_snooping 0
		host_up "$rn" br-lan "$lan.1/24"
		if [ "$V6" = 1 ]; then
			ip -n "$rn" -6 addr add "$WAN6::1$i/64" dev wan0 nodad
			ip -n "$rn" -6 addr add "2001:db8:$i::1/64" dev br-lan nodad
			ip -n "$rn" -6 route add "2001:db8:$((3 - i))::/64" via "$WAN6::1$((3 - i))"
			ip netns exec "$rn" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/forwarding' || die "cannot enable IPv6 forwarding in $rn"
		fi
		bridge_no_netfilter "$rn"
		ip netns exec "$rn" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward' || die "cannot enable ip_forward in $rn"
		router_rules "$i" "$lan.0/24" >"$S/inet-r$i.nft"
		ip netns exec "$rn" nft -f "$S/inet-r$i.nft" || die "nft could not load router $i's ruleset (see $S/inet-r$i.nft)"
		for j in $(seq "$HOSTS"); do
			ns=$(hns "$i" "$j")
			ns_add $COMP "$ns"
			veth "$ns" eth0 "$rn" "lan$j"
			ip -n "$rn" link set "lan$j" master br-lan up
			host_up "$ns" eth0 "$lan.$((j + 1))/24" "$lan.1"
			if [ "$V6" = 1 ]; then
				ip -n "$ns" -6 addr add "2001:db8:$i::$((j + 1))/64" dev eth0 nodad
				ip -n "$ns" -6 route add default via "2001:db8:$i::1"
			fi
		done
		[ "$(opt "$i" UPNP 1)" = 1 ] && start_miniupnpd "$i" "$lan"
		if [ "$(opt "$i" HAIRPIN 0)" = 1 ]; then
			start_daemon "$rn" "$S/inet-hairpin$i.pid" "$S/inet-hairpin$i.log" "$0" hairpin-loop "$ext"
		fi
		{
			echo "NETLAB_INET_R${i}_NS=$rn"
			echo "NETLAB_INET_R${i}_WAN_ADDR=$wan_addr"
			echo "NETLAB_INET_R${i}_EXTERNAL_ADDR=$ext"
			echo "NETLAB_INET_R${i}_LAN_SUBNET=$lan.0/24"
			echo "NETLAB_INET_R${i}_CONFIG=$(config | sed -n "s/^r$i=//p")"
			[ "$(opt "$i" UPNP 1)" = 1 ] && echo "NETLAB_INET_R${i}_MINIUPNPD_LOG=$S/inet-mu$i.log"
			for j in $(seq "$HOSTS"); do
				echo "NETLAB_INET_H${i}${LETTERS:$((j - 1)):1}_NS=$(hns "$i" "$j")"
				echo "NETLAB_INET_H${i}${LETTERS:$((j - 1)):1}_ADDR=$lan.$((j + 1))"
				[ "$V6" = 1 ] && echo "NETLAB_INET_H${i}${LETTERS:$((j - 1)):1}_ADDR6=2001:db8:$i::$((j + 1))"
			done
		} >>"$ENVF.tmp"
	done
	{
		echo "NETLAB_INET_WAN_SUBNET=$WAN.0/24"
		echo "NETLAB_INET_WAN_SWITCH_NS=$SWNS"
		echo "NETLAB_INET_PUBLIC_NS=$PUBNS"
		echo "NETLAB_INET_PUBLIC_ADDR=$WAN.2"
		[ "$V6" = 1 ] && echo "NETLAB_INET_PUBLIC_ADDR6=$WAN6::2"
		echo "NETLAB_INET_STUN_NS=$STUNNS"
		echo "NETLAB_INET_STUN_ADDR=$WAN.3:3478"
		cat "$ENVF.tmp"
	} >"$ENVF"
	rm -f "$ENVF.tmp"
	config >"$S/inet.config"
	info "up: two routers on $WAN.0/24 ($(config | tr '\n' ' '))"
}

check_prefix
case "${1:-}" in
up)
	[[ $HOSTS =~ ^[1-9]$ ]] || die "NETLAB_INET_HOSTS must be 1..9 (got '$HOSTS')"
	[[ $V6 =~ ^[01]$ ]] || die "NETLAB_INET_V6 must be 0 or 1"
	[ "$V6" = 1 ] && { [ "$(opt 1 CGN 0)$(opt 2 CGN 0)" = 00 ] || die "NETLAB_INET_V6=1 does not go with a CGN"; }
	for i in 1 2; do
		[[ "$(opt $i UPNP 1)$(opt $i DROP 1)$(opt $i CGN 0)" =~ ^[01]{3}$ ]] || die "NETLAB_INET_R${i}_UPNP/_DROP/_CGN must be 0 or 1"
		[[ "$(opt $i NAT cone)" =~ ^(cone|symmetric)$ ]] || die "NETLAB_INET_R${i}_NAT must be cone or symmetric"
		[[ "$(opt $i CGN_NAT cone)" =~ ^(cone|symmetric)$ ]] || die "NETLAB_INET_R${i}_CGN_NAT must be cone or symmetric"
	done
	need_root
	need_cmd ip iproute2
	need_cmd ss iproute2
	need_cmd nft nftables
	need_cmd miniupnpd miniupnpd-nftables
	need_cmd stund stun-server
	state_init
	rm -f "$ENVF.tmp"
	inet_up || { inet_down; exit 1; }
	cat "$ENVF"
	;;
down)
	need_root
	state_init
	inet_down
	;;
env)
	[ -f "$ENVF" ] && cat "$ENVF"
	;;
status)
	inet_is_up
	;;
log)
	cat "$S/inet-mu${2:-1}.log"
	;;
hairpin-loop)
	# Runs inside a router: mirrors miniupnpd's DNAT rules for br-lan traffic to EXTERNAL ($2).
	last=""
	while :; do
		rules=$(nft list chain inet filter prerouting_miniupnpd 2>/dev/null | sed -n 's/^[[:space:]]*iif "wan0" \(.*dnat .*\)$/\1/p' |
			sed 's/@nh,72,8 0x6 th /tcp /; s/@nh,72,8 0x11 th /udp /')
		if [ "$rules" != "$last" ]; then
			{
				echo "flush chain inet filter hairpin"
				[ -n "$rules" ] && printf '%s\n' "$rules" | sed "s/^/add rule inet filter hairpin iifname \"br-lan\" ip daddr $2 /"
			} | nft -f - && last=$rules
		fi
		sleep 0.2
	done
	;;
*)
	die "usage: inet.sh up|down|env|status|log [I]"
	;;
esac
