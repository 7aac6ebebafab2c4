# Deep replies: a script may return a reply nested to any depth Redis allows,
# and it reaches the client byte for byte, alone or inside MULTI/EXEC (where
# the apply batch's EXEC reply is one level deeper still).  hiredis 0.14's
# reader refused anything deeper than 7 and broke the link of every node
# (backend/reader.h); redraft's own reader has no depth limit.  Expected bytes
# are built here, or read from a node's redis-server with the same pure script.

# One reply's exact bytes from a binary socket: lines and bulk payloads as
# they came, without recursion (a reply may be deeper than Tcl's limit).
proc reader_reply_bytes {fd} {
    set out {}
    set pending 1
    while {$pending > 0} {
        set line [::rd::timed_gets $fd]
        if {$line eq {} && [eof $fd]} {error "connection closed after [string length $out] bytes"}
        append out $line \n
        incr pending -1
        set type [string index $line 0]
        set n [string range $line 1 end-1]
        if {$type in {$ =} && $n >= 0} {
            append out [::rd::timed_read $fd [expr {$n + 2}]]
        } elseif {$type in {* ~ >} && $n > 0} {
            incr pending $n
        } elseif {$type eq {%} && $n > 0} {
            incr pending [expr {2 * $n}]
        }
    }
    return $out
}

proc reader_open {port} {
    set fd [socket 127.0.0.1 $port]
    fconfigure $fd -translation binary -blocking 1 -buffering full
    return $fd
}

# The bytes of the reply to args, sent on a fresh connection to port.
proc reader_call {port args} {
    set fd [reader_open $port]
    try {
        puts -nonewline $fd [resp_cmd {*}$args]
        flush $fd
        return [reader_reply_bytes $fd]
    } finally {
        close $fd
    }
}

# "*1\r\n" depth times around ":1\r\n": what {{...{1}...}} is in RESP.
proc reader_nested {depth} {
    return "[string repeat "*1\r\n" $depth]:1\r\n"
}

# A script that builds the nested table in a loop (Lua's parser itself would
# refuse a constructor this deep).
proc reader_nest_script {depth} {
    return "local t = 1 for i = 1, $depth do t = {t} end return t"
}

# How many times each node's link to its redis-server became ready.
proc reader_link_readies {} {
    set out {}
    for {set i 1} {$i <= [cluster_size]} {incr i} {
        set f [open [node_log $i]]
        set n [regexp -all -line {local redis .* ready:} [read $f]]
        close $f
        lappend out $n
    }
    return $out
}

start_cluster 3 {} {
    set leader [wait_for_leader]
    set follower [expr {$leader % 3 + 1}]
    set readies [reader_link_readies]
    set ten "return {{{{{{{{{{1}}}}}}}}}}"

    test {depth 10: the client gets the bytes Redis sends} {
        foreach i [list $leader $follower] {
            assert_equal [reader_nested 10] [reader_call [node_port $i] EVAL $ten 0] "via node $i"
        }
        # and what the node's own redis-server sends for the same pure script
        assert_equal [reader_call [node_redis_port $leader] EVAL $ten 0] \
            [reader_call [node_port $leader] EVAL $ten 0]
    }

    test {depth 100 and 1000} {
        foreach depth {100 1000} {
            set script [reader_nest_script $depth]
            assert_equal [reader_nested $depth] [reader_call [node_port $follower] EVAL $script 0]
        }
    }

    test {every RESP2 type, deep, byte for byte as redis-server gives it} {
        set script {
            local t = {1, 'bulk', redis.status_reply('FINE'), redis.error_reply('ERR deep'),
                       false, {}, string.rep('x', 100000)}
            for i = 1, 50 do t = {i, t, 'b' .. i} end
            return t
        }
        set want [reader_call [node_redis_port $leader] EVAL $script 0]
        assert {[string length $want] > 100000}
        assert_equal $want [reader_call [node_port $leader] EVAL $script 0]
        assert_equal $want [reader_call [node_port $follower] EVAL $script 0]
    }

    test {deep replies inside MULTI/EXEC, with writes, pipelined} {
        set fd [reader_open [node_port $follower]]
        set script100 [reader_nest_script 100]
        set out [resp_cmd MULTI]
        append out [resp_cmd SET reader:a 1]
        append out [resp_cmd EVAL $ten 0]
        append out [resp_cmd EVAL "redis.call('incr', KEYS\[1\]) [reader_nest_script 100]" 1 reader:b]
        append out [resp_cmd PEXPIRE reader:a 100000000]
        append out [resp_cmd EXEC]
        append out [resp_cmd EVAL $script100 0]
        puts -nonewline $fd $out
        flush $fd
        set got {}
        for {set i 0} {$i < 7} {incr i} {lappend got [reader_reply_bytes $fd]}
        close $fd
        assert_equal [list "+OK\r\n" "+QUEUED\r\n" "+QUEUED\r\n" "+QUEUED\r\n" "+QUEUED\r\n" \
                          "*4\r\n+OK\r\n[reader_nested 10][reader_nested 100]:1\r\n" \
                          [reader_nested 100]] $got
    }

    test {COMMAND DOCS, whose reply nests 8 levels deep, is passed on as it is} {
        foreach args {{COMMAND DOCS GET} {COMMAND DOCS XADD SET}} {
            assert_equal [reader_call [node_redis_port $follower] {*}$args] \
                [reader_call [node_port $follower] {*}$args]
        }
    }

    test {no node's link to its redis-server broke} {
        assert_equal $readies [reader_link_readies]
    }

    test {the replicas hold the same data, key by key (DUMP, PEXPIRETIME)} {
        wait_for_condition 100 50 {
            [node_call 1 1000 GET reader:b] eq 1 && [node_call 2 1000 GET reader:b] eq 1 &&
            [node_call 3 1000 GET reader:b] eq 1
        } {
            fail "reader:b did not reach every replica"
        }
        set sets {}
        for {set i 1} {$i <= 3} {incr i} {
            set h [redis 127.0.0.1 [node_redis_port $i]]
            set rows {}
            foreach k [lsort [$h keys *]] {
                lappend rows $k [$h dump $k] [$h pexpiretime $k]
            }
            $h close
            lappend sets $rows
        }
        assert {[llength [lindex $sets 0]] >= 6}
        assert_equal [lindex $sets 0] [lindex $sets 1] "node 1 and node 2"
        assert_equal [lindex $sets 0] [lindex $sets 2] "node 1 and node 3"
    }
}
