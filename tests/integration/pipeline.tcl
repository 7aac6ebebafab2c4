# Pipelining: replies come back in the order the commands were sent, even
# though writes go through the log and reads go straight to Redis; a client
# always reads its own writes; inline commands and commands split across
# many packets work.

# Read n replies from fd into a list (raw_read_reply's form).
proc read_replies {fd n} {
    set replies {}
    for {set i 0} {$i < $n} {incr i} {
        set rep [raw_read_reply $fd]
        if {$rep eq {} && [eof $fd]} {
            fail "connection closed after $i of $n replies"
        }
        lappend replies $rep
    }
    return $replies
}

start_pair {} {
    test {1000 pipelined mixed commands get every reply in order} {
        r del pcounter
        set fd [raw_connect]
        set buf {}
        set expected {}
        set n 0
        for {set i 0} {$i < 334} {incr i} {
            append buf [resp_cmd SET pkey:$i value:$i]
            lappend expected +OK
            append buf [resp_cmd GET pkey:$i]
            lappend expected value:$i
            append buf [resp_cmd INCR pcounter]
            lappend expected :[expr {$i + 1}]
            incr n 3
        }
        # Sent in one go, before reading anything.
        raw_send $fd $buf
        set got [read_replies $fd $n]
        for {set i 0} {$i < $n} {incr i} {
            if {[lindex $got $i] ne [lindex $expected $i]} {
                fail "reply $i: expected '[lindex $expected $i]', got '[lindex $got $i]'"
            }
        }
        list [llength $got] [r get pcounter] [r get pkey:333]
    } {1002 334 value:333}

    test {A pipelined client reads its own writes (SET then GET, 500 times)} {
        set fd [raw_connect]
        set buf {}
        for {set i 0} {$i < 500} {incr i} {
            append buf [resp_cmd SET ryw $i] [resp_cmd GET ryw]
        }
        raw_send $fd $buf
        set got [read_replies $fd 1000]
        set bad {}
        for {set i 0} {$i < 500} {incr i} {
            if {[lindex $got [expr {2 * $i}]] ne "+OK" ||
                [lindex $got [expr {2 * $i + 1}]] ne $i} {
                lappend bad "$i: [lrange $got [expr {2 * $i}] [expr {2 * $i + 1}]]"
                if {[llength $bad] > 5} break
            }
        }
        assert_equal $bad {} "replies that did not see the write just before them"
        r get ryw
    } {499}

    test {A pipeline deeper than redraft's per-client queue (3000 SET+GET pairs) is served whole} {
        # All of it reaches redraft's input buffer at once; past PX_PIPELINE_MAX queued
        # requests redraft stops parsing until replies drain, and must come back to the
        # commands already buffered although the socket stays quiet.
        set fd [raw_connect]
        set buf {}
        for {set i 0} {$i < 3000} {incr i} {
            append buf [resp_cmd SET deep $i] [resp_cmd GET deep]
        }
        raw_send $fd $buf
        set got [read_replies $fd 6000]
        assert_equal 6000 [llength $got]
        list [lindex $got 5998] [lindex $got 5999]
    } {+OK 2999}

    test {Writes and reads alternate on one client, each read sees the last write} {
        r del alt
        for {set i 1} {$i <= 100} {incr i} {
            r rpush alt $i
            assert_equal $i [r llen alt]
            assert_equal $i [r lindex alt -1]
        }
        r lrange alt 0 2
    } {1 2 3}

    test {Pipelined SELECT switches the database for the commands after it} {
        set fd [raw_connect]
        raw_send $fd [join [list \
            [resp_cmd SELECT 2] [resp_cmd SET dbk two] \
            [resp_cmd SELECT 0] [resp_cmd SET dbk zero] [resp_cmd GET dbk] \
            [resp_cmd SELECT 2] [resp_cmd GET dbk] [resp_cmd SELECT 0]] {}]
        set got [read_replies $fd 8]
        r select 2
        set in2 [r get dbk]
        r select 0
        list $got $in2 [r get dbk]
    } {{+OK +OK +OK +OK zero +OK two +OK} two zero}

    test {Errors inside a pipeline stay in their place} {
        set fd [raw_connect]
        raw_send $fd [join [list [resp_cmd SET perr x] [resp_cmd INCR perr] \
            [resp_cmd NOSUCH] [resp_cmd GET] [resp_cmd GET perr]] {}]
        set got [read_replies $fd 5]
        assert_equal +OK [lindex $got 0]
        assert_match {-ERR value is not an integer*} [lindex $got 1]
        assert_match {-ERR unknown command 'NOSUCH'*} [lindex $got 2]
        assert_equal {-ERR wrong number of arguments for 'get' command} [lindex $got 3]
        lindex $got 4
    } {x}

    test {A write acknowledged to one client is seen by another at once} {
        set c [new_client]
        for {set i 0} {$i < 50} {incr i} {
            r set shared $i
            assert_equal $i [$c get shared]
        }
    }

    test {Inline commands: PING, SET with quotes, GET} {
        set fd [raw_connect]
        raw_send $fd "PING\r\n"
        assert_equal +PONG [raw_read_reply $fd]
        raw_send $fd "SET inl \"hello world\"\r\nGET inl\r\n"
        assert_equal +OK [raw_read_reply $fd]
        assert_equal {hello world} [raw_read_reply $fd]
        # Empty lines are skipped, LF alone ends a line.
        raw_send $fd "\r\n\r\nPING\n"
        raw_read_reply $fd
    } {+PONG}

    test {A command split into one-byte writes is parsed} {
        set fd [raw_connect]
        fconfigure $fd -buffering none
        foreach ch [split "[resp_cmd SET split [string repeat v 40]]PING\r\n" {}] {
            puts -nonewline $fd $ch
            flush $fd
            after 1
        }
        assert_equal +OK [raw_read_reply $fd]
        assert_equal +PONG [raw_read_reply $fd]
        r strlen split
    } {40}

    test {10000 pipelined PINGs} {
        set fd [raw_connect]
        raw_send $fd [string repeat [resp_cmd PING] 10000]
        set pongs 0
        for {set i 0} {$i < 10000} {incr i} {
            if {[raw_read_reply $fd] eq "+PONG"} {incr pongs}
        }
        set pongs
    } {10000}

    test {Pipelined large values come back whole} {
        set fd [raw_connect]
        set buf {}
        for {set i 0} {$i < 20} {incr i} {
            append buf [resp_cmd SET big:$i [string repeat [format %c [expr {65 + $i}]] 100000]]
            append buf [resp_cmd STRLEN big:$i]
        }
        raw_send $fd $buf
        set got [read_replies $fd 40]
        set lens {}
        foreach {ok len} $got {lappend lens $len}
        assert_equal [lrepeat 20 :100000] $lens
        string range [r get big:19] 0 4
    } {TTTTT}

    test {20 clients pipelining INCRs at once: the total is exact} {
        r del concurrent
        set fds {}
        for {set i 0} {$i < 20} {incr i} {lappend fds [raw_connect]}
        # Everyone sends before anyone reads.
        foreach fd $fds {raw_send $fd [string repeat [resp_cmd INCR concurrent] 200]}
        set bad {}
        foreach fd $fds {
            set prev 0
            for {set j 0} {$j < 200} {incr j} {
                set rep [raw_read_reply $fd]
                if {![regexp {^:(\d+)$} $rep -> n] || $n <= $prev} {
                    lappend bad "client $fd reply $j: '$rep' after $prev"
                    break
                }
                set prev $n
            }
        }
        assert_equal $bad {} "each client's INCR replies increase"
        r get concurrent
    } {4000}

    test {A client that closes with writes in flight does not disturb the others} {
        r del abandoned
        for {set i 0} {$i < 5} {incr i} {
            set fd [raw_connect]
            raw_send $fd [string repeat [resp_cmd INCR abandoned] 2000]
            close $fd
        }
        # The counter settles somewhere in range; redraft stays up.
        set last -1
        wait_for_condition 100 100 {
            [set now [r get abandoned]] eq $last || [set last $now] eq "never"
        } {
            fail "the counter never settled"
        }
        assert_range [r get abandoned] 0 10000
        assert_equal PONG [r ping]
        if {![is_direct]} {assert [::rd::alive [srv redraft_pid]] "redraft is alive"}
        r incr abandoned-after
    } {1}
}

# A write the node refuses at once (here: it is not part of a cluster) is answered in the
# client's order and the commands after it still run. The refusal used to finish the request
# inside its own dispatch, freeing it under the dispatch loop (a crash under ASan).
start_pair {redraft {--cluster-init no} only_redraft {a node outside a cluster is redraft's}} {
    test {Writes refused at once, pipelined with other commands, are answered in order} {
        set fd [raw_connect]
        raw_send $fd [join [list [resp_cmd SET a 1] [resp_cmd SET b 2] [resp_cmd PING] \
                                [resp_cmd SET c 3] [resp_cmd ECHO x]] {}]
        set out {}
        for {set i 0} {$i < 5} {incr i} {lappend out [string range [raw_read_reply $fd] 0 11]}
        assert [::rd::alive [srv redraft_pid]] "redraft is alive"
        set out
    } {-CLUSTERDOWN -CLUSTERDOWN +PONG -CLUSTERDOWN x}
}
