# MULTI/EXEC/DISCARD: a transaction is queued in the proxy and committed as one log entry, applied
# atomically; Redis's errors and EXECABORT rules hold.

start_pair {} {
    test {MULTI/EXEC runs the queued commands and returns their replies in order} {
        r flushdb
        assert_equal OK [r multi]
        assert_equal QUEUED [r set t:a 1]
        assert_equal QUEUED [r incr t:a]
        assert_equal QUEUED [r rpush t:l x y]
        assert_equal QUEUED [r get t:a]
        r exec
    } {OK 2 2 2}

    test {A command refused at queue time makes EXEC answer EXECABORT and applies nothing} {
        r del t:x
        r multi
        r set t:x 1
        assert_error {ERR unknown command*} {r nosuchcommand arg}
        assert_error {ERR wrong number of arguments*} {r get}
        assert_error {EXECABORT*} {r exec}
        r exists t:x
    } {0}

    test {Runtime errors inside EXEC are replies in the array, the rest still applies} {
        r del t:s t:n
        r set t:s notanumber
        r multi
        r incr t:s
        r set t:n 5
        # the Tcl client raises the first error element of the array
        assert_error {ERR value is not an integer*} {r exec}
        r get t:n
    } {5}

    test {DISCARD drops the queue; EXEC and DISCARD without MULTI are errors; MULTI does not nest} {
        r del t:d
        r multi
        r set t:d 1
        assert_equal OK [r discard]
        assert_equal 0 [r exists t:d]
        assert_error {ERR EXEC without MULTI} {r exec}
        assert_error {ERR DISCARD without MULTI} {r discard}
        r multi
        assert_error {ERR MULTI calls can not be nested} {r multi}
        r discard
    } {OK}

    test {SELECT inside MULTI switches databases within the transaction and after it} {
        r select 0
        r del t:db
        r multi
        r select 3
        r set t:db three
        assert_equal {OK OK} [r exec]
        assert_equal three [r get t:db]
        r select 0
        r get t:db
    } {}

    test {SELECT of redraft's hidden database inside MULTI is refused when queued} {
        needs_redraft {plain Redis has no hidden database}
        r multi
        assert_error {ERR DB index is out of range} {r select 15}
        assert_error {EXECABORT*} {r exec}
    }

    test {Relative expiries inside MULTI are made absolute too} {
        r del t:e
        r multi
        r set t:e v ex 100
        r expire t:e 200
        r exec
        assert_range [r ttl t:e] 195 200
    }

    test {Blocking commands run without blocking inside MULTI, as in Redis} {
        r del t:bl
        r multi
        r blpop t:bl 1
        r xread block 0 streams t:nostream 0
        r lpush t:bl v
        r exec
    } {{} {} 1}

    test {A transaction survives a kill -9 of redraft whole: all of it, exactly once} {
        needs_redraft {the log is what makes it durable}
        r del t:k1 t:k2
        r multi
        r incr t:k1
        r incr t:k2
        r exec
        restart_redraft
        list [r get t:k1] [r get t:k2]
    } {1 1}

    test {An empty transaction answers an empty array} {
        r multi
        r exec
    } {}
}

start_pair {} {
    test {RESET and QUIT inside MULTI run at once and drop the transaction} {
        set fd [raw_connect]
        raw_send $fd "MULTI\r\nSET multi:reset 1\r\nRESET\r\nEXEC\r\nGET multi:reset\r\n"
        assert_equal [raw_read_reply $fd] "+OK"
        assert_equal [raw_read_reply $fd] "+QUEUED"
        assert_equal [raw_read_reply $fd] "+RESET"
        assert_match "-ERR EXEC without MULTI*" [raw_read_reply $fd]
        assert_equal [raw_read_reply $fd] "(nil)"
        raw_send $fd "MULTI\r\nSET multi:quit 1\r\nQUIT\r\n"
        assert_equal [raw_read_reply $fd] "+OK"
        assert_equal [raw_read_reply $fd] "+QUEUED"
        assert_equal [raw_read_reply $fd] "+OK"
        assert [raw_wait_closed $fd]
        r exists multi:quit
    } {0}
}
