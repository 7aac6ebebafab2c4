# Hostile input against a running node: what a client or a stranger on the
# network can send, and what it must not be able to do.  protocol.tcl has
# the malformed-RESP cases with Redis's exact errors; this file has the rest:
# sizes a client declares but never sends, binary garbage, the limits before
# AUTH, clients that never read, maxclients, protected mode, dangerous
# commands, and the cluster bus port.  Checked against redis-server 7.0.15 in
# direct mode wherever plain Redis has the same rule.

# The process clients talk to: redraft, or the redis-server in direct mode.
proc server_pid {} {
    if {[is_direct]} {return [srv redis_pid]}
    return [srv redraft_pid]
}

proc server_log {} {
    if {[is_direct]} {return [file join [srv dir] redis.log]}
    return [srv redraft_log]
}

proc rss_kb {pid} {
    set f [open /proc/$pid/status]
    set text [read $f]
    close $f
    if {![regexp {VmRSS:\s+(\d+)} $text -> kb]} {error "no VmRSS for $pid"}
    return $kb
}

proc count_lines {path pattern} {
    if {[catch {open $path} f]} {return 0}
    set n 0
    foreach line [split [read $f] \n] {
        if {[string match $pattern $line]} {incr n}
    }
    close $f
    return $n
}

# Waits ms while the event loop runs (background flushes of non-blocking
# channels go on meanwhile; a bare `after ms` would stop them).
proc pause {ms} {
    after $ms [list set ::hostile_pause 1]
    vwait ::hostile_pause
}

proc reply_lines {fd {ms 5000}} {
    return [raw_collect $fd 0 $ms 300]
}

# Waits (15 s at most) until the server logs that it closed a client for its
# output buffer, sampling pid's RSS meanwhile; returns the peak in KB.
proc wait_output_limit_close {pid logged_before} {
    set peak [rss_kb $pid]
    set deadline [expr {[clock milliseconds] + 15000}]
    while {[count_lines [server_log] {*overcoming of output buffer limits*}] == $logged_before} {
        if {[clock milliseconds] > $deadline} {fail "the client was not closed"}
        set peak [expr {max($peak, [rss_kb $pid])}]
        pause 20
    }
    return $peak
}

# A client whose socket is bound to a loopback address other than 127.0.0.1:
# for Redis (and so for redraft) that is not a local client.
proc connect_from {addr} {
    set fd [socket -myaddr $addr 127.0.0.1 [srv port]]
    fconfigure $fd -translation binary -blocking 1 -buffering full
    return $fd
}

# A HELLO as docs/cluster-bus.md defines it.
proc bus_hello {id {version 1}} {
    binary format a4SSWa16 RDBS $version 0 $id "0123456789abcdef"
}

# Sends a HELLO to the pair's bus port from addr; returns the bytes answered
# before the bus closed the connection or 1 s passed.
proc bus_answer_from {addr} {
    set fd [socket -myaddr $addr 127.0.0.1 [expr {[srv redraft_port] + 10000}]]
    fconfigure $fd -translation binary -blocking 1
    puts -nonewline $fd [bus_hello 4242]
    flush $fd
    fconfigure $fd -blocking 0
    set got {}
    set deadline [expr {[clock milliseconds] + 1000}]
    while {1} {
        append got [read $fd]
        if {[eof $fd] || [string length $got] >= 64} break
        if {![::rd::wait_readable $fd $deadline]} break
    }
    close $fd
    return $got
}

set denied_prefix "-DENIED Redis is running in protected mode because protected mode is enabled\
    and no password is set for the default user. In this mode connections are only accepted from\
    the loopback interface.*"

start_pair {} {
    test {A multibulk count of 20000000 reserves nothing before its arguments arrive} {
        set pid [server_pid]
        set before [rss_kb $pid]
        set fds {}
        for {set i 0} {$i < 20} {incr i} {
            set fd [raw_connect]
            raw_send $fd "*20000000\r\n\$3\r\nSET\r\n"
            lappend fds $fd
        }
        pause 300
        set grown [expr {[rss_kb $pid] - $before}]
        # 20 such counts taken at their word would be 20 x 20000000 argument slots.
        assert_lessthan $grown 20000
        assert_equal PONG [r ping]
        # The connections still wait for arguments; garbage where one belongs
        # is the usual protocol error.
        set fd [lindex $fds 0]
        raw_send $fd "\$blabla\r\n"
        lassign [reply_lines $fd] lines closed
        assert_equal {{-ERR Protocol error: invalid bulk length}} $lines
        assert_equal 1 $closed
        foreach fd $fds {catch {close $fd}}
        r dbsize
    } {0}

    # Redis's own "protocol desync" cases: a NUL where a command or a count
    # starts, then no line end ever.  The buffer must not grow without end.
    foreach {name seq err} {
        {a NUL} "\x00" {too big inline request}
        {a star and a NUL} "*\x00" {too big mbulk count string}
        {a dollar and a NUL} "\$\x00" {too big inline request}
    } {
        test "Desync: $name and 70 KB without a line end is a protocol error" {
            set fd [raw_connect]
            raw_send $fd "$seq[string repeat A 70000]"
            lassign [reply_lines $fd] lines closed
            assert_equal [list "-ERR Protocol error: $err"] $lines
            assert_equal 1 $closed
            r ping
        } {PONG}
    }

    test {Binary garbage changes no data and harms no other client} {
        r flushall
        r set keep me
        set good [new_client]
        expr {srand(20240817)}
        set total_lines 0
        set total_closed 0
        for {set c 0} {$c < 6} {incr c} {
            set bytes {}
            for {set i 0} {$i < 16384} {incr i} {
                append bytes [binary format c [expr {int(rand() * 256)}]]
            }
            set fd [raw_connect]
            catch {raw_send $fd $bytes}
            lassign [reply_lines $fd] lines closed
            foreach l $lines {
                assert_match {-*} $l "a reply to garbage that is not an error"
            }
            incr total_lines [llength $lines]
            incr total_closed $closed
            catch {close $fd}
            assert_equal me [$good get keep]
        }
        puts "    6 x 16 KB of random bytes: $total_lines error replies, $total_closed of 6 closed"
        assert_morethan $total_lines 0
        list [r dbsize] [r get keep]
    } {1 me}

    test {Protected mode: with no password, a client from 127.0.0.2 is DENIED and closed} {
        set fd [connect_from 127.0.0.2]
        # Refused on connect: nothing needs to be sent.
        lassign [reply_lines $fd] lines closed
        assert_equal 1 [llength $lines]
        assert_match $denied_prefix [lindex $lines 0]
        assert_equal 1 $closed
        # 127.0.0.1 is local, and still served.
        set fd [connect_from 127.0.0.1]
        raw_send $fd [resp_cmd PING]
        assert_equal +PONG [raw_read_reply $fd]
        close $fd
        r ping
    } {PONG}

    test {Protected mode: a client that sends before reading still gets DENIED} {
        set fd [connect_from 127.0.0.3]
        catch {raw_send $fd "[resp_cmd SET from-outside 1][resp_cmd PING]"}
        lassign [reply_lines $fd] lines closed
        assert_match $denied_prefix [lindex $lines 0]
        assert_equal 1 $closed
        r exists from-outside
    } {0}

    # The bus of this pair's node: it was started with --cluster-init yes and
    # the test secret (helpers.tcl), on the client port + 10000.
    set bus_port [expr {[srv redraft_port] + 10000}]

    test {Bus: a HELLO without the secret gets a WELCOME, and its proof is refused and logged} {
        needs_redraft {the cluster bus is redraft's}
        set info [r raft.info]
        regexp {node_id:(\d+)} $info -> self
        regexp {term:(\d+)} $info -> term
        set fd [socket 127.0.0.1 $bus_port]
        fconfigure $fd -translation binary -blocking 1
        puts -nonewline $fd [bus_hello 4242]
        flush $fd
        set welcome [::rd::timed_read $fd 64]
        binary scan $welcome a4SSW magic version flags id
        assert_equal [list RDBS 1 0 $self] [list $magic $version $flags $id]
        # A guess at the proof, then a frame as if the link were up.
        puts -nonewline $fd "[string repeat \x00 32][binary format IcA3 3 1 abc]"
        flush $fd
        assert_equal 1 [raw_wait_closed $fd 3000] "a wrong proof left the connection open"
        catch {close $fd}
        wait_for_condition 50 50 {
            [count_lines [srv redraft_log] {*bus:*rejected connection*wrong proof*}] > 0
        } {fail "the wrong proof was not logged"}
        # Nothing changed: same term, no new member, writes work.
        set info [r raft.info]
        regexp {term:(\d+)} $info -> term_after
        assert_equal $term $term_after
        assert_equal 0 [string match *4242* $info]
        r set after-bus-intruder ok
    } {OK}

    test {Bus: a bad version, node id 0, the node's own id or a frame first is closed at once} {
        needs_redraft {the cluster bus is redraft's}
        regexp {node_id:(\d+)} [r raft.info] -> self
        foreach {what data} [list \
            {version 2} [bus_hello 77 2] \
            {node id 0} [bus_hello 0] \
            {its own id} [bus_hello $self] \
            {a frame before any handshake} [binary format IcA3 3 1 abc] \
            {an HTTP request} "GET / HTTP/1.0\r\n\r\n"] {
            set fd [socket 127.0.0.1 $bus_port]
            fconfigure $fd -translation binary -blocking 1
            puts -nonewline $fd $data
            flush $fd
            fconfigure $fd -blocking 0
            set got {}
            set deadline [expr {[clock milliseconds] + 3000}]
            while {![eof $fd] && [clock milliseconds] < $deadline} {
                append got [read $fd]
                ::rd::wait_readable $fd $deadline
            }
            assert_equal 1 [eof $fd] "$what: still open"
            assert_equal {} $got "$what: the bus answered"
            catch {close $fd}
        }
        r set after-bus-garbage ok
    } {OK}
}

start_pair {redraft {--requirepass pw} direct {--requirepass pw}} {
    test {Before AUTH: 10 arguments and 16384-byte bulks are allowed, one more is not} {
        set fd [raw_connect]
        raw_send $fd [resp_cmd SET k [string repeat x 16384] a b c d e f g]
        assert_equal {-NOAUTH Authentication required.} [raw_read_reply $fd]
        close $fd
        set fd [raw_connect]
        raw_send $fd "*11\r\n"
        lassign [reply_lines $fd] lines closed
        assert_equal {{-ERR Protocol error: unauthenticated multibulk length}} $lines
        assert_equal 1 $closed
        set fd [raw_connect]
        raw_send $fd "*2\r\n\$3\r\nGET\r\n\$16385\r\n"
        lassign [reply_lines $fd] lines closed
        assert_equal {{-ERR Protocol error: unauthenticated bulk length}} $lines
        assert_equal 1 $closed
    }

    test {Before AUTH: an inline request is not held to 10 arguments (Redis 7.0 neither)} {
        set fd [raw_connect]
        raw_send $fd "SET [string repeat {a } 30]\r\n"
        assert_equal {-NOAUTH Authentication required.} [raw_read_reply $fd]
        close $fd
    }

    test {Before AUTH: a client that never reads is closed after a few KB of replies} {
        set pid [server_pid]
        set before [rss_kb $pid]
        set logged [count_lines [server_log] {*overcoming of output buffer limits*}]
        set fd [raw_connect]
        fconfigure $fd -blocking 0 -buffering full
        # 3 MB of PINGs: 17 MB of NOAUTH errors if all were kept.
        catch {puts -nonewline $fd [string repeat "PING\r\n" 500000]; flush $fd}
        set peak [wait_output_limit_close $pid $logged]
        catch {close $fd}
        puts "    RSS before [expr {$before / 1024}] MB, peak [expr {$peak / 1024}] MB"
        assert_lessthan [expr {$peak - $before}] 8000
        # Authenticated clients are not affected.
        r auth pw
        r ping
    } {PONG}
}

start_pair {redraft {--client-output-buffer-limit 1mb}
            direct {--client-output-buffer-limit {normal 1mb 0 0}}} {
    test {A client that never reads its replies is closed at the output limit; memory stays bounded} {
        r set big [string repeat x 100000]
        set pid [server_pid]
        set before [rss_kb $pid]
        set logged [count_lines [server_log] {*overcoming of output buffer limits*}]
        set fd [raw_connect]
        fconfigure $fd -blocking 0 -buffering full
        # 2000 x 100 KB = 200 MB of replies if nothing stopped them.
        catch {puts -nonewline $fd [string repeat [resp_cmd GET big] 2000]; flush $fd}
        set peak [wait_output_limit_close $pid $logged]
        # Its connection ends once the kernel's buffers are read.
        assert_equal 1 [raw_wait_closed $fd 10000]
        catch {close $fd}
        pause 200
        set after [rss_kb $pid]
        puts "    RSS before [expr {$before / 1024}] MB, peak [expr {$peak / 1024}] MB,\
            after [expr {$after / 1024}] MB"
        assert_lessthan [expr {$peak - $before}] 40000
        # A client that reads gets the same reply in full.
        string length [r get big]
    } {100000}
}

start_pair {redraft {--maxclients 4} direct {--maxclients 4}} {
    test {maxclients: the connection over the limit is told and closed; a freed slot is reused} {
        # `r` is one client; three more fill the limit.
        set fds {}
        for {set i 0} {$i < 3} {incr i} {
            set fd [raw_connect]
            raw_send $fd [resp_cmd PING]
            assert_equal +PONG [raw_read_reply $fd]
            lappend fds $fd
        }
        set fd [raw_connect]
        lassign [reply_lines $fd] lines closed
        assert_equal {{-ERR max number of clients reached}} $lines
        assert_equal 1 $closed
        close [lindex $fds 0]
        wait_for_condition 50 50 {
            [catch {
                set fd [raw_connect]
                raw_send $fd [resp_cmd PING]
                set reply [raw_read_reply $fd]
                close $fd
            }] == 0 && $reply eq "+PONG"
        } {fail "a freed slot was not given to a new client"}
        r ping
    } {PONG}
}

start_pair {redraft {--requirepass pw} direct {--requirepass pw}} {
    test {Protected mode does not apply once a password is set} {
        set fd [connect_from 127.0.0.2]
        raw_send $fd "[resp_cmd PING][resp_cmd AUTH pw][resp_cmd PING]"
        assert_equal {-NOAUTH Authentication required.} [raw_read_reply $fd]
        assert_equal +OK [raw_read_reply $fd]
        assert_equal +PONG [raw_read_reply $fd]
        close $fd
    }
}

start_pair {redraft {--protected-mode no} direct {--protected-mode no}} {
    test {protected-mode no: a client from 127.0.0.2 is served without a password} {
        set fd [connect_from 127.0.0.2]
        raw_send $fd [resp_cmd PING]
        set reply [raw_read_reply $fd]
        close $fd
        set reply
    } {+PONG}
}

start_pair {redraft {--cluster-secret {}} only_redraft {the cluster bus is redraft's}} {
    test {Bus protected mode: with an empty cluster-secret, a peer from 127.0.0.2 is refused} {
        assert_equal {} [bus_answer_from 127.0.0.2] "the bus answered a non-local peer"
        wait_for_condition 50 50 {
            [count_lines [srv redraft_log] {*bus:*refused connection*protected mode*}] > 0
        } {fail "the refusal was not logged"}
        # A local peer still gets its WELCOME.
        string range [bus_answer_from 127.0.0.1] 0 3
    } {RDBS}
}

start_pair {redraft {--cluster-secret {} --protected-mode no}
            only_redraft {the cluster bus is redraft's}} {
    test {Bus protected mode: protected-mode no lets a peer from 127.0.0.2 handshake} {
        string range [bus_answer_from 127.0.0.2] 0 3
    } {RDBS}
}

# Commands that would change the local Redis behind redraft's back, make the
# replicas differ, or stop a server.  Last, in a pair of their own: one that
# slipped through would break what follows.  basic.tcl has the plain forms of
# a few; these are the rest and the ways around a refusal.
start_pair {} {
    set refused {
        {CONFIG SET dir /tmp}
        {config set DIR /tmp}
        {CONFIG SET maxmemory-policy allkeys-lru dir /tmp}
        {CONFIG SET requirepass x}
        {CONFIG SET masterauth x}
        {CONFIG SET protected-mode no}
        {CONFIG SET enable-debug-command yes}
        {CONFIG SET enable-module-command yes}
        {CONFIG SET maxclients 1}
        {CONFIG SET timeout 1}
        {CONFIG SET proto-max-bulk-len 1mb}
        {CONFIG SET client-query-buffer-limit 1mb}
        {CONFIG SET client-output-buffer-limit {normal 1mb 0 0}}
        {CONFIG SET maxmemory-clients 1}
        {CONFIG SET tls-port 1}
        {CONFIG SET replica-read-only no}
        {CONFIG SET databases 1}
        {CONFIG REWRITE}
        {REPLICAOF NO ONE}
        {SLAVEOF 127.0.0.1 1}
        {MODULE LOAD /tmp/no-such-module.so}
        {MODULE UNLOAD json}
        {MODULE LIST}
        {DEBUG SEGFAULT}
        {DEBUG RELOAD}
        {DEBUG SET-ACTIVE-EXPIRE 0}
        {SHUTDOWN}
        {SHUTDOWN ABORT}
        {MIGRATE 127.0.0.1 1 k 0 1000}
        {FAILOVER}
        {SYNC}
        {PSYNC ? -1}
        {ACL SETUSER default off}
        {ACL DELUSER default}
        {ACL LOAD}
        {SAVE}
        {BGSAVE}
        {BGREWRITEAOF}
        {CLUSTER RESET}
    }
    foreach cmd $refused {
        test "Refused: $cmd" {
            needs_redraft {plain Redis runs them}
            set err {}
            assert_equal 1 [catch {r {*}$cmd} err] "'$cmd' was run"
            # redraft's own refusal, not Redis's (which refuses MODULE and DEBUG by default
            # too, but only until someone enables them).
            assert_match {ERR *redraft*} $err
            r ping
        } {PONG}
    }

    test {Refused inside MULTI: the command is not queued and EXEC aborts} {
        needs_redraft {plain Redis runs them}
        r multi
        r set in-multi 1
        assert_error {ERR *not allowed*} {r config set dir /tmp}
        assert_error {ERR *} {r module load /tmp/x.so}
        assert_error {ERR *} {r shutdown}
        assert_error {EXECABORT*} {r exec}
        r exists in-multi
    } {0}

    test {Refused as an inline command too} {
        needs_redraft {plain Redis runs them}
        set fd [raw_connect]
        raw_send $fd "CONFIG SET dir /tmp\r\nshutdown nosave\r\nPING\r\n"
        set a [raw_read_reply $fd]
        set b [raw_read_reply $fd]
        set c [raw_read_reply $fd]
        close $fd
        assert_match {-ERR CONFIG SET dir is not allowed*} $a
        assert_match {-ERR SHUTDOWN is not allowed*} $b
        set c
    } {+PONG}

    test {Scripts cannot reach them either: Redis refuses them inside a script} {
        foreach {cmd} {
            {'config','set','dir','/tmp'}
            {'shutdown','nosave'}
            {'replicaof','127.0.0.1','1'}
            {'debug','sleep','0'}
            {'module','load','/tmp/x.so'}
        } {
            catch {r eval "return redis.call($cmd)" 0} err
            assert_match {*not allowed from script*} $err
        }
        r ping
    } {PONG}

    test {After all that, the local Redis is as it was} {
        needs_redraft {plain Redis ran some of them}
        set be [redis 127.0.0.1 [srv redis_port]]
        set state [list \
            [lindex [$be config get dir] 1] \
            [lindex [$be role] 0] \
            [lindex [$be config get requirepass] 1] \
            [lindex [$be config get maxclients] 1] \
            [lindex [$be config get proto-max-bulk-len] 1] \
            [lindex [$be config get maxmemory-policy] 1] \
            [llength [$be module list]]]
        $be close
        assert_equal [srv dir] [lindex $state 0]
        lrange $state 1 end
    } {master {} 10000 536870912 noeviction 0}
}
