# The client protocol: malformed RESP closes that one client with Redis's own
# protocol error while other clients go on; AUTH with --requirepass answers
# as Redis does.  Every expected string here is what redis-server 7.0.15 says.

# Send data on a fresh connection; return {replies closed} as raw_collect
# does, waiting for nlines lines before a quiet moment counts as the end.
proc send_raw_and_collect {data {nlines 0} {ms 3000}} {
    set fd [raw_connect]
    fconfigure $fd -buffering none
    catch {puts -nonewline $fd $data}
    return [raw_collect $fd $nlines $ms]
}

start_pair {} {
    set cases [list \
        {invalid multibulk length} \
        "*3000000000\r\n" \
        {{-ERR Protocol error: invalid multibulk length}} 1 \
        \
        {invalid bulk length} \
        "*1\r\n\$blabla\r\n" \
        {{-ERR Protocol error: invalid bulk length}} 1 \
        \
        {negative bulk length} \
        "*1\r\n\$-1\r\n" \
        {{-ERR Protocol error: invalid bulk length}} 1 \
        \
        {bulk length over proto-max-bulk-len} \
        "*1\r\n\$536870913\r\n" \
        {{-ERR Protocol error: invalid bulk length}} 1 \
        \
        {no dollar before a bulk} \
        "*1\r\nfoo\r\n" \
        {{-ERR Protocol error: expected '$', got 'f'}} 1 \
        \
        {unbalanced quotes in an inline command} \
        "set \"foo\r\n" \
        {{-ERR Protocol error: unbalanced quotes in request}} 1 \
        \
        {a good command, then a bad one} \
        "PING\r\n*1\r\n\$x\r\n" \
        {+PONG {-ERR Protocol error: invalid bulk length}} 1 \
        \
        {an inline request over 64 KB} \
        [string repeat a 70000] \
        {{-ERR Protocol error: too big inline request}} 1 \
        \
        {a multibulk count over 64 KB} \
        "*[string repeat 1 70000]" \
        {{-ERR Protocol error: too big mbulk count string}} 1 \
        \
        {a bulk count over 64 KB} \
        "*1\r\n\$[string repeat 1 70000]" \
        {{-ERR Protocol error: too big bulk count string}} 1 \
        \
        {a negative multibulk count is ignored} \
        "*-10\r\nPING\r\n" \
        {+PONG} 0 \
        \
        {an empty multibulk is ignored} \
        "*0\r\nPING\r\n" \
        {+PONG} 0 \
        \
        {a dollar line is an inline command} \
        "\$blabla\r\nPING\r\n" \
        {{-ERR unknown command '$blabla', with args beginning with: } +PONG} 0 \
    ]
    foreach {name data expect closes} $cases {
        test "Malformed input: $name" {
            # A well-behaved client connected before, during and after.
            set good [new_client]
            $good set good-key before
            lassign [send_raw_and_collect $data [llength $expect]] replies closed
            assert_equal $expect $replies "replies"
            assert_equal $closes $closed "connection closed"
            assert_equal before [$good get good-key]
            assert_equal OK [$good set good-key after]
            r get good-key
        } {after}
    }

    test {A client that sends garbage mid-pipeline gets its earlier replies first} {
        set data "[resp_cmd SET mid 1][resp_cmd INCR mid]*1\r\n\$zz\r\n[resp_cmd INCR mid]"
        lassign [send_raw_and_collect $data 3] replies closed
        assert_equal {+OK :2 {-ERR Protocol error: invalid bulk length}} $replies
        assert_equal 1 $closed
        # The command after the garbage never ran.
        r get mid
    } {2}

    test {Many clients that fail at once leave the server serving} {
        set fds {}
        for {set i 0} {$i < 20} {incr i} {
            set fd [raw_connect]
            raw_send $fd "*1\r\n\$bad\r\n"
            lappend fds $fd
        }
        set closed 0
        foreach fd $fds {incr closed [raw_wait_closed $fd 3000]}
        assert_equal 20 $closed
        r ping
    } {PONG}
}

start_pair {redraft {--requirepass secret} direct {--requirepass secret}} {
    test {requirepass: commands before AUTH get NOAUTH} {
        assert_error {NOAUTH Authentication required.} {r get foo}
        assert_error {NOAUTH Authentication required.} {r set foo bar}
        assert_error {NOAUTH Authentication required.} {r ping}
        assert_error {NOAUTH Authentication required.} {r select 1}
    }

    test {requirepass: a wrong password gets WRONGPASS} {
        assert_error {WRONGPASS invalid username-password pair or user is disabled.} {r auth wrong}
        assert_error {WRONGPASS invalid username-password pair or user is disabled.} {r auth default wrong}
        assert_error {WRONGPASS invalid username-password pair or user is disabled.} {r auth nosuchuser secret}
        assert_error {ERR syntax error} {r auth a b c}
        assert_error {NOAUTH Authentication required.} {r get foo}
    }

    test {requirepass: AUTH secret opens the connection} {
        assert_equal OK [r auth secret]
        # The SET refused before AUTH wrote nothing.
        assert_equal {} [r get foo]
        assert_equal OK [r set foo bar]
        r get foo
    } {bar}

    test {requirepass: AUTH default secret, and AUTH is per connection} {
        set c [new_client]
        assert_error {NOAUTH Authentication required.} {$c get foo}
        assert_equal OK [$c auth default secret]
        assert_equal bar [$c get foo]
        set c2 [new_client]
        assert_error {NOAUTH*} {$c2 get foo}
    }

    test {requirepass: HELLO 2 AUTH default secret} {
        set c [new_client]
        assert_error {WRONGPASS*} {$c hello 2 auth default wrong}
        set h [$c hello 2 auth default secret]
        assert_equal 2 [dict get $h proto]
        $c get foo
    } {bar}

    test {requirepass: unauthenticated clients get Redis's tighter limits} {
        lassign [send_raw_and_collect "*11\r\n" 1] replies closed
        assert_equal {{-ERR Protocol error: unauthenticated multibulk length}} $replies
        assert_equal 1 $closed
        lassign [send_raw_and_collect "*1\r\n\$16385\r\n" 1] replies closed
        assert_equal {{-ERR Protocol error: unauthenticated bulk length}} $replies
        assert_equal 1 $closed
        # Authenticated, the same sizes are fine.
        set c [new_client]
        $c auth secret
        $c set k [string repeat x 16385]
        $c strlen k
    } {16385}
}

# redraft authenticates to a backend that has its own password; its clients
# need none.
start_pair {redis {--requirepass backendpass} redraft {--redis-password backendpass}
            only_redraft {the backend password is redraft's}} {
    test {--redis-password: redraft works with a backend that has a password} {
        assert_equal OK [r set bp 1]
        assert_equal 2 [r incr bp]
        r get bp
    } {2}

    test {--redis-password: the backend really refuses clients without it} {
        set be [redis 127.0.0.1 [srv redis_port]]
        catch {$be get bp} err
        $be close
        set err
    } {NOAUTH Authentication required.}
}
