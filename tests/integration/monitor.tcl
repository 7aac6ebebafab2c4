# MONITOR: the commands this redraft's clients send, in Redis's line format.

start_pair {} {
    test {MONITOR shows other clients' commands, quoted and escaped as Redis does} {
        set m [raw_connect]
        raw_send $m "MONITOR\r\n"
        assert_equal [raw_read_reply $m] "+OK"
        r set mon:k "a \"b\"\n\x01"
        r get mon:k
        set l1 [raw_read_reply $m]
        set l2 [raw_read_reply $m]
        assert [regexp {^\+[0-9]+\.[0-9]{6} \[0 127\.0\.0\.1:[0-9]+\] (.*)$} $l1 -> args1] $l1
        assert_equal $args1 {"set" "mon:k" "a \"b\"\n\x01"}
        assert_match {*\] "get" "mon:k"} $l2
        close $m
    }

    test {MONITOR hides passwords and admin commands, and follows SELECT} {
        set m [raw_connect]
        raw_send $m "MONITOR\r\n"
        assert_equal [raw_read_reply $m] "+OK"
        catch {r auth not-real} _
        catch {r auth someone not-a-password} _
        catch {r hello 2 AUTH someone not-a-password} _
        r config get maxmemory-policy ;# admin: not shown
        r select 3
        r ping
        r select 0
        assert_match {*"auth" "(redacted)"} [raw_read_reply $m]
        assert_match {*"auth" "(redacted)" "(redacted)"} [raw_read_reply $m]
        assert_match {*"hello" "2" "AUTH" "(redacted)" "(redacted)"} [raw_read_reply $m]
        assert_match {*\[3 *\] "select" "3"} [raw_read_reply $m]
        assert_match {*\[3 *\] "ping"} [raw_read_reply $m]
        assert_match {*\[0 *\] "select" "0"} [raw_read_reply $m]
        close $m
    }

    test {MONITOR shows a transaction as multi, its commands, exec; unknown commands not at all} {
        set m [raw_connect]
        raw_send $m "MONITOR\r\n"
        assert_equal [raw_read_reply $m] "+OK"
        r multi
        r set mon:t 1
        r incr mon:t
        r exec
        r multi
        catch {r no-such-command} _
        catch {r exec} _
        assert_match {*"multi"} [raw_read_reply $m]
        assert_match {*"set" "mon:t" "1"} [raw_read_reply $m]
        assert_match {*"incr" "mon:t"} [raw_read_reply $m]
        assert_match {*"exec"} [raw_read_reply $m]
        assert_match {*"multi"} [raw_read_reply $m]
        assert_match {*"exec"} [raw_read_reply $m]
        close $m
    }

    test {A monitoring client cannot touch the keyspace; RESET ends MONITOR} {
        set m [raw_connect]
        raw_send $m "MONITOR\r\n"
        assert_equal [raw_read_reply $m] "+OK"
        assert_match {*flags=O*} [r client list]
        raw_send $m "GET mon:k\r\n"
        assert_match {-ERR*can't interact with the keyspace*} [raw_read_reply $m]
        raw_send $m "RESET\r\n"
        assert_equal [raw_read_reply $m] "+RESET"
        assert {![string match {*flags=O*} [r client list]]}
        r set mon:after 1
        raw_send $m "PING\r\n"
        # the SET above is not shown any more: the next thing read is PING's reply
        assert_equal [raw_read_reply $m] "+PONG"
        close $m
    }
}
