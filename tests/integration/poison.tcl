# A poison entry: a log entry that makes the local Redis exit every time it is
# applied, on every node. redraft must not loop on it silently: after a few tries
# it stops applying, says so in its log and in INFO raft (which entry, how many
# tries, what the link said), answers data commands with a clear error, and
# RAFT.SKIP-ENTRY makes that entry a no-op on every node, after which the
# cluster serves again with identical replicas (docs/operations.md).
#
# Each node's Redis is reached through tests/tools/dropping_proxy.tcl, which
# closes the connection when it carries the marker, as a Redis that exits on
# those bytes would.

start_cluster 3 {} {

    test {setup: every node reaches its Redis through a relay that dies on a marker} {
        wait_for_leader
        set tool [file join [file dirname [file dirname [file normalize [info script]]]] tools dropping_proxy.tcl]
        foreach i {1 2 3} {
            set p [free_port]
            set pid [exec tclsh $tool $p [node_redis_port $i] poison-pill-xyzzy &]
            ::rd::spawned $pid
            set ::relay($i) $pid
            wait_for_condition 50 100 {![::rd::port_is_free $p]} {fail "relay $i not up"}
            set ::rd::cl($i,opts) [list --redis 127.0.0.1:$p]
            restart_node $i
        }
        wait_for_leader
        foreach i {1 2 3} {
            wait_for_condition 100 100 {[node_call $i 2000 SET k$i v] eq "+OK"} {
                fail "node $i does not serve through its relay"
            }
        }
    }

    test {the poison entry stops every node after 3 tries; INFO raft names it} {
        set fd [raw_connect [node_port 1]]
        raw_send $fd [resp_cmd SET poison-pill-xyzzy 1]
        foreach i {1 2 3} {
            wait_for_condition 200 100 {
                [string match "*poison_entry:\[1-9\]*" [node_call $i 2000 INFO raft]]
            } {fail "node $i did not stop on the poison entry"}
        }
        set info [::rd::parse_info [node_call 2 2000 INFO raft]]
        set idx [dict get $info poison_entry]
        assert_equal 3 [dict get $info poison_tries]
        assert {[dict get $info poison_error] ne {}}
        assert_match "*POISON ENTRY: applying log entry $idx*" [exec cat [node_log 2]]
        assert_match "-ERR redraft: log entry $idx makes the local redis exit*" [node_call 3 2000 GET k1]
        assert_match "-ERR redraft: log entry $idx makes the local redis exit*" [node_call 3 2000 SET x 1]
        set ::poison $idx
        set ::poison_fd $fd
    }

    test {RAFT.SKIP-ENTRY skips it on every node; the cluster serves again} {
        assert_equal +OK [node_call 2 10000 RAFT.SKIP-ENTRY $::poison]
        set rep [raw_read_reply $::poison_fd]
        assert_match "-*" $rep
        close $::poison_fd
        foreach i {1 2 3} {
            wait_for_condition 100 100 {[node_call $i 2000 GET k1] eq "v"} {
                fail "node $i does not serve again: [node_call $i 2000 GET k1]"
            }
            assert_match "*poison_entry:0*" [node_call $i 2000 INFO raft]
            # Asked of the redis-server itself: the marker would make the relay drop.
            assert_equal 0 [exec redis-cli -p [node_redis_port $i] EXISTS poison-pill-xyzzy]
        }
        assert_equal +OK [node_call 3 5000 SET after 1]
        assert_replicas_identical {1 2 3}
    }

    test {RAFT.SKIP-ENTRY of an entry already applied says so} {
        set info [::rd::parse_info [node_call 1 2000 INFO raft]]
        assert_match "-ERR that log entry was applied*" [node_call 1 10000 RAFT.SKIP-ENTRY 2]
        assert_match "-ERR RAFT.SKIP-ENTRY needs*" [node_call 1 2000 RAFT.SKIP-ENTRY abc]
    }

    test {teardown: the relays} {
        foreach i {1 2 3} {::rd::stop_process $::relay($i)}
    }
}
