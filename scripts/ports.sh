# Free loopback ports for the shell harnesses (tests/clients/run.sh, contrib/bench/bench.sh;
# scripts/demo.sh checks its fixed ports with rd_port_free).
# Sourced, not run. Ports come from below the kernel's ephemeral range: a port inside it can be
# taken as the local end of any outgoing connection (a redis-cli, a node joining) between the
# moment it is picked and the moment a server binds it, and that server then fails to start.
#
#   rd_port_free PORT  whether nothing listens on PORT
#   rd_pick_port VAR   sets VAR to a port nobody listens on and not handed out before; call it
#                      in the harness's own shell (a subshell would forget what it handed out)

RD_PORTS_USED=" "
RD_PORTS_LO=20000
RD_PORTS_HI=32767
if read -r _eph_lo _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
    [ "$_eph_lo" -gt $((RD_PORTS_LO + 1000)) ] && [ "$_eph_lo" -le "$RD_PORTS_HI" ]; then
    RD_PORTS_HI=$((_eph_lo - 1))
fi
RD_PORTS_NEXT=$((RD_PORTS_LO + RANDOM % (RD_PORTS_HI - RD_PORTS_LO + 1)))

rd_port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

rd_pick_port() { # var
    local p _
    for _ in $(seq 1 2000); do
        p=$RD_PORTS_NEXT
        RD_PORTS_NEXT=$((p >= RD_PORTS_HI ? RD_PORTS_LO : p + 1))
        case "$RD_PORTS_USED" in *" $p "*) continue ;; esac
        if rd_port_free "$p"; then
            RD_PORTS_USED="$RD_PORTS_USED$p "
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    return 1
}
