# WATCH/UNWATCH: optimistic transactions across the cluster. A watching client's EXEC goes to the
# leader with its watch index and keys; the leader refuses it when an entry after that index may
# write a watched key, and EXEC answers a null array, as Redis does. Nothing of a refused
# transaction runs anywhere.

start_pair {} {
    test {WATCH then EXEC with no write in between runs the transaction} {
        r set w:k 1
        assert_equal OK [r watch w:k w:other]
        r multi
        r incr w:k
        r exec
    } {2}

    test {A write by another client to a watched key makes EXEC answer nil and run nothing} {
        set c2 [new_client]
        r set w:k 1
        r del w:ran
        r watch w:k
        $c2 set w:k 5
        r multi
        r incr w:k
        r set w:ran yes
        assert_equal {} [r exec]
        close_client $c2
        list [r get w:k] [r exists w:ran]
    } {5 0}

    test {The client's own write after WATCH aborts, as in Redis; one before it does not} {
        r set w:k 1
        r watch w:k
        r set w:k 2
        r multi
        r incr w:k
        assert_equal {} [r exec]
        # Pipelined: the SET before WATCH is applied before the WATCH takes its index.
        set fd [raw_connect]
        raw_send $fd [join [list [resp_cmd SET w:k 10] [resp_cmd WATCH w:k] [resp_cmd MULTI] \
                                [resp_cmd INCR w:k] [resp_cmd EXEC]] {}]
        set replies {}
        for {set i 0} {$i < 5} {incr i} {lappend replies [raw_read_reply $fd]}
        set replies
    } {+OK +OK +OK +QUEUED :11}

    test {A write to a key that is not watched does not abort} {
        set c2 [new_client]
        r watch w:k
        $c2 set w:unrelated 1
        $c2 set w:K 1
        r multi
        r set w:k 7
        set res [r exec]
        close_client $c2
        set res
    } {OK}

    test {EXEC, a failed EXEC, UNWATCH and DISCARD each forget the watched keys} {
        set c2 [new_client]
        set out {}
        # after a successful EXEC
        r watch w:k
        r multi
        r ping
        r exec
        $c2 set w:k a
        r multi
        r ping
        lappend out [r exec]
        # after an EXEC a write aborted
        r watch w:k
        $c2 set w:k b
        r multi
        r ping
        lappend out [r exec]
        $c2 set w:k c
        r multi
        r ping
        lappend out [r exec]
        # UNWATCH
        r watch w:k
        $c2 set w:k d
        assert_equal OK [r unwatch]
        r multi
        r ping
        lappend out [r exec]
        # DISCARD
        r watch w:k
        $c2 set w:k e
        r multi
        assert_equal OK [r discard]
        r multi
        r ping
        lappend out [r exec]
        # an EXECABORT
        r watch w:k
        $c2 set w:k f
        r multi
        catch {r nosuchcommand}
        assert_error {EXECABORT*} {r exec}
        r multi
        r ping
        lappend out [r exec]
        # RESET
        r watch w:k
        $c2 set w:k g
        assert_equal RESET [r reset]
        r multi
        r ping
        lappend out [r exec]
        close_client $c2
        set out
    } {PONG {} PONG PONG PONG PONG PONG}

    test {WATCH inside MULTI is an error that does not abort the transaction} {
        r del w:m
        r multi
        assert_error {ERR WATCH inside MULTI is not allowed} {r watch w:m}
        r set w:m 1
        list [r exec] [r get w:m]
    } {OK 1}

    test {UNWATCH inside MULTI is queued and answers OK} {
        r multi
        assert_equal QUEUED [r unwatch]
        r exec
    } {OK}

    test {WATCH remembers the database of each key} {
        set c2 [new_client]
        r select 5
        r set w:x 30
        r watch w:x
        r select 1
        r watch w:y
        $c2 select 1
        $c2 set w:x 10
        $c2 select 5
        $c2 set w:y 10
        r select 5
        r multi
        r ping
        set res [r exec]
        # the same name in the database it was watched in aborts
        r watch w:x
        $c2 set w:x 11
        r multi
        r ping
        lappend res [r exec]
        r select 0
        close_client $c2
        set res
    } {PONG {}}

    test {An empty transaction answers an empty array, or nil when a watched key was touched} {
        set fd [raw_connect]
        raw_send $fd [join [list [resp_cmd WATCH w:e] [resp_cmd MULTI] [resp_cmd EXEC]] {}]
        set out {}
        for {set i 0} {$i < 3} {incr i} {lappend out [raw_read_reply $fd]}
        raw_send $fd [join [list [resp_cmd WATCH w:e] [resp_cmd SET w:e 1] [resp_cmd MULTI] \
                                [resp_cmd EXEC]] {}]
        for {set i 0} {$i < 4} {incr i} {lappend out [raw_read_reply $fd]}
        set out
    } {+OK +OK {} +OK +OK +OK (nil)}

    test {Writes that touch whole databases abort watchers of keys in them} {
        set c2 [new_client]
        r select 0
        r set w:f 1
        r watch w:f
        $c2 select 7
        $c2 flushdb
        r multi
        r ping
        set res [r exec]
        r watch w:f
        $c2 select 0
        $c2 flushdb
        r multi
        r ping
        lappend res [r exec]
        close_client $c2
        set res
    } {PONG {}}
}

start_cluster 3 {} {
    test {A watching client on a follower: its EXEC is forwarded and runs when nothing changed} {
        set leader [wait_for_leader]
        set f [expr {$leader % 3 + 1}]
        set c [new_client [node_port $f]]
        $c set wc:k 1
        $c watch wc:k
        $c multi
        $c incr wc:k
        $c rpush wc:l a
        set res [$c exec]
        close_client $c
        foreach i {1 2 3} {assert_equal 2 [[node_client $i] get wc:k] "node $i"}
        set res
    } {2 1}

    test {A write through another node between WATCH and EXEC aborts it on every node} {
        set leader [wait_for_leader]
        set fs [lsearch -all -inline -not -exact {1 2 3} $leader]
        set results {}
        # (watching node, writing node): follower/other follower, follower/leader,
        # leader/follower
        foreach {wn xn} [list [lindex $fs 0] [lindex $fs 1] [lindex $fs 0] $leader \
                             $leader [lindex $fs 1]] {
            set c [new_client [node_port $wn]]
            set x [new_client [node_port $xn]]
            $c set wc:k 1
            $c del wc:ran
            $c watch wc:k
            assert_equal OK [$x set wc:k 9]
            $c multi
            $c incr wc:k
            $c set wc:ran yes
            lappend results [$c exec]
            foreach i {1 2 3} {
                assert_equal 9 [[node_client $i] get wc:k] "node $i, watching on $wn"
                assert_equal 0 [[node_client $i] exists wc:ran] "node $i, watching on $wn"
            }
            # the watch is gone: the same transaction runs now
            $c multi
            $c incr wc:k
            lappend results [$c exec]
            close_client $c
            close_client $x
        }
        set results
    } {{} 10 {} 10 {} 10}

    test {A write through another node to an unwatched key does not abort} {
        set leader [wait_for_leader]
        set f [expr {$leader % 3 + 1}]
        set o [expr {$f % 3 + 1}]
        set c [new_client [node_port $f]]
        set x [new_client [node_port $o]]
        $c watch wc:a wc:b
        $x set wc:c 1
        $x set wc:A 1
        $c multi
        $c set wc:a 1
        set res [$c exec]
        close_client $c
        close_client $x
        set res
    } {OK}

    test {Concurrent check-and-set increments through every node never lose an update} {
        # Each client retries WATCH/GET/MULTI/SET/EXEC until EXEC succeeds: with the check
        # right, the counter ends at exactly the number of successful transactions.
        [node_client 1] set wc:cas 0
        set clients {}
        foreach i {1 2 3} {lappend clients [new_client [node_port $i]]}
        set done 0
        set aborts 0
        for {set round 0} {$round < 30} {incr round} {
            # every client reads, then every client tries to write: all but one must abort
            set seen {}
            foreach c $clients {
                $c watch wc:cas
                lappend seen [$c get wc:cas]
            }
            foreach c $clients v $seen {
                $c multi
                $c set wc:cas [expr {$v + 1}]
                if {[$c exec] eq {}} {incr aborts} else {incr done}
            }
        }
        foreach c $clients {close_client $c}
        foreach i {1 2 3} {assert_equal $done [[node_client $i] get wc:cas] "node $i"}
        assert_equal 30 $done
        assert_equal 60 $aborts
    }

    test {Every replica holds the same data after the WATCH tests} {
        assert_replicas_identical {1 2 3}
    }
}
