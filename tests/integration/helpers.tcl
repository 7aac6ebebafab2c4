# Helpers for redraft's integration tests, in the style of Redis's own suite.
#
# A test file is sourced by run.tcl in a child tclsh of its own, after Redis's
# Tcl client (tests/support/redis.tcl of the fetched redis source) and this
# file.  It uses:
#
#   start_pair {options} {body}   a redis-server plus a redraft in front of it;
#                                 `r` (a command and a variable) is a client of
#                                 redraft; `srv key` tells ports, pids, dirs
#   test {name} {body} ?expected? one test; a failed assertion fails it and the
#                                 run goes on
#   assert_equal / assert_match / assert_error / assert_range / ...
#   wait_for_condition maxtries delay_ms {cond} {else-body}
#   kill_redraft / start_redraft / restart_redraft, kill_redis / start_redis /
#   restart_redis, new_client, raw_connect / raw_send / raw_read_reply
#   needs_redraft {reason}        skips the rest of a test in direct mode
#
# Direct mode (--direct or REDRAFT_DIRECT=1): start_pair starts only the
# redis-server and points the clients at it.  Most tests must pass against
# plain Redis as well; that is how the tests themselves are validated.
#
# Ownership: every process is started with `exec ... &`, so its pid is known;
# the helpers kill exactly those pids and announce them to the parent runner
# ("#pid N" / "#unpid N" lines) so it can clean up after a child that hangs.
# Everything waits with a bound: there is no unbounded read or loop here.

namespace eval ::rd {
    variable build build          ;# folder with the redraft binary
    variable direct 0             ;# 1: no redraft, clients talk to redis
    variable verbose 0
    variable file {}              ;# test file being run (for messages)
    variable tmproot {}           ;# tests/integration/tmp
    variable match {}             ;# only tests whose name matches (glob)
    variable io_timeout_ms 10000  ;# bound on one blocking read of a reply
    variable start_timeout_ms 15000
    variable stop_timeout_ms 5000
    variable passed 0
    variable failed 0
    variable skipped 0
    variable pairs {}             ;# stack of dicts, innermost last
    variable clientid 0
    variable waitid 0
    variable pairid 0
}

# ---------------------------------------------------------------------------
# Reading replies with a deadline.
#
# redis.tcl reads replies with blocking reads; a redraft that never answers
# would hang the whole run.  We replace its two low-level readers with ones
# that wait for data through the event loop with a deadline, so a stuck read
# fails the test with "I/O timeout" instead of stopping everything.

proc ::rd::wait_readable {fd deadline} {
    set ms [expr {$deadline - [clock milliseconds]}]
    if {$ms <= 0} {return 0}
    set v ::rd::wait_var([incr ::rd::waitid])
    set $v {}
    fileevent $fd readable [list set $v r]
    set t [after $ms [list set $v t]]
    vwait $v
    after cancel $t
    catch {fileevent $fd readable {}}
    set how [set $v]
    unset $v
    return [expr {$how eq "r"}]
}

proc ::rd::io_timeout {fd} {
    # The stream is out of step after a timeout: drop the connection.
    catch {close $fd}
    foreach id [array names ::redis::fd] {
        if {$::redis::fd($id) eq $fd} {set ::redis::fd($id) {}}
    }
    error "I/O timeout: no reply within $::rd::io_timeout_ms ms"
}

# Read exactly len bytes (or until EOF); len -1 reads until EOF.
proc ::rd::timed_read {fd len} {
    if {![fconfigure $fd -blocking]} {
        if {$len == -1} {return [read $fd]}
        return [read $fd $len]
    }
    set deadline [expr {[clock milliseconds] + $::rd::io_timeout_ms}]
    set buf {}
    fconfigure $fd -blocking 0
    try {
        while {1} {
            if {$len == -1} {
                append buf [read $fd]
            } else {
                append buf [read $fd [expr {$len - [string length $buf]}]]
                if {[string length $buf] >= $len} break
            }
            if {[eof $fd]} break
            if {![wait_readable $fd $deadline]} {
                fconfigure $fd -blocking 1
                io_timeout $fd
            }
        }
    } on error {msg opts} {
        catch {fconfigure $fd -blocking 1}
        if {[string match "*connection abort*" $msg] ||
            [string match "*connection reset*" $msg]} {
            return $buf
        }
        return -options $opts $msg
    }
    catch {fconfigure $fd -blocking 1}
    return $buf
}

proc ::rd::timed_gets {fd} {
    if {![fconfigure $fd -blocking]} {return [gets $fd]}
    set deadline [expr {[clock milliseconds] + $::rd::io_timeout_ms}]
    fconfigure $fd -blocking 0
    try {
        while {1} {
            if {[gets $fd line] >= 0} break
            if {[eof $fd]} {set line {}; break}
            if {![wait_readable $fd $deadline]} {
                fconfigure $fd -blocking 1
                io_timeout $fd
            }
        }
    } on error {msg opts} {
        catch {fconfigure $fd -blocking 1}
        if {[string match "*connection abort*" $msg] ||
            [string match "*connection reset*" $msg]} {
            return {}
        }
        return -options $opts $msg
    }
    catch {fconfigure $fd -blocking 1}
    return $line
}

proc ::redis::redis_safe_read {fd len} {::rd::timed_read $fd $len}
proc ::redis::redis_safe_gets {fd} {::rd::timed_gets $fd}

# ---------------------------------------------------------------------------
# Assertions (the names and messages of Redis's suite).

proc assert {cond {msg {}}} {
    if {![uplevel 1 [list expr $cond]]} {
        if {$msg eq {}} {set msg "'$cond'"}
        error "assertion:Expected $msg to be true"
    }
}

proc assert_equal {value expected {detail {}}} {
    if {$value ne $expected} {
        if {$detail ne {}} {set detail " ($detail)"}
        error "assertion:Expected '[::rd::clip $value]' to be equal to '[::rd::clip $expected]'$detail"
    }
}

proc assert_not_equal {value expected {detail {}}} {
    if {$value eq $expected} {
        if {$detail ne {}} {set detail " ($detail)"}
        error "assertion:Expected '[::rd::clip $value]' to be not equal to '[::rd::clip $expected]'$detail"
    }
}

proc assert_match {pattern value {detail {}}} {
    if {![string match $pattern $value]} {
        if {$detail ne {}} {set detail " ($detail)"}
        error "assertion:Expected '[::rd::clip $value]' to match '$pattern'$detail"
    }
}

proc assert_range {value min max {detail {}}} {
    if {!($value >= $min && $value <= $max)} {
        if {$detail ne {}} {set detail " ($detail)"}
        error "assertion:Expected '$value' to be between $min and $max$detail"
    }
}

proc assert_morethan {value than} {
    if {!($value > $than)} {error "assertion:Expected '$value' to be more than '$than'"}
}

proc assert_lessthan {value than} {
    if {!($value < $than)} {error "assertion:Expected '$value' to be less than '$than'"}
}

# The script must fail, with an error message matching pattern.
proc assert_error {pattern code} {
    if {[catch {uplevel 1 $code} err]} {
        assert_match $pattern $err
    } else {
        error "assertion:Expected an error matching '$pattern' but got '[::rd::clip $err]'"
    }
}

proc assert_type {type key} {
    assert_equal $type [r type $key]
}

proc ::rd::clip {s} {
    if {[string length $s] > 300} {
        return "[string range $s 0 296]...([string length $s] bytes)"
    }
    return $s
}

# Evaluate cond every delay ms, at most maxtries times, until true; else run
# elsescript (usually `fail "..."`).
proc wait_for_condition {maxtries delay cond elsescript} {
    while {[incr maxtries -1] >= 0} {
        set ok [uplevel 1 [list expr $cond]]
        if {$ok} return
        after $delay
    }
    uplevel 1 $elsescript
}

proc fail {msg} {
    error "assertion:$msg"
}

# Skip the rest of the current test unless redraft is in front of redis.
proc needs_redraft {reason} {
    if {$::rd::direct} {
        return -code error -errorcode [list RDSKIP $reason] "skipped: $reason"
    }
}

proc skip_test {reason} {
    return -code error -errorcode [list RDSKIP $reason] "skipped: $reason"
}

proc is_direct {} {return $::rd::direct}

# ---------------------------------------------------------------------------
# test

proc test {name code {expected __undefined__}} {
    if {$::rd::match ne {} && ![string match $::rd::match $name]} return
    puts "#test $name"
    flush stdout
    set start [clock milliseconds]
    set rc [catch {uplevel 1 $code} result opts]
    set ms [expr {[clock milliseconds] - $start}]
    set detail {}
    if {$rc == 1 && [lindex [dict get $opts -errorcode] 0] eq "RDSKIP"} {
        incr ::rd::skipped
        puts "\[skip\]: $name -- [lindex [dict get $opts -errorcode] 1]"
        flush stdout
        return
    }
    if {$rc == 1} {
        if {[string match "assertion:*" $result]} {
            set detail [string range $result 10 end]
        } else {
            set info [split [dict get $opts -errorinfo] \n]
            if {[llength $info] > 12} {set info [concat [lrange $info 0 11] ...]}
            set detail "exception: [join $info \n]"
        }
    } elseif {$rc != 0 && $rc != 2} {
        set detail "test body returned code $rc"
    } elseif {$expected ne "__undefined__" && $result ne $expected &&
              ![string match $expected $result]} {
        set detail "Expected '$expected' to equal or match '[::rd::clip $result]'"
    }
    if {$detail eq {}} {
        incr ::rd::passed
        puts "\[ok\]: $name ($ms ms)"
    } else {
        incr ::rd::failed
        puts "\[err\]: $name in $::rd::file"
        foreach line [split $detail \n] {puts "  $line"}
        ::rd::report_failure_context
    }
    flush stdout
}

# After a failure: where the servers' files are, and what redraft last said.
proc ::rd::report_failure_context {} {
    if {[llength $::rd::pairs] == 0} return
    set p [lindex $::rd::pairs end]
    puts "  tmp dir (kept): [dict get $p dir]"
    set log [dict get $p redraft_log]
    if {!$::rd::direct && [file exists $log]} {
        puts "  --- last lines of $log"
        foreach line [tail_lines $log 25] {puts "  | $line"}
    }
}

proc tail_lines {path n} {
    if {[catch {
        set f [open $path r]
        fconfigure $f -translation binary
        set size [file size $path]
        if {$size > 65536} {seek $f [expr {$size - 65536}]}
        set data [read $f]
        close $f
    }]} {return {}}
    set lines [split [string trimright $data \n] \n]
    return [lrange $lines end-[expr {$n - 1}] end]
}

# ---------------------------------------------------------------------------
# Processes.

# Is pid running (a zombie counts as gone)?
proc ::rd::alive {pid} {
    if {[catch {
        set f [open /proc/$pid/stat r]
        set stat [read $f]
        close $f
    }]} {return 0}
    # The state follows the ") " that closes the command name.
    set state [string index [string range $stat [expr {[string last ") " $stat] + 2}] end] 0]
    return [expr {$state ne "Z" && $state ne "X"}]
}

proc ::rd::signal {sig pid} {
    catch {exec kill -$sig $pid}
}

# Wait up to ms for pid to be gone; 1 if it is.
proc ::rd::wait_gone {pid ms} {
    set deadline [expr {[clock milliseconds] + $ms}]
    while {[alive $pid]} {
        if {[clock milliseconds] >= $deadline} {return 0}
        after 10
    }
    return 1
}

proc ::rd::spawned {pid} {
    puts "#pid $pid"
    flush stdout
}

proc ::rd::reaped {pid} {
    puts "#unpid $pid"
    flush stdout
    # Let Tcl reap the zombie (it does so on its next exec).
    catch {exec true}
}

# SIGTERM, then SIGKILL if it is still there after the stop timeout.
proc ::rd::stop_process {pid} {
    if {$pid eq {} || $pid == 0} return
    if {[alive $pid]} {
        signal TERM $pid
        if {![wait_gone $pid $::rd::stop_timeout_ms]} {
            signal KILL $pid
            wait_gone $pid $::rd::stop_timeout_ms
        }
    }
    reaped $pid
}

proc ::rd::kill9 {pid} {
    if {$pid eq {} || $pid == 0} return
    signal KILL $pid
    if {![wait_gone $pid $::rd::stop_timeout_ms]} {
        error "pid $pid still alive after kill -9"
    }
    reaped $pid
}

# ---------------------------------------------------------------------------
# Ports.

# A port nobody listens on, from a range away from the kernel's ephemeral ports
# (32768-60999).  With bus 1, port+10000 (redraft's default cluster bus port)
# must be free as well.
proc free_port {{bus 0}} {
    if {![info exists ::rd::next_port]} {
        set ::rd::next_port [expr {20000 + ([pid] * 7) % 9000}]
    }
    for {set tries 0} {$tries < 9000} {incr tries} {
        set port $::rd::next_port
        incr ::rd::next_port
        if {$::rd::next_port >= 29000} {set ::rd::next_port 20000}
        if {![::rd::port_is_free $port]} continue
        if {$bus && ![::rd::port_is_free [expr {$port + 10000}]]} continue
        return $port
    }
    error "no free port found"
}

proc ::rd::port_is_free {port} {
    if {[catch {socket -server {apply {{c a p} {close $c}}} -myaddr 127.0.0.1 $port} s]} {
        return 0
    }
    close $s
    return 1
}

# ---------------------------------------------------------------------------
# Starting and stopping servers.

proc ::rd::redis_args {p} {
    return [list --port [dict get $p redis_port] --bind 127.0.0.1 --save {} \
        --appendonly no --daemonize no --dir [dict get $p dir] \
        {*}[dict get $p redis_opts]]
}

proc ::rd::redraft_args {p} {
    set args [list --port [dict get $p redraft_port] --bind 127.0.0.1 \
        --redis 127.0.0.1:[dict get $p redis_port] --dir [dict get $p raft_dir] \
        --logfile [dict get $p redraft_log] --loglevel verbose \
        --cluster-init yes --cluster-secret redraft-test-secret]
    return [concat $args [dict get $p redraft_opts]]
}

# Ask host:port PING on a fresh connection, with a short deadline.  Returns
# the first reply line, or {} when there is no answer.
proc ::rd::probe {port {cmd PING}} {
    if {[catch {socket 127.0.0.1 $port} fd]} {return {}}
    fconfigure $fd -translation binary
    set reply {}
    catch {
        set parts [list "*[llength $cmd]\r\n"]
        foreach a $cmd {lappend parts "\$[string length $a]\r\n$a\r\n"}
        puts -nonewline $fd [join $parts {}]
        flush $fd
        set saved $::rd::io_timeout_ms
        set ::rd::io_timeout_ms 1000
        try {
            set reply [string trimright [timed_gets $fd] \r]
        } finally {
            set ::rd::io_timeout_ms $saved
        }
    }
    catch {close $fd}
    return $reply
}

# Wait until pid answers on port (PONG, or NOAUTH when a password is set).
proc ::rd::wait_ready {what pid port log {cmd PING} {any 0}} {
    set deadline [expr {[clock milliseconds] + $::rd::start_timeout_ms}]
    while {1} {
        if {![alive $pid]} {
            set tail [join [tail_lines $log 20] "\n  | "]
            error "$what (pid $pid) exited during start; last lines of $log:\n  | $tail"
        }
        set reply [probe $port $cmd]
        if {$reply ne {} && ($any || (![string match {-LOADING*} $reply] &&
                                      ![string match {-TRYAGAIN*} $reply]))} {
            if {$::rd::verbose} {puts "# $what on port $port: $reply"}
            return
        }
        if {[clock milliseconds] >= $deadline} {
            error "$what (pid $pid) did not answer on port $port within $::rd::start_timeout_ms ms"
        }
        after 50
    }
}

# Start the pair's redis-server; updates the innermost pair.
proc start_redis {} {
    set p [lindex $::rd::pairs end]
    set log [file join [dict get $p dir] redis.log]
    set pid [exec redis-server {*}[::rd::redis_args $p] >>& $log &]
    ::rd::spawned $pid
    ::rd::set_pair redis_pid $pid
    ::rd::wait_ready redis-server $pid [dict get $p redis_port] $log
    return $pid
}

# In direct mode kill_redraft/start_redraft/restart_redraft act on the
# redis-server instead: run with {direct {--appendonly yes --appendfsync
# always}} it is a durable server too, which lets the durability tests be
# checked against plain Redis.
# wait: "connected" waits until DBSIZE answers without TRYAGAIN (redraft is
# connected to its redis); "listening" until PING gets any answer at all
# (for a redraft whose redis is down).
proc start_redraft {{wait connected}} {
    if {$::rd::direct} {
        if {[::rd::alive [srv redis_pid]]} return
        return [start_redis]
    }
    set p [lindex $::rd::pairs end]
    file mkdir [dict get $p raft_dir]
    set out [file join [dict get $p dir] redraft.out]
    set bin [file join $::rd::build redraft]
    set pid [exec $bin {*}[::rd::redraft_args $p] >>& $out &]
    ::rd::spawned $pid
    ::rd::set_pair redraft_pid $pid
    set log [dict get $p redraft_log]
    if {![file exists $log]} {set log $out}
    if {$wait eq "listening"} {
        ::rd::wait_ready redraft $pid [dict get $p redraft_port] $log PING 1
    } else {
        ::rd::wait_ready redraft $pid [dict get $p redraft_port] $log DBSIZE
    }
    return $pid
}

# kill -9 (default) or -TERM redraft and wait until it is gone.
proc kill_redraft {{sig KILL}} {
    if {$::rd::direct} {return [kill_redis $sig]}
    set pid [srv redraft_pid]
    if {$sig eq "KILL"} {::rd::kill9 $pid} else {::rd::stop_process $pid}
    ::rd::set_pair redraft_pid 0
}

proc kill_redis {{sig KILL}} {
    set pid [srv redis_pid]
    if {$sig eq "KILL"} {::rd::kill9 $pid} else {::rd::stop_process $pid}
    ::rd::set_pair redis_pid 0
}

# Kill redraft with -9, start it again on the same port and dir, and point
# every client of the pair at the new process.
proc restart_redraft {} {
    kill_redraft KILL
    start_redraft
    reconnect_clients
}

# Kill redis-server with -9 (its data is gone: no persistence) and start a
# new, empty one on the same port.  Clients are left alone: they talk to
# redraft, which must notice by itself.
proc restart_redis {} {
    kill_redis KILL
    start_redis
    if {$::rd::direct} reconnect_clients
}

proc ::rd::set_pair {key value} {
    set p [lindex $::rd::pairs end]
    dict set p $key $value
    lset ::rd::pairs end $p
}

# srv key: redis_port, redis_pid, redraft_port, redraft_pid, port (what
# clients connect to), dir, raft_dir, redraft_log, host
proc srv {key} {
    set p [lindex $::rd::pairs end]
    if {$key eq "port"} {
        if {$::rd::direct} {return [dict get $p redis_port]}
        return [dict get $p redraft_port]
    }
    if {$key eq "host"} {return 127.0.0.1}
    return [dict get $p $key]
}

# ---------------------------------------------------------------------------
# Clients.  A client is a command name of ours (::rd::cN) aliased to a redis.tcl
# handle, so that a reconnect can swap the handle while tests keep the name.

proc new_client {{port {}}} {
    if {$port eq {}} {set port [srv port]}
    set name ::rd::c[incr ::rd::clientid]
    set h [redis 127.0.0.1 $port]
    interp alias {} $name {} $h
    set ::rd::client_port($name) $port
    set ::rd::client_handle($name) $h
    set p [lindex $::rd::pairs end]
    if {$p ne {}} {
        dict lappend p clients $name
        lset ::rd::pairs end $p
    }
    return $name
}

proc close_client {name} {
    catch {$::rd::client_handle($name) close}
    catch {interp alias {} $name {}}
    catch {unset ::rd::client_handle($name)}
    catch {unset ::rd::client_port($name)}
}

proc reconnect_clients {} {
    set p [lindex $::rd::pairs end]
    foreach name [dict get $p clients] {
        if {![info exists ::rd::client_handle($name)]} continue
        catch {$::rd::client_handle($name) close}
        set h [redis 127.0.0.1 [srv port]]
        set ::rd::client_handle($name) $h
        interp alias {} $name {} $h
    }
}

# `r cmd args...` runs a command on the innermost pair's main client.
proc r {args} {
    set p [lindex $::rd::pairs end]
    [dict get $p client] {*}$args
}

# Raw connections, for pipelining and malformed input.
proc raw_connect {{port {}}} {
    if {$port eq {}} {set port [srv port]}
    set fd [socket 127.0.0.1 $port]
    fconfigure $fd -translation binary -blocking 1 -buffering full
    set p [lindex $::rd::pairs end]
    dict lappend p raws $fd
    lset ::rd::pairs end $p
    return $fd
}

# The RESP encoding of one command.
proc resp_cmd {args} {
    set s "*[llength $args]\r\n"
    foreach a $args {append s "\$[string length $a]\r\n$a\r\n"}
    return $s
}

proc raw_send {fd data} {
    puts -nonewline $fd $data
    flush $fd
}

# Read one reply and return it in a readable form: +OK -> "+OK", -ERR x ->
# "-ERR x", :3 -> ":3", bulk -> its bytes ("(nil)" for null), arrays -> a Tcl
# list of such items.  {} means the connection was closed.
proc raw_read_reply {fd} {
    set line [::rd::timed_gets $fd]
    if {$line eq {} && [eof $fd]} {return {}}
    set line [string trimright $line \r]
    set type [string index $line 0]
    set rest [string range $line 1 end]
    switch -- $type {
        + - - - : {return $line}
        $ {
            if {$rest < 0} {return (nil)}
            set data [::rd::timed_read $fd [expr {$rest + 2}]]
            return [string range $data 0 end-2]
        }
        * {
            if {$rest < 0} {return (nil)}
            set l {}
            for {set i 0} {$i < $rest} {incr i} {lappend l [raw_read_reply $fd]}
            return $l
        }
        default {error "bad reply line '$line'"}
    }
}

# Read until the peer closes; 1 if it did within ms, 0 if not.
proc raw_wait_closed {fd {ms 3000}} {
    set deadline [expr {[clock milliseconds] + $ms}]
    fconfigure $fd -blocking 0
    while {1} {
        if {[catch {read $fd}]} {return 1}
        if {[eof $fd]} {return 1}
        if {![::rd::wait_readable $fd $deadline]} {return 0}
    }
}

# ---------------------------------------------------------------------------
# start_pair

proc ::rd::new_tmpdir {} {
    file mkdir $::rd::tmproot
    set base [file rootname [file tail $::rd::file]]
    while {1} {
        set dir [file join $::rd::tmproot "$base-[pid]-[incr ::rd::pairid]"]
        if {![file exists $dir]} break
    }
    file mkdir $dir
    return [file normalize $dir]
}

# start_pair {options} {body}
# options: redraft {args...}  extra redraft options (e.g. {--requirepass x})
#          redis {args...}    extra redis-server options
#          direct {args...}   extra redis-server options in direct mode only
#                             (what a redraft option means for plain Redis)
#          only_redraft reason  in direct mode, skip the whole pair
proc start_pair {options body} {
    if {$::rd::direct && [dict exists $options only_redraft]} {
        incr ::rd::skipped
        regsub -all {\s+} $options { } shown
        puts "\[skip\]: start_pair {$shown} in $::rd::file -- [dict get $options only_redraft]"
        return
    }
    set dir [::rd::new_tmpdir]
    set redis_opts [expr {[dict exists $options redis] ? [dict get $options redis] : {}}]
    if {$::rd::direct && [dict exists $options direct]} {
        lappend redis_opts {*}[dict get $options direct]
    }
    set p [dict create dir $dir raft_dir [file join $dir raft] \
        redraft_log [file join $dir redraft.log] \
        redis_port [free_port] redraft_port 0 redis_pid 0 redraft_pid 0 \
        redis_opts $redis_opts \
        redraft_opts [expr {[dict exists $options redraft] ? [dict get $options redraft] : {}}] \
        clients {} raws {} client {}]
    lappend ::rd::pairs $p
    puts "#dir $dir"
    flush stdout
    set failed_before $::rd::failed
    set rc [catch {
        start_redis
        if {!$::rd::direct} {
            ::rd::set_pair redraft_port [free_port 1]
            start_redraft
        }
        set c [new_client]
        ::rd::set_pair client $c
        uplevel 1 [list set r $c]
        uplevel 1 $body
    } result opts]
    if {$rc == 1 && ![string match "assertion:*" $result] &&
        [lindex [dict get $opts -errorcode] 0] ne "RDSKIP"} {
        # An error outside any test (a server that would not start, ...).
        incr ::rd::failed
        puts "\[err\]: start_pair in $::rd::file"
        foreach line [split $result \n] {puts "  $line"}
        ::rd::report_failure_context
        set rc 0
    }
    set keep [expr {$::rd::failed > $failed_before || $rc != 0}]
    ::rd::stop_pair
    if {$keep} {
        puts "# kept $dir"
    } else {
        file delete -force $dir
    }
    puts "#undir $dir"
    flush stdout
    set ::rd::pairs [lrange $::rd::pairs 0 end-1]
    if {$rc != 0} {return -options $opts $result}
}

proc ::rd::stop_pair {} {
    set p [lindex $::rd::pairs end]
    foreach name [dict get $p clients] {close_client $name}
    foreach fd [dict get $p raws] {catch {close $fd}}
    # redraft first, so it does not see its redis go away.
    stop_process [dict get $p redraft_pid]
    stop_process [dict get $p redis_pid]
    set_pair redraft_pid 0
    set_pair redis_pid 0
}
