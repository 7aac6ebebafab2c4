# Durability across a crash of redraft (kill -9) while redis-server keeps
# running: every acknowledged write survives, and no log entry is applied to
# Redis twice when redraft comes back and resumes from the applied index it
# recorded inside Redis.

# All bytes until the peer closes (bounded), from a non-blocking channel.
proc read_until_closed {fd ms} {
    set deadline [expr {[clock milliseconds] + $ms}]
    set buf {}
    while {1} {
        if {[catch {read $fd} data]} break
        append buf $data
        if {[eof $fd]} break
        if {![::rd::wait_readable $fd $deadline]} break
    }
    return $buf
}

# The integer replies in buf, complete ones only (a reply cut by the kill has
# no CRLF after it and does not count as acknowledged).
proc complete_int_replies {buf} {
    set lines [split $buf \n]
    set lines [lrange $lines 0 end-1]   ;# what follows the last LF is incomplete
    set out {}
    foreach line $lines {
        if {![regexp {^:(-?\d+)\r$} $line -> n]} {
            fail "unexpected reply line '[::rd::clip $line]'"
        }
        lappend out $n
    }
    return $out
}

# In direct mode "redraft" is a redis-server that fsyncs its AOF on every
# write: the same invariants hold, which checks the tests themselves.
start_pair {direct {--appendonly yes --appendfsync always}} {

    test {200 acknowledged INCRs survive kill -9 of redraft, none applied twice} {
        r del counter
        for {set i 1} {$i <= 200} {incr i} {
            assert_equal $i [r incr counter]
        }
        restart_redraft
        r get counter
    } {200}

    test {A second restart with no new writes applies nothing again} {
        restart_redraft
        assert_equal 200 [r get counter]
        r incr counter
    } {201}

    test {Three crash cycles of 50 INCRs each count exactly 150} {
        r del cycles
        for {set round 1} {$round <= 3} {incr round} {
            for {set i 0} {$i < 50} {incr i} {r incr cycles}
            restart_redraft
            assert_equal [expr {$round * 50}] [r get cycles] "after round $round"
        }
        r get cycles
    } {150}

    test {A graceful stop (SIGTERM) and restart keeps the count too} {
        r del graceful
        for {set i 0} {$i < 30} {incr i} {r incr graceful}
        kill_redraft TERM
        start_redraft
        reconnect_clients
        r get graceful
    } {30}

    test {Pipelined INCRs in flight at kill -9: every acked one counts, none twice} {
        r del inflight
        set fd [raw_connect]
        # A first batch, fully acknowledged.
        set first 300
        raw_send $fd [string repeat [resp_cmd INCR inflight] $first]
        set acked {}
        for {set i 0} {$i < $first} {incr i} {lappend acked [string range [raw_read_reply $fd] 1 end]}
        # A large batch written without waiting; kill redraft as soon as some
        # of it has been answered, so that the rest is in flight.
        set second 20000
        fconfigure $fd -blocking 0 -buffering full
        puts -nonewline $fd [string repeat [resp_cmd INCR inflight] $second]
        flush $fd   ;# non-blocking: the event loop writes the rest
        set sent [expr {$first + $second}]
        set buf {}
        set deadline [expr {[clock milliseconds] + 10000}]
        while {[regexp -all {\r\n} $buf] < 50} {
            if {![::rd::wait_readable $fd $deadline]} break
            append buf [read $fd]
            if {[eof $fd]} break
        }
        kill_redraft KILL
        append buf [read_until_closed $fd 5000]
        catch {close $fd}
        lappend acked {*}[complete_int_replies $buf]
        set nacked [llength $acked]
        # Replies are the counter's values: 1, 2, 3, ... with no gap or repeat.
        set expect {}
        for {set i 1} {$i <= $nacked} {incr i} {lappend expect $i}
        assert_equal $expect $acked "INCR replies in order"

        start_redraft
        reconnect_clients
        set final [r get inflight]
        assert_range $final $nacked $sent "final counter (acked $nacked, sent $sent)"
        if {$::rd::verbose} {puts "# acked $nacked, final $final, sent $sent"}
        # The counter goes on from there.
        assert_equal [expr {$final + 1}] [r incr inflight]
    }

    test {Writes of every type acknowledged before kill -9 are all readable after} {
        r flushall
        for {set i 0} {$i < 100} {incr i} {r set str:$i val:$i}
        for {set i 0} {$i < 100} {incr i} {r rpush list $i}
        for {set i 0} {$i < 50} {incr i} {r hset hash f$i v$i}
        for {set i 0} {$i < 50} {incr i} {r sadd set m$i}
        for {set i 0} {$i < 50} {incr i} {r zadd zset $i z$i}
        for {set i 0} {$i < 100} {incr i 2} {r del str:$i}
        r lpop list
        r select 3
        r set in-db-3 yes
        r select 0
        r append str:1 -appended

        restart_redraft

        assert_equal 54 [r dbsize]
        assert_equal 4 [r exists list hash set zset]
        assert_equal 50 [llength [r keys str:*]]
        for {set i 1} {$i < 100} {incr i 2} {
            set want val:$i
            if {$i == 1} {append want -appended}
            assert_equal $want [r get str:$i] "str:$i"
        }
        assert_equal 0 [r exists str:0 str:50 str:98]
        assert_equal 99 [r llen list]
        assert_equal {1 2 3} [r lrange list 0 2]
        assert_equal 50 [r hlen hash]
        assert_equal v49 [r hget hash f49]
        assert_equal 50 [r scard set]
        assert_equal 1 [r sismember set m0]
        assert_equal {z48 48 z49 49} [r zrange zset -2 -1 withscores]
        r select 3
        set v [r get in-db-3]
        r select 0
        set v
    } {yes}

    test {kill -9 right after a write: the acknowledged write is there} {
        for {set round 0} {$round < 5} {incr round} {
            assert_equal OK [r set last-write $round]
            restart_redraft
            assert_equal $round [r get last-write] "round $round"
        }
    }
}
