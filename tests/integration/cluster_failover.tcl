# Failover: when the leader dies (kill -9) under a steady write load, the
# others elect a new one and go on; no acknowledged write is lost, no INCR is
# counted twice, and the dead node catches up when it comes back.  A leader
# that gets SIGTERM hands leadership over first, so writes stall for much less
# than an election timeout.  A deposed leader's late answer to a forwarded
# write does not get the write applied twice.
#
# The election timeout here is 500 ms (heartbeat 50 ms): a failover by
# election takes at least that long, a handover by SIGTERM should not.

set election_ms 500

# The other nodes of {1 2 3} than i.
proc others {i {among {1 2 3}}} {
    return [lsearch -all -inline -not -exact $among $i]
}

# Wait until every acknowledged write of the load is on node i (bounded): a
# node applies committed entries a little after the node that answered.
proc wait_load_on_node {i res {ms 5000}} {
    set deadline [expr {[clock milliseconds] + $ms}]
    while {[catch {assert_load_on_node $i $res} err]} {
        if {[clock milliseconds] >= $deadline} {error $err}
        after 100
    }
}

# A write through node i, retried on errors until it succeeds; returns the
# ms from since until its acknowledgement.
proc first_write_after {i since key {ms 15000}} {
    set deadline [expr {$since + $ms}]
    while {1} {
        if {![catch {[node_client $i] set $key [clock milliseconds]} err] && $err eq "OK"} {
            return [expr {[clock milliseconds] - $since}]
        }
        if {[clock milliseconds] >= $deadline} {
            fail "no write through node $i succeeded within $ms ms (last: $err)"
        }
        # The connection may be broken after an error: start over.
        reconnect_node_client $i
        after 10
    }
}

# A write forwarded to a leader that dies has an unknown outcome: the follower
# answers it -TIMEOUT after write-timeout; 2 s here, so that the writers of
# the load (5 s deadline per request) see that answer and go on.
set write_timeout_ms 2000

# Wait until the load's file shows an acknowledgement later than ms.
proc wait_load_ack_after {name ms {wait 10000}} {
    set out [lindex $::rd::loads($name) 1]
    set deadline [expr {[clock milliseconds] + $wait}]
    while {1} {
        set f [open $out]
        set lines [split [read $f] \n]
        close $f
        for {set k [expr {[llength $lines] - 1}]} {$k >= 0} {incr k -1} {
            set line [lindex $lines $k]
            if {[lindex $line 0] eq "ack"} {
                if {[lindex $line 2] > $ms} return
                break
            }
        }
        if {[clock milliseconds] >= $deadline} {
            fail "load $name has no acknowledged write after the failover within $wait ms"
        }
        after 50
    }
}

start_cluster 3 [list redraft [list --election-timeout $election_ms --heartbeat-interval 50 \
                                    --write-timeout $write_timeout_ms]] {

    test {kill -9 of the leader under load: a new leader, and no acknowledged write lost} {
        set old [wait_for_leader]
        lassign [others $old] f1 f2
        # One writer on the followers (it survives), one on the leader first
        # (it loses its connection and moves on to the others).
        start_load fol [list [node_port $f1] [node_port $f2]] timeout 5000
        start_load ldr [list [node_port $old] [node_port $f1] [node_port $f2]] timeout 5000
        after 1000
        set t0 [clock milliseconds]
        kill_node $old KILL
        set failover [first_write_after $f1 $t0 failover:probe]
        set new [wait_for_leader]
        assert_not_equal $old $new
        puts "    failover after kill -9 of the leader: $failover ms to the first acknowledged write\
            (election timeout $election_ms ms)"
        # Both writers go on after the failover.
        wait_load_ack_after fol [expr {$t0 + $failover}]
        wait_load_ack_after ldr [expr {$t0 + $failover}]
        set fol [stop_load fol]
        set ldr [stop_load ldr]
        puts "    load: [dict get $fol acks]+[dict get $ldr acks] acknowledged writes,\
            [dict get $fol errors]+[dict get $ldr errors] errors; longest gap between acks\
            through the followers [dict get $fol gaps] ms"
        puts "    errors the writers saw: [dict get $fol error_msgs] / [dict get $ldr error_msgs]"
        foreach res [list $fol $ldr] {
            assert_morethan [llength [dict get $res acked_sets]] 20
        }
        assert_morethan [dict get $ldr errors] 0   ;# it saw the leader die
        foreach i [list $f1 $f2] {
            wait_load_on_node $i $fol
            wait_load_on_node $i $ldr
        }
        # INCR replies are distinct, and the counter is at least the largest.
        foreach res [list $fol $ldr] {
            set replies [dict get $res incr_replies]
            assert_equal [llength $replies] [llength [lsort -unique $replies]] "INCR replies distinct"
            set ctr [[node_client $f1] get [dict get $res prefix]:ctr]
            assert {$ctr >= [lindex [lsort -integer $replies] end]}
        }
        assert_lessthan $failover 10000
        assert_replicas_identical [list $f1 $f2]
    }

    test {The killed node comes back, catches up on what it missed, and serves reads} {
        # The node down is the one with no pid.
        foreach i {1 2 3} {if {[node_pid $i] == 0} {set down $i}}
        # More writes while it is down.
        set up [lindex [live_nodes] 0]
        for {set k 0} {$k < 200} {incr k} {[node_client $up] set missed:$k $k}
        restart_node $down
        wait_for_voters 3
        assert_equal follower [dict get [node_info $down] role]
        assert_replicas_identical {1 2 3}
        assert_equal 199 [[node_client $down] get missed:199]
        assert_equal OK [[node_client $down] set back:$down yes]
        foreach i {1 2 3} {assert_equal yes [[node_client $i] get back:$down]}
    }

    test {kill -9 of a follower under load: writes go on, and it catches up} {
        set leader [wait_for_leader]
        lassign [others $leader] f1 f2
        start_load f [list [node_port $leader]]
        after 500
        kill_node $f1 KILL
        after 1000
        restart_node $f1
        wait_for_voters 3
        after 300
        set res [stop_load f]
        puts "    longest gap between acks while a follower died and came back: [dict get $res gaps] ms"
        assert_equal 0 [dict get $res errors] "errors: [dict get $res error_msgs]"
        assert_lessthan [dict get $res gaps] $election_ms
        foreach i {1 2 3} {wait_load_on_node $i $res}
        assert_replicas_identical {1 2 3}
    }

    test {A follower whose redis-server restarts empty is refilled with the whole dataset} {
        set leader [wait_for_leader]
        set f [lindex [others $leader] 0]
        for {set k 0} {$k < 300} {incr k} {[node_client $leader] rpush refill:l $k}
        [node_client $leader] set refill:ttl x PX 600000
        assert_replicas_identical {1 2 3}
        restart_node_redis $f
        # Reads through it never give the empty Redis's answer as success.
        set rc [catch {[reconnect_node_client $f] llen refill:l} got]
        if {!$rc} {assert_equal 300 $got "a read right after its redis came back empty"}
        assert_replicas_identical {1 2 3} 15000
        assert_equal 300 [[reconnect_node_client $f] llen refill:l]
        assert_equal OK [[node_client $f] set refill:after yes]
        assert_replicas_identical {1 2 3}
    }

    test {SIGTERM on the leader hands leadership over: writes stall much less than an election timeout} {
        set old [wait_for_leader]
        lassign [others $old] f1 f2
        start_load term [list [node_port $f2]] pause 2
        after 500
        # Writes through a follower, timed one by one, while the leader exits.
        set c [node_client $f1]
        set worst 0
        set fg 0
        set errors {}
        set t0 [clock milliseconds]
        signal_node $old TERM
        while {[clock milliseconds] - $t0 < 1500} {
            set s [clock milliseconds]
            if {[catch {$c incr sigterm:fg} err]} {
                lappend errors $err
                set c [reconnect_node_client $f1]
            } else {
                incr fg
            }
            set dt [expr {[clock milliseconds] - $s}]
            if {$dt > $worst} {set worst $dt}
        }
        wait_node_gone $old 5000
        set res [stop_load term]
        set new [wait_for_leader]
        assert_not_equal $old $new
        puts "    SIGTERM handover: slowest write through a follower $worst ms, longest gap between\
            acks of the load [dict get $res gaps] ms (election timeout $election_ms ms)"
        assert_equal {} $errors
        assert_equal 0 [dict get $res errors] "errors: [dict get $res error_msgs]"
        assert_lessthan $worst [expr {$election_ms / 2}]
        assert_lessthan [dict get $res gaps] [expr {$election_ms / 2}]
        # The old leader's log says it handed over.
        set log [::rd::cl_get $old redraft_log]
        set f [open $log]
        set text [read $f]
        close $f
        assert_match {*transferring leadership*} $text
        foreach i [list $f1 $f2] {wait_load_on_node $i $res}
        assert_equal $fg [[node_client $f2] get sigterm:fg]
        restart_node $old
        wait_for_voters 3
        assert_replicas_identical {1 2 3}
    }
}

# Found by the chaos harness (tests/chaos): a write forwarded to a leader that is then cut off
# is forwarded again once a newer term has begun without it; the old leader's late answer to
# the first forward (a NACK, or an ACK of an index in its old term) was taken for an answer
# to the second, and the write was forwarded a third time: applied twice.
start_cluster 3 [list redraft [list --election-timeout $election_ms --heartbeat-interval 50 \
                                    --write-timeout 8000]] {
    test {A deposed leader's late answer to a forwarded write does not apply it twice} {
        set old [wait_for_leader]
        lassign [others $old] b c
        set log [open [node_log $b]]
        seek $log 0 end
        # The leader stops with b's forward of the write unread in its socket. The write is a
        # script that spins for about 0.3 s before its RPUSH: once forwarded again, it stays
        # unanswered (pending) that long while b's Redis runs it.
        stop_node $old
        set fd [raw_connect [node_port $b]]
        raw_send $fd [resp_cmd EVAL {for i=1,tonumber(ARGV[2]) do end
            return redis.call('rpush',KEYS[1],ARGV[1])} 1 late:answer once 100000000]
        # The others elect a leader; b sees the new term begin without the write and
        # forwards it again.
        set deadline [expr {[clock milliseconds] + 5000}]
        set text {}
        while {![string match {*was never proposed*forwarding it again*} $text]} {
            if {[clock milliseconds] > $deadline} {
                close $log
                cont_node $old
                fail "node $b did not forward the write again: $text"
            }
            append text [read $log]
            after 1
        }
        close $log
        # The old leader wakes up and answers the first forward while the second is pending.
        cont_node $old
        assert_equal :1 [raw_read_reply $fd]
        wait_for_voters 3
        foreach i {1 2 3} {
            wait_for_condition 50 100 {[[node_client $i] llen late:answer] >= 1} {
                fail "node $i never got the write"
            }
        }
        after 1000
        foreach i {1 2 3} {assert_equal {once} [[node_client $i] lrange late:answer 0 -1]}
    }
}
