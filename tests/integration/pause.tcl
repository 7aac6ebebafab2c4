# CLIENT PAUSE / CLIENT UNPAUSE: commands held until the pause ends, as in Redis.

proc blocked_clients {} {
    regexp {blocked_clients:([0-9]+)} [r info clients] -> n
    return $n
}

proc wait_blocked {n} {
    wait_for_condition 100 20 {[blocked_clients] == $n} {
        fail "blocked_clients stayed [blocked_clients], expected $n"
    }
}

start_pair {} {
    test {CLIENT PAUSE WRITE holds writes until UNPAUSE; reads go on} {
        r set pause:k before
        assert_equal [r client pause 100000 write] OK
        set w [raw_connect]
        raw_send $w "SET pause:k during\r\nGET pause:k\r\n"
        wait_blocked 1
        # reads from other clients are not held, and see no write
        assert_equal [r get pause:k] before
        assert_equal [r ping] PONG
        assert_equal [r client unpause] OK
        assert_equal [raw_read_reply $w] "+OK"
        assert_equal [raw_read_reply $w] "during"
        assert_equal [blocked_clients] 0
        close $w
    }

    test {CLIENT PAUSE WRITE holds EXEC of a writing transaction, PUBLISH and EVAL, not a no-writes EVAL} {
        assert_equal [r client pause 100000 write] OK
        set ro [new_client]
        assert_equal [$ro eval "#!lua flags=no-writes\nreturn 7" 0] 7
        assert_equal [$ro multi] OK
        assert_equal [$ro get pause:k] QUEUED
        assert_equal [$ro exec] during
        set t [raw_connect]
        raw_send $t "PUBLISH ch m\r\nEVAL \"return 1\" 0\r\n"
        wait_blocked 1
        set x [raw_connect]
        raw_send $x "MULTI\r\n"
        assert_equal [raw_read_reply $x] "+OK"
        # a write sent inside MULTI during the pause is held before it is queued
        raw_send $x "INCR pause:n\r\n"
        wait_blocked 2
        r client unpause
        assert_equal [raw_read_reply $t] ":0"
        assert_equal [raw_read_reply $t] ":1"
        assert_equal [raw_read_reply $x] "+QUEUED"
        raw_send $x "EXEC\r\n"
        assert_equal [raw_read_reply $x] {:1}
        close $t
        close $x
        close_client $ro
    }

    test {A pause ends by itself; arity errors are answered during it; bad arguments are refused} {
        assert_equal [r client pause 300 write] OK
        catch {r set pause:only-key} err
        assert_match {*wrong number of arguments*} $err
        set start [clock milliseconds]
        r set pause:timed 1
        assert_morethan [expr {[clock milliseconds] - $start}] 150
        assert_error {*timeout is not an integer*} {r client pause abc}
        assert_error {*timeout is negative*} {r client pause -1}
        assert_error {*mode must be WRITE or ALL*} {r client pause 10 sometimes}
    }

    test {CLIENT PAUSE ALL holds every command until it ends; a held client that leaves is forgotten} {
        assert_equal [r client pause 400 all] OK
        set g [raw_connect]
        raw_send $g "GET pause:k\r\nPING\r\n"
        set h [raw_connect]
        raw_send $h "GET pause:k\r\n"
        after 100
        close $h
        set start [clock milliseconds]
        assert_equal [raw_read_reply $g] "during"
        assert_equal [raw_read_reply $g] "+PONG"
        assert_morethan [expr {[clock milliseconds] - $start}] 150
        close $g
        assert_equal [blocked_clients] 0
    }
}
