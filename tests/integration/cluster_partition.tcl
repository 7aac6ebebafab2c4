# A node cut off from the others (here: the others get SIGSTOP, so their
# sockets stay open but nothing answers) refuses what it cannot do safely:
# linearizable reads get TRYAGAIN once read-timeout passes, writes get
# CLUSTERDOWN or TIMEOUT, while eventual reads are still answered from its
# own Redis.  After SIGCONT everything works again, the replicas agree, and
# a leader that was paused while the others moved on never serves a stale
# linearizable read.

set timeouts {--read-timeout 1000 --write-timeout 1000 --leader-wait-timeout 1000}

proc others {i} {return [lsearch -all -inline -not -exact {1 2 3} $i]}

# Run script (in the caller), return {ms result-or-error iserror}.
proc timed {script} {
    set t0 [clock milliseconds]
    set rc [catch {uplevel 1 $script} res]
    return [list [expr {[clock milliseconds] - $t0}] $res $rc]
}

# With node `alone` cut off: reads and writes on it, as described above.
# Returns the write's error.
proc check_isolated {alone key old} {
    set lin [new_client [node_port $alone]]
    set ev [new_client [node_port $alone]]
    $ev client consistency eventual
    lassign [timed {$lin get $key}] ms res rc
    assert_equal 1 $rc "a linearizable read on the isolated node succeeded: '$res'"
    assert_match {TRYAGAIN*} $res
    puts "    linearizable read on isolated node $alone: '$res' after $ms ms"
    assert_range $ms 900 5000 "the read waited about read-timeout"
    assert_equal $old [$ev get $key] "eventual read on the isolated node"
    lassign [timed {$ev set $key new-value}] ms res rc
    assert_equal 1 $rc "a write on the isolated node succeeded: '$res'"
    if {![string match {CLUSTERDOWN*} $res] && ![string match {TIMEOUT*} $res]} {
        fail "write on the isolated node: expected CLUSTERDOWN or TIMEOUT, got '$res'"
    }
    puts "    write on isolated node $alone: '$res' after $ms ms"
    assert_lessthan $ms 5000
    # The node still answers what needs no one else.
    assert_equal PONG [$ev ping]
    assert_equal $old [$ev get $key]
    close_client $lin
    close_client $ev
    return $res
}

# After the others resume: a leader, writes and linearizable reads on every
# node, and the write made while cut off is either wholly there or not.
proc check_recovered {key old werr} {
    set leader [wait_for_leader]
    set v [[node_client $leader] get $key]
    if {[string match {CLUSTERDOWN*} $werr]} {
        # Refused before it reached the log: it must not appear.
        assert_equal $old $v "a write refused with CLUSTERDOWN was applied"
    } else {
        assert {$v eq $old || $v eq "new-value"} "value after TIMEOUT: '$v'"
    }
    foreach i {1 2 3} {
        set c [reconnect_node_client $i]
        assert_equal $v [$c get $key] "node $i after the partition healed"
    }
    foreach i {1 2 3} {
        assert_equal OK [[node_client $i] set $key after-$i]
        foreach j {1 2 3} {assert_equal after-$i [[node_client $j] get $key]}
    }
    assert_replicas_identical {1 2 3}
}

start_cluster 3 [list redraft $timeouts] {

    test {An isolated follower: TRYAGAIN for linearizable reads, old value for eventual ones, writes refused} {
        set leader [wait_for_leader]
        lassign [others $leader] alone other
        assert_equal OK [[node_client $leader] set p:f v1]
        assert_equal v1 [[node_client $alone] get p:f]
        # A session client that wrote through the isolated node can read it.
        set s [new_client [node_port $alone]]
        $s client consistency session
        assert_equal OK [$s set p:sess mine]
        stop_node $leader
        stop_node $other
        set werr [check_isolated $alone p:f v1]
        assert_equal mine [$s get p:sess] "session read of the client's own write"
        close_client $s
        cont_node $leader
        cont_node $other
        check_recovered p:f v1 $werr
    }

    test {An isolated leader: TRYAGAIN for linearizable reads, old value for eventual ones, writes refused} {
        set alone [wait_for_leader]
        assert_equal OK [[node_client $alone] set p:l v1]
        set ev [new_client [node_port $alone]]
        $ev client consistency eventual
        foreach i [others $alone] {stop_node $i}
        set d0 [::rd::parse_info [$ev info raft]]
        set werr [check_isolated $alone p:l v1]
        set d1 [::rd::parse_info [$ev info raft]]
        # Its linearizable read went to Redis ahead of its round, and the reply was dropped when
        # no round could confirm the leadership.
        foreach f {reads_ahead reads_ahead_dropped} {
            assert_equal 1 [expr {[dict get $d1 $f] - [dict get $d0 $f]}] $f
        }
        close_client $ev
        foreach i [others $alone] {cont_node $i}
        check_recovered p:l v1 $werr
    }

    test {A paused leader resumed after the others moved on serves no stale linearizable read} {
        set old [wait_for_leader]
        assert_equal OK [[node_client $old] set p:stale v1]
        stop_node $old
        set new [wait_for_leader {} [others $old]]
        assert_not_equal $old $new
        assert_equal OK [[node_client $new] set p:stale v2]
        # Queue reads on the paused node: it sees them the moment it wakes,
        # before it hears of the new term.
        set lin [raw_connect [node_port $old]]
        set ev [raw_connect [node_port $old]]
        raw_send $ev [resp_cmd CLIENT CONSISTENCY EVENTUAL]
        raw_send $lin [resp_cmd GET p:stale]
        cont_node $old
        set got [raw_read_reply $lin]
        puts "    linearizable read on the resumed old leader: '$got'"
        if {$got ne "v2" && ![string match {-TRYAGAIN*} $got]} {
            fail "linearizable read on the resumed old leader gave '$got' (the value is v2)"
        }
        assert_equal +OK [raw_read_reply $ev]
        # Once it follows the new leader it reads v2 at every level.
        wait_for_leader
        raw_send $lin [resp_cmd GET p:stale]
        assert_equal v2 [raw_read_reply $lin]
        wait_for_condition 50 50 {
            [::rd::call_port [node_port $old] 1000 GET p:stale] eq "v2"
        } {fail "the old leader never caught up"}
        assert_replicas_identical {1 2 3}
    }

    test {A write through a paused node's client gets no success it did not earn} {
        # A follower paused with a write queued in its socket: when it wakes
        # the write goes through the current leader, and is applied once.
        set leader [wait_for_leader]
        set f [lindex [others $leader] 0]
        [node_client $leader] del p:q
        set fd [raw_connect [node_port $f]]
        stop_node $f
        raw_send $fd [resp_cmd INCR p:q]
        after 1200   ;# past an election timeout: the others go on without it
        assert_equal 1 [[node_client $leader] incr p:q]
        cont_node $f
        set got [raw_read_reply $fd]
        assert_equal :2 $got
        foreach i {1 2 3} {assert_equal 2 [[node_client $i] get p:q]}
    }
}
