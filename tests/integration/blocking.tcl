# Blocking commands (docs/blocking.md): a blocking pop goes through the log, parks when there is
# nothing, is proposed again when a write to one of its keys is applied (through any node), and
# answers nil at its timeout; every replica pops the same element. XREAD BLOCK is a read that
# parks the same way; WAIT counts the followers holding the client's last write.

# A client of node i that sends without waiting for the reply ($rd read reads it).
proc bl_client {i} {
    set rd [redis 127.0.0.1 [node_port $i] 1]
    lappend ::bl_clients $rd
    return $rd
}

proc bl_close_all {} {
    foreach rd $::bl_clients {catch {$rd close}}
    set ::bl_clients {}
}
set ::bl_clients {}

# How many clients of node i are parked (CLIENT LIST flags=b).
proc bl_parked {i} {
    set n 0
    foreach line [split [[node_client $i] client list] \n] {
        if {[regexp {flags=\S*b} $line]} {incr n}
    }
    return $n
}

proc bl_wait_parked {i n} {
    wait_for_condition 200 10 {[bl_parked $i] == $n} {
        fail "expected $n parked clients on node $i, have [bl_parked $i]"
    }
}

proc bl_pel {i key group} {
    set out {}
    foreach e [bl_redis $i xpending $key $group - + 10] {
        lappend out [list [lindex $e 0] [lindex $e 1] [lindex $e 3]]
    }
    return $out
}

# The lines of node i's log that contain text.
proc bl_log_lines {i text} {
    set f [open [node_log $i] r]
    set lines {}
    foreach line [split [read $f] \n] {
        if {[string first $text $line] >= 0} {lappend lines $line}
    }
    close $f
    return $lines
}

# A command on node i's own redis-server (not through redraft).
proc bl_redis {i args} {
    set h [redis 127.0.0.1 [node_redis_port $i]]
    try {
        return [$h {*}$args]
    } finally {
        $h close
    }
}

start_cluster 3 {} {
    set leader [wait_for_leader]
    set follower [expr {$leader % 3 + 1}]

    test {BLPOP on one node is served by an RPUSH through another, on every replica alike} {
        set rd [bl_client 1]
        $rd blpop bl:q 0
        bl_wait_parked 1 1
        assert_equal 0 [[node_client 1] llen bl:q]
        [node_client 2] rpush bl:q a b
        assert_equal {bl:q a} [$rd read]
        assert_equal 0 [bl_parked 1]
        assert_replicas_identical {1 2 3}
        foreach i {1 2 3} {assert_equal {b} [bl_redis $i lrange bl:q 0 -1] "node $i"}
        bl_close_all
    }

    test {BLPOP with data answers at once; a wrong type and a negative timeout are Redis's errors} {
        [node_client 1] rpush bl:now x
        assert_equal {bl:now x} [[node_client 2] blpop bl:now 0]
        [node_client 1] set bl:str v
        assert_error {WRONGTYPE*} {[node_client 2] blpop bl:str 0}
        assert_error {*timeout is negative*} {[node_client 2] blpop bl:q -1}
        assert_error {*timeout is not a float*} {[node_client 2] blpop bl:q abc}
        assert_error {*timeout is negative*} {[node_client 2] xread block -1 streams bl:s 0}
        assert_error {*timeout is not an integer*} {[node_client 2] xread block 1.5 streams bl:s 0}
    }

    test {BLPOP times out with a null after about its timeout} {
        set t0 [clock milliseconds]
        set v [[node_client $follower] blpop bl:none 0.3]
        set ms [expr {[clock milliseconds] - $t0}]
        assert_equal {} $v
        assert_range $ms 280 2000
        # The null is a null array, as Redis answers a timed out BLMOVE too.
        set fd [raw_connect [node_port 1]]
        raw_send $fd [resp_cmd blmove bl:none bl:dst left right 0.1]
        assert_equal "*-1" [string trimright [::rd::timed_gets $fd] \r]
        close $fd
    }

    test {Two clients parked on one key are served in the order they parked} {
        set rd1 [bl_client 1]
        set rd2 [bl_client 1]
        $rd1 blpop bl:fifo 0
        bl_wait_parked 1 1
        $rd2 blpop bl:fifo 0
        bl_wait_parked 1 2
        [node_client 3] rpush bl:fifo first
        assert_equal {bl:fifo first} [$rd1 read]
        bl_wait_parked 1 1
        [node_client 2] rpush bl:fifo second
        assert_equal {bl:fifo second} [$rd2 read]
        assert_equal 0 [[node_client 1] llen bl:fifo]
        bl_close_all
    }

    test {BLMOVE, BZPOPMIN and BLMPOP park and are served} {
        set a [bl_client 2]
        set b [bl_client 2]
        set c [bl_client 2]
        $a blmove bl:src bl:dst left right 0
        $b bzpopmin bl:z 0
        $c blmpop 0 2 bl:l1 bl:l2 left count 2
        bl_wait_parked 2 3
        [node_client 1] rpush bl:src m
        [node_client 3] zadd bl:z 2 two 1 one
        [node_client 1] rpush bl:l2 x y z
        assert_equal m [$a read]
        assert_equal {bl:z one 1} [$b read]
        assert_equal {bl:l2 {x y}} [$c read]
        assert_replicas_identical {1 2 3}
        assert_equal {m} [[node_client 3] lrange bl:dst 0 -1]
        assert_equal {two 2} [[node_client 3] zrange bl:z 0 -1 withscores]
        bl_close_all
    }

    test {BRPOPLPUSH into a key of another type answers WRONGTYPE; the next client gets the element} {
        set rd1 [bl_client 1]
        set rd2 [bl_client 1]
        [node_client 1] del bl:bp bl:t1 bl:t2
        [node_client 1] set bl:t1 nolist
        $rd1 brpoplpush bl:bp bl:t1 0
        bl_wait_parked 1 1
        $rd2 brpoplpush bl:bp bl:t2 0
        bl_wait_parked 1 2
        [node_client 1] lpush bl:bp foo
        assert_error {WRONGTYPE*} {$rd1 read}
        assert_equal foo [$rd2 read]
        assert_equal {foo} [[node_client 1] lrange bl:t2 0 -1]
        bl_close_all
    }

    test {Parked BLMOVEs into each other's source do not wake each other for ever} {
        set a [bl_client 1]
        set b [bl_client 1]
        $a blmove bl:pa bl:pb left right 0
        $b blmove bl:pb bl:pa left right 0
        bl_wait_parked 1 2
        # A write to one of their keys wakes them; their empty retries must wake nobody.
        [node_client 2] set bl:other 1
        [node_client 2] del bl:pa
        after 300
        set c0 [dict get [node_info 1] commit_index]
        after 500
        set c1 [dict get [node_info 1] commit_index]
        assert_equal $c0 $c1 "the log grew while nothing happened"
        [node_client 3] rpush bl:pa v
        assert_equal v [$a read]
        # v is in bl:pb now, which b waits on: it moves it back.
        assert_equal v [$b read]
        assert_equal {v} [[node_client 1] lrange bl:pa 0 -1]
        bl_close_all
    }

    test {A read after the push that woke parked BLMOVEs sees their moves, on the leader and a follower} {
        # Redis serves blocked clients before its next command: a read sent after the push's
        # reply sees the element moved along the whole chain (its unit/type/list "Linked
        # LMOVEs"). Here the moves are retries in the log, which reads on the node wait for.
        foreach i [list $leader $follower] {
            for {set round 0} {$round < 5} {incr round} {
                set a [bl_client $i]
                set b [bl_client $i]
                [node_client $i] del bl:k1 bl:k2 bl:k3
                $a blmove bl:k1 bl:k2 right left 0
                bl_wait_parked $i 1
                $b blmove bl:k2 bl:k3 left right 0
                bl_wait_parked $i 2
                [node_client $i] rpush bl:k1 foo
                assert_equal {} [[node_client $i] lrange bl:k1 0 -1] "node $i round $round"
                assert_equal {} [[node_client $i] lrange bl:k2 0 -1] "node $i round $round"
                assert_equal {foo} [[node_client $i] lrange bl:k3 0 -1] "node $i round $round"
                assert_equal foo [$a read]
                assert_equal foo [$b read]
                bl_close_all
            }
        }
    }

    test {XREAD BLOCK with $ gets only the entries added after it} {
        [node_client 1] xadd bl:s 1-1 f old
        set rd [bl_client 3]
        $rd xread block 0 streams bl:s $
        bl_wait_parked 3 1
        [node_client 1] xadd bl:s 2-1 f new
        assert_equal {{bl:s {{2-1 {f new}}}}} [$rd read]
        # A stream that does not exist yet: $ is 0-0.
        $rd xread block 0 streams bl:s2 $
        bl_wait_parked 3 1
        [node_client 2] xadd bl:s2 5-1 f first
        assert_equal {{bl:s2 {{5-1 {f first}}}}} [$rd read]
        # Times out with a null.
        assert_equal {} [[node_client 3] xread block 100 streams bl:s 2-1]
        bl_close_all
    }

    test {XREADGROUP BLOCK gets a new entry, and every replica has the same pending list} {
        [node_client 1] xgroup create bl:g g $ mkstream
        set rd [bl_client 2]
        $rd xreadgroup group g alice block 0 streams bl:g >
        bl_wait_parked 2 1
        [node_client 3] xadd bl:g 7-1 k v
        assert_equal {{bl:g {{7-1 {k v}}}}} [$rd read]
        # id, consumer and delivery count (the idle time is each replica's own clock's).
        set want {{7-1 alice 1}}
        foreach i {1 2 3} {
            wait_for_condition 50 20 {[bl_pel $i bl:g g] eq $want} {
                fail "pending list of node $i: [bl_pel $i bl:g g]"
            }
        }
        bl_close_all
    }

    test {A parked XREADGROUP whose stream or group goes answers as a blocked one in Redis} {
        # Deleted, flushed, or of another type: Redis 7.0's -UNBLOCKED; the group destroyed:
        # its -NOGROUP for a blocked client.
        foreach how {del flushall set destroy} {
            [node_client 1] del bl:gd
            [node_client 1] xgroup create bl:gd g $ mkstream
            set rd [bl_client 1]
            $rd xreadgroup group g bob block 0 streams bl:gd >
            bl_wait_parked 1 1
            switch $how {
                del {[node_client 2] del bl:gd}
                flushall {[node_client 2] flushall}
                set {[node_client 2] set bl:gd x}
                destroy {[node_client 2] xgroup destroy bl:gd g}
            }
            if {$how eq "destroy"} {
                assert_error {NOGROUP the consumer group this client was blocked on no longer exists} {$rd read}
            } else {
                assert_error {UNBLOCKED the stream key no longer exists} {$rd read}
            }
            bl_close_all
        }
    }

    test {A parked BLPOP or XREAD stays parked when its key changes type, as in Redis} {
        [node_client 1] del bl:t bl:ts
        set a [bl_client 1]
        set b [bl_client 1]
        $a blpop bl:t 0
        $b xread block 0 streams bl:ts $
        bl_wait_parked 1 2
        [node_client 2] set bl:t str
        [node_client 2] set bl:ts str
        # Their WRONGTYPE retries wake nobody, themselves included: the log stands still.
        after 200
        assert_equal 2 [bl_parked 1]
        set c0 [dict get [node_info 1] commit_index]
        after 300
        assert_equal $c0 [dict get [node_info 1] commit_index] "the log grew while nothing happened"
        [node_client 3] del bl:t bl:ts
        [node_client 3] rpush bl:t v
        [node_client 3] xadd bl:ts 9-1 f v
        assert_equal {bl:t v} [$a read]
        assert_equal {{bl:ts {{9-1 {f v}}}}} [$b read]
        bl_close_all
    }

    test {A parked client that disconnects leaves nothing behind} {
        set rd [bl_client 1]
        $rd blpop bl:gone 0
        bl_wait_parked 1 1
        $rd close
        set ::bl_clients {}
        wait_for_condition 100 10 {[bl_parked 1] == 0} {fail "still parked"}
        [node_client 2] rpush bl:gone kept
        assert_equal {kept} [[node_client 1] lrange bl:gone 0 -1]
        assert_equal PONG [[node_client 1] ping]
    }

    test {A pop served just as its client left is put back, not lost} {
        # Clients parked on a follower; the RPUSH through that follower is answered in the loop
        # turn that proposes their retries (forwarded to the leader), and they disconnect as
        # soon as it is: the retries pop for clients that are gone, and what they popped is put
        # back on every replica.
        set before [llength [bl_log_lines $follower "puts back"]]
        for {set k 0} {$k < 5} {incr k} {
            set rd [bl_client $follower]
            $rd blpop bl:race 0
        }
        bl_wait_parked $follower 5
        [node_client $follower] rpush bl:race e
        bl_close_all
        wait_for_condition 100 20 {[[node_client 1] lrange bl:race 0 -1] eq {e}} {
            fail "the element was lost: [[node_client 1] lrange bl:race 0 -1]"
        }
        assert_replicas_identical {1 2 3}
        # The path this test is for was taken (else it proves nothing).
        assert_morethan [llength [bl_log_lines $follower "puts back"]] $before
    }

    test {CLIENT UNBLOCK answers a parked client with a timeout or an error} {
        set rd [bl_client 1]
        $rd client id
        set id [$rd read]
        $rd blpop bl:unb 0
        bl_wait_parked 1 1
        assert_equal 1 [[node_client 1] client unblock $id]
        assert_equal {} [$rd read]
        $rd blpop bl:unb 0
        bl_wait_parked 1 1
        assert_equal 1 [[node_client 1] client unblock $id error]
        assert_error {UNBLOCKED client unblocked via CLIENT UNBLOCK} {$rd read}
        assert_equal 0 [[node_client 1] client unblock $id]
        assert_error {*reason should be TIMEOUT or ERROR*} {[node_client 1] client unblock $id foo}
        bl_close_all
    }

    test {WAIT counts the followers holding the client's last write, on the leader and a follower} {
        foreach i [list $leader $follower] {
            assert_equal OK [[node_client $i] set bl:w$i 1]
            assert_equal 2 [[node_client $i] wait 2 0]
            set t0 [clock milliseconds]
            assert_equal 2 [[node_client $i] wait 3 200]
            assert_range [expr {[clock milliseconds] - $t0}] 180 2000
        }
        # No write yet: the count now.
        set c [new_client [node_port $follower]]
        assert_equal 2 [$c wait 1 0]
        assert_error {*timeout is negative*} {$c wait 1 -1}
        close_client $c
    }

    test {Commands pipelined behind a blocked one wait for it and keep their order} {
        set fd [raw_connect [node_port 1]]
        raw_send $fd "[resp_cmd blpop bl:pipe 0][resp_cmd set bl:after 1][resp_cmd get bl:after]"
        bl_wait_parked 1 1
        # SET has not run: it is behind the BLPOP.
        assert_equal {} [[node_client 2] get bl:after]
        [node_client 3] rpush bl:pipe p
        lassign [raw_collect $fd 8] lines closed
        assert_equal [list *2 {$7} bl:pipe {$1} p +OK {$1} 1] $lines
        close $fd
    }

    test {Inside MULTI a blocking command still does not block} {
        [node_client 1] multi
        [node_client 1] blpop bl:empty 0
        assert_equal {{}} [[node_client 1] exec]
    }
}
