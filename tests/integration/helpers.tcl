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
    if {[dict exists $p cluster]} {
        ::rd::report_cluster_context
        return
    }
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
    if {$state ne "Z" && $state ne "X"} {return 1}
    # A zombie main thread is not the end yet: after kill -9 the main thread
    # of a multi-threaded process (redraft runs RocksDB's threads) turns Z
    # while its other threads still exit, and until the last one is gone the
    # process keeps its files open, RocksDB's LOCK among them; a restart in
    # that window fails with "While lock file: ... LOCK: Resource
    # temporarily unavailable".  So the process is gone when no thread is
    # left but the zombie one.
    set tasks [glob -nocomplain -directory /proc/$pid/task *]
    foreach t $tasks {
        if {[file tail $t] eq $pid} continue
        if {[catch {
            set f [open $t/stat r]
            set tstat [read $f]
            close $f
        }]} continue
        set ts [string index [string range $tstat [expr {[string last ") " $tstat] + 2}] end] 0]
        if {$ts ne "Z" && $ts ne "X"} {return 1}
    }
    return 0
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

# A port nobody listens on, from 20000-22767: it and port+10000 (redraft's
# default cluster bus port) stay below the kernel's ephemeral ports (32768-60999),
# which any outgoing connection may take as its local end.  With bus 1, port+10000
# must be free as well.
proc free_port {{bus 0}} {
    if {![info exists ::rd::next_port]} {
        set ::rd::next_port [expr {20000 + ([pid] * 7) % 2768}]
    }
    for {set tries 0} {$tries < 2768} {incr tries} {
        set port $::rd::next_port
        incr ::rd::next_port
        if {$::rd::next_port >= 22768} {set ::rd::next_port 20000}
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

# Every reply line a raw connection sends until it closes, or goes quiet for
# quiet_ms once at least nlines lines came, or ms pass: {lines closed}, the
# lines without their line ends, closed 1 when the server closed it.
proc raw_collect {fd {nlines 0} {ms 3000} {quiet_ms 200}} {
    fconfigure $fd -blocking 0
    set deadline [expr {[clock milliseconds] + $ms}]
    set buf {}
    set closed 0
    while {1} {
        if {[catch {read $fd} d]} {set closed 1; break}
        append buf $d
        if {[eof $fd]} {set closed 1; break}
        set wait $deadline
        if {[regexp -all {\n} $buf] >= $nlines} {
            set wait [expr {min($deadline, [clock milliseconds] + $quiet_ms)}]
        }
        if {![::rd::wait_readable $fd $wait]} break
    }
    set lines {}
    foreach l [split $buf \n] {
        if {$l ne {}} {lappend lines [string trimright $l \r]}
    }
    return [list $lines $closed]
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

# ---------------------------------------------------------------------------
# Clusters: n redis-servers, each with a redraft in front, the redrafts forming
# one Raft group.
#
#   start_cluster n {options} {body}
#       options: redraft {args...}  extra redraft options for every node (after
#                                   the defaults, so they win)
#                secret S           the cluster secret (default redraft-test-secret)
#                before_start {script}  run once the redis-servers are up and
#                                   before any redraft starts (fill node 1's
#                                   redis for an upgrade in place, say)
#                default_bus_port 1 no --cluster-port: the bus on client port
#                                   + 10000, redraft's default (otherwise a
#                                   port of its own, away from the ephemeral
#                                   range)
#       Node 1 starts with --cluster-init yes, the others with --cluster-join
#       <node 1>; returns once all n are voters, a leader exists and every link
#       is up (bounded).  `r` is a client of node 1.  Nodes are numbered 1..n;
#       add_node makes n+1.
#   node_port i / node_redis_port i / node_bus_port i / node_pid i /
#   node_id i / node_dir i / node_log i        what node i is
#   node_client i          a client of node i's redraft (kept, reconnected
#                          when the node was restarted)
#   node_info i ?ms?       RAFT.INFO of node i as a dict ({} if no answer)
#   node_call i ms cmd...  one command on a fresh connection, bounded by ms:
#                          the reply (raw_read_reply form), or {} on no answer
#   cluster_leader         index of the node that says it is leader (highest
#                          term wins), 0 if none
#   wait_for_leader ?ms?   wait until the running nodes agree on one leader
#   wait_for_voters k ?ms? wait until the leader counts k voters, links up
#   kill_node i ?sig?      kill -9 (or TERM) node i's redraft, wait until gone
#   restart_node i         start node i's redraft again (same ports and dir)
#   stop_node i / cont_node i   SIGSTOP / SIGCONT node i's redraft
#   restart_node_redis i   kill -9 node i's redis-server, start it empty
#   add_node ?opts?        start one more pair that joins the cluster
#   forget_node i          mark node i as no longer in the cluster (after
#                          RAFT.NODE REMOVE) and stop it
#   live_nodes             indexes of the nodes running and not stopped
#   dataset_of i           the dataset of node i's redis-server, read
#                          directly: {db key type value pexpiretime encoding
#                          dump} per key, every db but the hidden one
#   assert_replicas_identical ?nodes? ?ms?  poll until every node's dataset
#                          is the same (default: live_nodes)
#   start_load name ports ?opts?  a child process writing to the cluster;
#                          stop_load name -> what it recorded (see below)

namespace eval ::rd {
    variable cl                    ;# the running cluster (one at a time)
    array set cl {n 0}
    variable cluster_timeout_ms 20000
}

proc ::rd::cl_get {i key} {
    if {![info exists ::rd::cl($i,$key)]} {error "no node $i in the cluster"}
    return $::rd::cl($i,$key)
}

proc node_port {i} {::rd::cl_get $i port}
proc node_redis_port {i} {::rd::cl_get $i redis_port}
proc node_bus_port {i} {::rd::cl_get $i bus_port}
proc node_pid {i} {::rd::cl_get $i redraft_pid}
proc node_redis_pid {i} {::rd::cl_get $i redis_pid}
proc node_dir {i} {::rd::cl_get $i dir}
proc node_log {i} {::rd::cl_get $i redraft_log}
proc cluster_size {} {return $::rd::cl(n)}

# The node id, as node i reported it after it started.
proc node_id {i} {
    if {[::rd::cl_get $i id] eq {}} {
        set info [node_info $i 2000]
        if {![dict exists $info node_id]} {error "node $i did not tell its id"}
        set ::rd::cl($i,id) [dict get $info node_id]
    }
    return $::rd::cl($i,id)
}

# Index of the node with this id (0 if none).
proc node_index {id} {
    for {set i 1} {$i <= $::rd::cl(n)} {incr i} {
        if {$::rd::cl($i,id) eq $id} {return $i}
    }
    return 0
}

# Nodes whose redraft runs and is not stopped, and that were not forgotten.
proc live_nodes {} {
    set out {}
    for {set i 1} {$i <= $::rd::cl(n)} {incr i} {
        if {$::rd::cl($i,redraft_pid) != 0 && !$::rd::cl($i,stopped) &&
            !$::rd::cl($i,gone)} {
            lappend out $i
        }
    }
    return $out
}

proc ::rd::node_args {i} {
    set args [list --port $::rd::cl($i,port) --bind 127.0.0.1 \
        --redis 127.0.0.1:$::rd::cl($i,redis_port) --dir $::rd::cl($i,raft_dir) \
        --logfile $::rd::cl($i,redraft_log) --loglevel verbose \
        --cluster-secret $::rd::cl(secret) \
        --election-timeout 500 --heartbeat-interval 50]
    if {!$::rd::cl(default_bus)} {lappend args --cluster-port $::rd::cl($i,bus_port)}
    if {$::rd::cl($i,join) eq {}} {
        lappend args --cluster-init yes
    } else {
        lappend args --cluster-join $::rd::cl($i,join)
    }
    return [concat $args $::rd::cl(opts) $::rd::cl($i,opts)]
}

# Set up node i's record: its folder and free ports.
proc ::rd::new_node {i join opts} {
    set dir [file join $::rd::cl(dir) n$i]
    file mkdir $dir
    # The default bus port, client port + 10000, lands in the kernel's
    # ephemeral range (32768-60999), where an outgoing connection may take
    # it while a node is down; so unless asked for the default, the bus gets
    # a port of its own from free_port's range.
    if {$::rd::cl(default_bus)} {
        set port [free_port 1]
        set bus [expr {$port + 10000}]
    } else {
        set port [free_port]
        set bus [free_port]
    }
    array set ::rd::cl [list $i,dir $dir $i,raft_dir [file join $dir raft] \
        $i,redraft_log [file join $dir redraft.log] $i,redis_port [free_port] \
        $i,port $port $i,bus_port $bus $i,redis_pid 0 \
        $i,redraft_pid 0 $i,stopped 0 $i,gone 0 $i,id {} $i,join $join \
        $i,opts $opts $i,client {} $i,client_pid 0]
    puts "#dir $dir"
    flush stdout
}

proc ::rd::start_node_redis {i} {
    set dir $::rd::cl($i,dir)
    set log [file join $dir redis.log]
    set pid [exec redis-server --port $::rd::cl($i,redis_port) --bind 127.0.0.1 \
        --save {} --appendonly no --daemonize no --dir $dir >>& $log &]
    spawned $pid
    set ::rd::cl($i,redis_pid) $pid
    wait_ready "redis-server of node $i" $pid $::rd::cl($i,redis_port) $log
}

# Start node i's redraft and wait until it answers at all (a joining node or
# one without a leader may not serve data yet).
proc start_node {i} {
    if {$::rd::cl($i,redraft_pid) != 0} {error "node $i is already running"}
    file mkdir $::rd::cl($i,raft_dir)
    set out [file join $::rd::cl($i,dir) redraft.out]
    set bin [file join $::rd::build redraft]
    set pid [exec $bin {*}[::rd::node_args $i] >>& $out &]
    ::rd::spawned $pid
    set ::rd::cl($i,redraft_pid) $pid
    set ::rd::cl($i,stopped) 0
    set log $::rd::cl($i,redraft_log)
    if {![file exists $log]} {set log $out}
    ::rd::wait_ready "redraft of node $i" $pid $::rd::cl($i,port) $log PING 1
    return $pid
}

# kill -9 (default) or TERM node i's redraft and wait until it is gone.
proc kill_node {i {sig KILL}} {
    set pid $::rd::cl($i,redraft_pid)
    if {$pid == 0} return
    if {$::rd::cl($i,stopped)} {::rd::signal CONT $pid}
    if {$sig eq "KILL"} {::rd::kill9 $pid} else {::rd::stop_process $pid}
    set ::rd::cl($i,redraft_pid) 0
    set ::rd::cl($i,stopped) 0
}

# Send sig to node i's redraft without waiting (say TERM, to measure what
# clients see while it exits); wait_node_gone i afterwards.
proc signal_node {i sig} {
    ::rd::signal $sig $::rd::cl($i,redraft_pid)
}

proc wait_node_gone {i {ms 5000}} {
    set pid $::rd::cl($i,redraft_pid)
    if {$pid == 0} return
    if {![::rd::wait_gone $pid $ms]} {
        ::rd::kill9 $pid
        set ::rd::cl($i,redraft_pid) 0
        fail "node $i (pid $pid) did not exit within $ms ms"
    }
    ::rd::reaped $pid
    set ::rd::cl($i,redraft_pid) 0
    set ::rd::cl($i,stopped) 0
}

# kill -9 node i's redraft (if running) and start it again on the same ports
# and folder: its log holds the cluster, so it rejoins by itself.
proc restart_node {i} {
    kill_node $i KILL
    start_node $i
}

# kill -9 node i's redis-server (its data is gone: no persistence) and start
# a new, empty one on the same port; node i's redraft must notice and refill it.
proc restart_node_redis {i} {
    ::rd::kill9 $::rd::cl($i,redis_pid)
    set ::rd::cl($i,redis_pid) 0
    ::rd::start_node_redis $i
}

proc stop_node {i} {
    ::rd::signal STOP $::rd::cl($i,redraft_pid)
    set ::rd::cl($i,stopped) 1
}

proc cont_node {i} {
    ::rd::signal CONT $::rd::cl($i,redraft_pid)
    set ::rd::cl($i,stopped) 0
}

# A client of node i's redraft, kept across calls; a new one after the node
# was restarted, or after the old one broke (reconnect_node_client).
proc node_client {i} {
    set pid $::rd::cl($i,redraft_pid)
    if {$::rd::cl($i,client) ne {} && $::rd::cl($i,client_pid) == $pid} {
        return $::rd::cl($i,client)
    }
    if {$::rd::cl($i,client) ne {}} {close_client $::rd::cl($i,client)}
    set ::rd::cl($i,client) [new_client $::rd::cl($i,port)]
    set ::rd::cl($i,client_pid) $pid
    return $::rd::cl($i,client)
}

proc reconnect_node_client {i} {
    set ::rd::cl($i,client_pid) -1
    return [node_client $i]
}

# One command on a fresh connection to node i, with a deadline of ms: the
# reply as raw_read_reply gives it, or {} if none came.
proc node_call {i ms args} {
    return [::rd::call_port $::rd::cl($i,port) $ms {*}$args]
}

proc ::rd::call_port {port ms args} {
    if {[catch {socket 127.0.0.1 $port} fd]} {return {}}
    fconfigure $fd -translation binary -blocking 1 -buffering full
    set saved $::rd::io_timeout_ms
    set ::rd::io_timeout_ms $ms
    set reply {}
    catch {
        puts -nonewline $fd [resp_cmd {*}$args]
        flush $fd
        set reply [raw_read_reply $fd]
    }
    set ::rd::io_timeout_ms $saved
    catch {close $fd}
    return $reply
}

# RAFT.INFO text -> dict (each "key:value" line; per-member lines too).
proc ::rd::parse_info {text} {
    set d {}
    foreach line [split $text \n] {
        set line [string trim $line]
        if {$line eq {} || [string index $line 0] eq "#"} continue
        set colon [string first : $line]
        if {$colon < 0} continue
        dict set d [string range $line 0 [expr {$colon - 1}]] \
            [string range $line [expr {$colon + 1}] end]
    }
    return $d
}

# Per member lines of a RAFT.INFO dict -> list of dicts (id addr voter ...).
proc info_members {info} {
    set out {}
    dict for {k v} $info {
        if {![regexp {^node\d+$} $k]} continue
        set m {}
        foreach kv [split $v ,] {
            set eq [string first = $kv]
            dict set m [string range $kv 0 [expr {$eq - 1}]] [string range $kv [expr {$eq + 1}] end]
        }
        lappend out $m
    }
    return $out
}

proc node_info {i {ms 1000}} {
    if {$::rd::cl($i,redraft_pid) == 0 || $::rd::cl($i,stopped)} {return {}}
    set reply [node_call $i $ms RAFT.INFO]
    if {$reply eq {} || [string index $reply 0] eq "-"} {return {}}
    return [::rd::parse_info $reply]
}

proc cluster_leader {} {
    set best 0
    set best_term -1
    foreach i [live_nodes] {
        set info [node_info $i 500]
        if {[dict exists $info role] && [dict get $info role] eq "leader" &&
            [dict get $info term] > $best_term} {
            set best $i
            set best_term [dict get $info term]
        }
    }
    return $best
}

# Wait until one running node is leader and every running node (or those
# given) names it, in the same term.  Returns its index.
proc wait_for_leader {{ms {}} {nodes {}}} {
    if {$ms eq {}} {set ms $::rd::cluster_timeout_ms}
    set deadline [expr {[clock milliseconds] + $ms}]
    set last {}
    while {1} {
        if {$nodes eq {}} {set among [live_nodes]} else {set among $nodes}
        set leader 0
        set agree 1
        set last {}
        set term {}
        foreach i $among {
            set info [node_info $i 500]
            if {![dict exists $info leader_id]} {set agree 0; lappend last "$i:?"; continue}
            lappend last "$i:[dict get $info role]/[dict get $info leader_id]/t[dict get $info term]"
            if {[dict get $info role] eq "leader"} {set leader $i}
            if {$term eq {}} {set term [dict get $info term]}
            if {[dict get $info term] != $term} {set agree 0}
            if {$leader != 0 && [dict get $info leader_id] ne [node_id $leader]} {set agree 0}
            set lid($i) [dict get $info leader_id]
        }
        if {$leader != 0 && $agree} {
            foreach i $among {
                if {$lid($i) ne [node_id $leader]} {set agree 0}
            }
            if {$agree} {return $leader}
        }
        if {[clock milliseconds] >= $deadline} {
            fail "no leader all of nodes {$among} agree on within $ms ms ($last)"
        }
        after 20
    }
}

# Wait until the leader has k voters, its links to every member are up, and
# the leader's commit index is matched by each member.  Returns the leader.
proc wait_for_voters {k {ms {}}} {
    if {$ms eq {}} {set ms $::rd::cluster_timeout_ms}
    set deadline [expr {[clock milliseconds] + $ms}]
    while {1} {
        set l [cluster_leader]
        set why "no leader"
        if {$l != 0} {
            set info [node_info $l 500]
            set why "leader $l: [dict get $info num_voters] voters of [dict get $info num_nodes]"
            if {[dict get $info num_voters] == $k && [dict get $info num_nodes] == $k} {
                set ok 1
                foreach m [info_members $info] {
                    if {[dict get $m link] ni {up self}} {
                        set ok 0
                        set why "link to [dict get $m id] is [dict get $m link]"
                    }
                }
                if {$ok} {return $l}
            }
        }
        if {[clock milliseconds] >= $deadline} {
            fail "the cluster did not reach $k voters within $ms ms ($why)"
        }
        after 50
    }
}

# Start one more node that joins through the given node (default: the
# lowest live one).  Returns its index; does not wait until it is a voter.
proc add_node {{opts {}} {via {}}} {
    if {$via eq {}} {set via [lindex [live_nodes] 0]}
    set i [incr ::rd::cl(n)]
    ::rd::new_node $i 127.0.0.1:$::rd::cl($via,port) $opts
    ::rd::start_node_redis $i
    start_node $i
    return $i
}

# After RAFT.NODE REMOVE: the node takes no part any more; stop it.
proc forget_node {i} {
    kill_node $i KILL
    set ::rd::cl($i,gone) 1
}

# ---------------------------------------------------------------------------
# Datasets, read from the redis-servers directly.

# {db key type value pexpiretime encoding dump} for every key of every
# database of node i's redis-server but the hidden one (the last: redraft's),
# sorted.  The value in a canonical form (hash fields and set members
# sorted), and DUMP's bytes where they depend only on the contents: a set or
# hash in a hash table serializes in its table's order, which differs between
# replicas holding the same members (each Redis seeds its hash function), so
# for those the canonical value alone is compared.  PEXPIRETIME, not PTTL:
# replicas must hold the same absolute deadline, and it does not change while
# we read.
proc dataset_of {i} {
    set h [redis 127.0.0.1 $::rd::cl($i,redis_port)]
    set out {}
    try {
        set hidden [expr {[lindex [$h config get databases] 1] - 1}]
        for {set db 0} {$db < $hidden} {incr db} {
            $h select $db
            set cursor 0
            set keys {}
            while {1} {
                lassign [$h scan $cursor COUNT 1000] cursor batch
                lappend keys {*}$batch
                if {$cursor eq "0"} break
            }
            foreach key [lsort -unique $keys] {
                set type [$h type $key]
                if {$type eq "none"} continue
                set enc [$h object encoding $key]
                switch -- $type {
                    string {set v [$h get $key]}
                    list   {set v [$h lrange $key 0 -1]}
                    set    {set v [lsort [$h smembers $key]]}
                    zset   {set v [$h zrange $key 0 -1 WITHSCORES]}
                    hash   {
                        set v {}
                        foreach {f x} [$h hgetall $key] {lappend v [list $f $x]}
                        set v [lsort -index 0 $v]
                    }
                    stream {set v [$h xrange $key - +]}
                    default {set v {}}
                }
                set dump [expr {$enc eq "hashtable" ? {} : [$h dump $key]}]
                lappend out [list $db $key $type $v [$h pexpiretime $key] $enc $dump]
            }
        }
    } finally {
        catch {$h close}
    }
    return [lsort $out]
}

# The first difference between two datasets, in words.
proc ::rd::dataset_diff {a b} {
    set i 0
    foreach x $a y $b {
        if {$x ne $y} {
            return "first difference at entry $i: '[clip $x]' vs '[clip $y]'"
        }
        incr i
    }
    return {}
}

# Poll until every node in nodes (default: live_nodes) has the same dataset;
# fail with the first difference after ms.  Returns the number of keys.
proc assert_replicas_identical {{nodes {}} {ms 10000}} {
    if {$nodes eq {}} {set nodes [live_nodes]}
    set deadline [expr {[clock milliseconds] + $ms}]
    while {1} {
        set first [lindex $nodes 0]
        set ref [dataset_of $first]
        set why {}
        foreach i [lrange $nodes 1 end] {
            set d [dataset_of $i]
            if {$d ne $ref} {
                set why "node $i ([llength $d] keys) differs from node $first\
                    ([llength $ref] keys): [::rd::dataset_diff $d $ref]"
                break
            }
        }
        if {$why eq {}} {return [llength $ref]}
        if {[clock milliseconds] >= $deadline} {
            fail "replicas not identical after $ms ms: $why"
        }
        after 100
    }
}

# ---------------------------------------------------------------------------
# Write load from a child process, so it runs while the test body blocks.
#
# start_load name ports ?opts?: a child tclsh sends, one at a time, SET
# <prefix>:k:<seq> <seq> or INCR <prefix>:ctr (alternating), to the first
# port; on an error or a lost connection it moves to the next port.  Each
# request has a deadline (opts: timeout ms, default 3000); it stops when
# told (stop_load) or after max seconds (default 60).  Its file gets a
# line per event: "sent SEQ CMD", "ack SEQ MS REPLY" (MS: wall clock) or
# "err SEQ MS MSG".
# stop_load name -> dict: sent_sets acked_sets (seq lists), sent_incrs,
# acked_incrs, errors (count), gaps (longest time without an ack, ms)...

set ::rd::load_script {
    lassign $argv ports prefix out stopfile timeout max pause
    set f [open $out w]
    fconfigure $f -buffering line
    set deadline [expr {[clock milliseconds] + $max * 1000}]
    set pi 0
    set fd {}
    proc rd_connect {} {
        global fd ports pi
        catch {close $fd}
        set fd {}
        set port [lindex $ports [expr {$pi % [llength $ports]}]]
        if {[catch {socket 127.0.0.1 $port} s]} {return 0}
        fconfigure $s -translation binary -blocking 0
        set fd $s
        return 1
    }
    proc rd_reply {ms} {
        global fd
        set end [expr {[clock milliseconds] + $ms}]
        set buf {}
        while {1} {
            if {[catch {gets $fd line} n]} {return [list err "read: $n"]}
            if {$n >= 0} {return [list ok [string trimright $line \r]]}
            if {[eof $fd]} {return [list err closed]}
            set left [expr {$end - [clock milliseconds]}]
            if {$left <= 0} {return [list err timeout]}
            set ::wake {}
            fileevent $fd readable {set ::wake r}
            set t [after $left {set ::wake t}]
            vwait ::wake
            after cancel $t
            fileevent $fd readable {}
        }
    }
    set seq 0
    while {![file exists $stopfile] && [clock milliseconds] < $deadline} {
        if {$fd eq {} && ![rd_connect]} {
            incr pi
            after 20
            continue
        }
        incr seq
        if {$seq % 2} {
            set args [list SET $prefix:k:$seq $seq]
        } else {
            set args [list INCR $prefix:ctr]
        }
        set req "*[llength $args]\r\n"
        foreach a $args {append req "\$[string length $a]\r\n$a\r\n"}
        puts $f "sent $seq [lindex $args 0]"
        if {[catch {puts -nonewline $fd $req; flush $fd} e]} {
            set r [list err "write: $e"]
        } else {
            set r [rd_reply $timeout]
        }
        set now [clock milliseconds]
        lassign $r how what
        if {$how eq "ok" && [string index $what 0] ne "-"} {
            puts $f "ack $seq $now $what"
        } else {
            puts $f "err $seq $now [string map {\n { } \r {}} $what]"
            # The stream may be out of step: start over, on the next node.
            catch {close $fd}
            set fd {}
            incr pi
        }
        if {$pause > 0} {after $pause}
    }
    puts $f done
    close $f
}

proc start_load {name ports args} {
    set o [dict merge {timeout 3000 max 60 pause 0 prefix {}} $args]
    set prefix [expr {[dict get $o prefix] ne {} ? [dict get $o prefix] : $name}]
    set dir $::rd::cl(dir)
    set script [file join $dir load.tcl]
    if {![file exists $script]} {
        set f [open $script w]
        puts $f $::rd::load_script
        close $f
    }
    set out [file join $dir load-$name.txt]
    set stop [file join $dir load-$name.stop]
    file delete $stop
    set pid [exec [info nameofexecutable] $script $ports $prefix $out $stop \
        [dict get $o timeout] [dict get $o max] [dict get $o pause] >>& [file join $dir load-$name.err] &]
    ::rd::spawned $pid
    set ::rd::loads($name) [list $pid $out $stop $prefix]
    return $pid
}

# Tell the load to stop, wait for it (bounded), and sum up its file.
proc stop_load {name} {
    lassign $::rd::loads($name) pid out stop prefix
    close [open $stop w]
    if {![::rd::wait_gone $pid 8000]} {
        ::rd::signal KILL $pid
        ::rd::wait_gone $pid 2000
    }
    ::rd::reaped $pid
    unset ::rd::loads($name)
    return [load_results $out $prefix]
}

proc load_results {out prefix} {
    set r [dict create prefix $prefix sent_sets {} acked_sets {} sent_incrs 0 \
        acked_incrs 0 incr_replies {} errors 0 error_msgs {} acks 0 gaps 0 \
        first_ms 0 last_ms 0 ack_times {}]
    set f [open $out r]
    set data [read $f]
    close $f
    array set cmd {}
    set prev 0
    foreach line [split $data \n] {
        set what [lindex $line 0]
        if {$what eq "sent"} {
            set cmd([lindex $line 1]) [lindex $line 2]
            if {[lindex $line 2] eq "SET"} {
                dict lappend r sent_sets [lindex $line 1]
            } else {
                dict incr r sent_incrs
            }
        } elseif {$what eq "ack"} {
            lassign $line - seq ms reply
            dict incr r acks
            dict lappend r ack_times $ms
            if {$prev != 0 && $ms - $prev > [dict get $r gaps]} {dict set r gaps [expr {$ms - $prev}]}
            set prev $ms
            if {[dict get $r first_ms] == 0} {dict set r first_ms $ms}
            dict set r last_ms $ms
            if {$cmd($seq) eq "SET"} {
                dict lappend r acked_sets $seq
            } else {
                dict incr r acked_incrs
                dict lappend r incr_replies [string trimleft $reply :]
            }
        } elseif {$what eq "err"} {
            dict incr r errors
            if {[llength [dict get $r error_msgs]] < 5} {
                dict lappend r error_msgs [lrange $line 3 end]
            }
        }
    }
    return $r
}

# Every acknowledged SET of a load is on node i with its value, and its
# counter is within [acked, sent].
proc assert_load_on_node {i res} {
    set h [redis 127.0.0.1 $::rd::cl($i,redis_port)]
    try {
        set prefix [dict get $res prefix]
        set missing {}
        foreach seq [dict get $res acked_sets] {
            set v [$h get $prefix:k:$seq]
            if {$v ne $seq} {lappend missing "$prefix:k:$seq=$v"}
        }
        if {[llength $missing]} {
            fail "node $i lacks [llength $missing] of [llength [dict get $res acked_sets]]\
                acknowledged SETs: [lrange $missing 0 9]"
        }
        set ctr [$h get $prefix:ctr]
        if {$ctr eq {}} {set ctr 0}
        assert_range $ctr [dict get $res acked_incrs] [dict get $res sent_incrs] \
            "counter $prefix:ctr on node $i"
    } finally {
        catch {$h close}
    }
}

# ---------------------------------------------------------------------------
# start_cluster

proc start_cluster {n options body} {
    if {$::rd::direct} {
        incr ::rd::skipped
        puts "\[skip\]: start_cluster $n in $::rd::file -- a cluster needs redraft"
        return
    }
    if {$::rd::cl(n) != 0} {error "start_cluster: one cluster at a time"}
    set root [::rd::new_tmpdir]
    array unset ::rd::cl
    array set ::rd::cl [list n 0 dir $root \
        default_bus [expr {[dict exists $options default_bus_port] && [dict get $options default_bus_port]}] \
        secret [expr {[dict exists $options secret] ? [dict get $options secret] : "redraft-test-secret"}] \
        opts [expr {[dict exists $options redraft] ? [dict get $options redraft] : {}}]]
    # A pair record, so that new_client, raw_connect and the failure report
    # work as they do for start_pair.
    lappend ::rd::pairs [dict create dir $root raft_dir {} redraft_log {} \
        redis_port 0 redraft_port 0 redis_pid 0 redraft_pid 0 redis_opts {} \
        redraft_opts {} clients {} raws {} client {} cluster 1]
    puts "#dir $root"
    flush stdout
    set failed_before $::rd::failed
    set rc [catch {
        for {set i 1} {$i <= $n} {incr i} {
            ::rd::new_node $i [expr {$i == 1 ? {} : "127.0.0.1:$::rd::cl(1,port)"}] {}
            set ::rd::cl(n) $i
        }
        for {set i 1} {$i <= $n} {incr i} {::rd::start_node_redis $i}
        if {[dict exists $options before_start]} {uplevel 1 [dict get $options before_start]}
        start_node 1
        wait_for_leader {} 1
        for {set i 2} {$i <= $n} {incr i} {start_node $i}
        wait_for_voters $n
        wait_for_leader
        for {set i 1} {$i <= $n} {incr i} {node_id $i}
        set p [lindex $::rd::pairs end]
        dict set p redraft_port $::rd::cl(1,port)
        dict set p redis_port $::rd::cl(1,redis_port)
        lset ::rd::pairs end $p
        set c [node_client 1]
        ::rd::set_pair client $c
        uplevel 1 [list set r $c]
        uplevel 1 $body
    } result opts]
    if {$rc == 1 && ![string match "assertion:*" $result] &&
        [lindex [dict get $opts -errorcode] 0] ne "RDSKIP"} {
        incr ::rd::failed
        puts "\[err\]: start_cluster in $::rd::file"
        foreach line [split $result \n] {puts "  $line"}
        ::rd::report_failure_context
        set rc 0
    } elseif {$rc == 1 && [string match "assertion:*" $result]} {
        incr ::rd::failed
        puts "\[err\]: start_cluster in $::rd::file"
        puts "  [string range $result 10 end]"
        ::rd::report_failure_context
        set rc 0
    }
    set keep [expr {$::rd::failed > $failed_before || $rc != 0}]
    ::rd::stop_cluster
    for {set i 1} {$i <= $::rd::cl(n)} {incr i} {
        puts "#undir $::rd::cl($i,dir)"
    }
    if {$keep} {
        puts "# kept $root"
    } else {
        file delete -force $root
    }
    puts "#undir $root"
    flush stdout
    set ::rd::pairs [lrange $::rd::pairs 0 end-1]
    array unset ::rd::cl
    set ::rd::cl(n) 0
    if {$rc != 0} {return -options $opts $result}
}

proc ::rd::stop_cluster {} {
    set p [lindex $::rd::pairs end]
    foreach name [dict get $p clients] {close_client $name}
    foreach fd [dict get $p raws] {catch {close $fd}}
    foreach name [array names ::rd::loads] {catch {stop_load $name}}
    # Every redraft at once (TERM, then KILL), so that they do not spend
    # their exit handing leadership to one another in turn; then the redis.
    set pids {}
    for {set i 1} {$i <= $::rd::cl(n)} {incr i} {
        set pid $::rd::cl($i,redraft_pid)
        if {$pid == 0} continue
        signal CONT $pid
        signal TERM $pid
        lappend pids $pid
    }
    foreach pid $pids {
        if {![wait_gone $pid $::rd::stop_timeout_ms]} {
            signal KILL $pid
            wait_gone $pid $::rd::stop_timeout_ms
        }
        reaped $pid
    }
    for {set i 1} {$i <= $::rd::cl(n)} {incr i} {
        set ::rd::cl($i,redraft_pid) 0
        stop_process $::rd::cl($i,redis_pid)
        set ::rd::cl($i,redis_pid) 0
    }
}

# The failure report of a cluster test: the last lines of every node's log.
proc ::rd::report_cluster_context {} {
    puts "  tmp dir (kept): $::rd::cl(dir)"
    for {set i 1} {$i <= $::rd::cl(n)} {incr i} {
        set log $::rd::cl($i,redraft_log)
        if {![file exists $log]} continue
        puts "  --- node $i (port $::rd::cl($i,port), id $::rd::cl($i,id)): last lines of $log"
        foreach line [tail_lines $log 12] {puts "  | $line"}
    }
}
