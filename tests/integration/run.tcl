# redraft's integration test runner.
#
#   tclsh tests/integration/run.tcl [--build build] [--only pattern] [--match pattern]
#                                   [--direct] [--verbose] [--file-timeout s]
#                                   [--test-timeout s] [--total-timeout s]
#
# Runs every tests/integration/*.tcl (but run.tcl and helpers.tcl), or those
# whose name matches --only (a glob, or a plain substring), each in a child
# tclsh of its own.  Prints "[ok]: name", "[err]: name in file" with the
# failure, "[skip]: name -- reason", and last, alone on its line,
# "N passed, M failed".  Exit status 1 if anything failed.
#
# Time is bounded three ways: every read of a reply has a deadline (see
# helpers.tcl), a single test that runs past --test-timeout or a file past
# --file-timeout gets its child killed (and the servers it started, whose pids
# it announced), and the whole run stops at --total-timeout.
#
# --direct (or REDRAFT_DIRECT=1) runs the tests against a plain redis-server
# with no redraft in front; tests that need redraft are skipped.  That is how
# the tests themselves are checked against the real Redis.

set self [file normalize [info script]]
set here [file dirname $self]
set root [file dirname [file dirname $here]]

proc usage {} {
    puts stderr "usage: tclsh tests/integration/run.tcl \[--build dir\] \[--only pattern\]\
        \[--match test-pattern\] \[--direct\] \[--verbose\] \[--file-timeout s\]\
        \[--test-timeout s\] \[--total-timeout s\]"
    exit 2
}

array set opt {
    build build only {} match {} direct 0 verbose 0 child {}
    file-timeout 150 test-timeout 60 total-timeout 280 redis-src {}
}
if {[info exists env(REDRAFT_DIRECT)] && $env(REDRAFT_DIRECT) ni {{} 0}} {
    set opt(direct) 1
}
for {set i 0} {$i < [llength $argv]} {incr i} {
    set a [lindex $argv $i]
    switch -- $a {
        --direct {set opt(direct) 1}
        --verbose {set opt(verbose) 1}
        --build - --only - --match - --child - --file-timeout - --test-timeout -
        --total-timeout - --redis-src {
            if {$i + 1 >= [llength $argv]} usage
            set opt([string range $a 2 end]) [lindex $argv [incr i]]
        }
        default usage
    }
}
if {[file pathtype $opt(build)] ne "absolute"} {
    set opt(build) [file normalize [file join [pwd] $opt(build)]]
}

# ---------------------------------------------------------------------------
# Child: run one test file.

proc run_child {file} {
    global opt here
    source [file join $opt(redis-src) tests support redis.tcl]
    source [file join $here helpers.tcl]
    set ::rd::build $opt(build)
    set ::rd::direct $opt(direct)
    set ::rd::verbose $opt(verbose)
    set ::rd::match $opt(match)
    set ::rd::file [file tail $file]
    set ::rd::tmproot [file join $here tmp]
    fconfigure stdout -buffering line
    set rc [catch {uplevel #0 [list source $file]} result ropts]
    if {$rc == 1} {
        if {[lindex [dict get $ropts -errorcode] 0] eq "RDSKIP"} {
            incr ::rd::skipped
            puts "\[skip\]: [file tail $file] -- [lindex [dict get $ropts -errorcode] 1]"
        } else {
            incr ::rd::failed
            puts "\[err\]: [file tail $file] (error outside a test)"
            foreach line [split [dict get $ropts -errorinfo] \n] {puts "  $line"}
        }
    }
    # Whatever a failing file left running.
    while {[llength $::rd::pairs]} {
        catch {::rd::stop_pair}
        set ::rd::pairs [lrange $::rd::pairs 0 end-1]
    }
    puts "#done $::rd::passed $::rd::failed $::rd::skipped"
    exit 0
}

if {$opt(child) ne {}} {
    run_child $opt(child)
}

# ---------------------------------------------------------------------------
# Parent.

proc find_redis_src {} {
    global opt root env
    if {$opt(redis-src) ne {}} {return $opt(redis-src)}
    if {[info exists env(REDIS_SRC)] && $env(REDIS_SRC) ne {}} {return $env(REDIS_SRC)}
    set found [glob -nocomplain -directory [file join $root .cache redis-src] \
        redis-*/tests/support/redis.tcl]
    if {[llength $found] == 0} {
        puts "# fetching Redis's source (for its Tcl client): scripts/fetch-redis-src.sh"
        if {[catch {exec sh [file join $root scripts fetch-redis-src.sh] 2>@ stderr} out]} {
            puts "cannot fetch the redis source: $out"
            puts "0 passed, 1 failed"
            exit 1
        }
        return [string trim [lindex [split [string trim $out] \n] end]]
    }
    return [file dirname [file dirname [file dirname [lindex [lsort $found] end]]]]
}

proc test_files {} {
    global opt here
    set files {}
    foreach f [lsort [glob -nocomplain -directory $here *.tcl]] {
        set base [file rootname [file tail $f]]
        if {$base in {run helpers}} continue
        if {$opt(only) ne {} && ![string match $opt(only) $base] &&
            ![string match $opt(only) [file tail $f]] &&
            [string first $opt(only) $base] < 0} continue
        lappend files $f
    }
    return $files
}

set passed 0
set failed 0
set skipped 0
set failures {}

proc count_line {line file} {
    global passed failed skipped failures
    if {[string match {\[ok\]:*} $line]} {
        incr passed
    } elseif {[string match {\[err\]:*} $line]} {
        incr failed
        lappend failures [string range $line 7 end]
    } elseif {[string match {\[skip\]:*} $line]} {
        incr skipped
    }
}

# Kill what a child announced and did not stop itself.
proc kill_leftovers {pids} {
    foreach pid $pids {
        if {[file exists /proc/$pid]} {
            catch {exec kill -KILL $pid}
        }
    }
}

proc on_child_output {chan} {
    global cur
    if {[catch {gets $chan line} n]} {
        set cur(state) eof
        return
    }
    if {$n < 0} {
        if {[eof $chan]} {set cur(state) eof}
        return
    }
    if {[regexp {^#pid (\d+)$} $line -> p]} {
        lappend cur(pids) $p
    } elseif {[regexp {^#unpid (\d+)$} $line -> p]} {
        set cur(pids) [lsearch -all -inline -not -exact $cur(pids) $p]
    } elseif {[regexp {^#dir (.*)$} $line -> dir]} {
        lappend cur(dirs) $dir
    } elseif {[regexp {^#undir (.*)$} $line -> dir]} {
        set cur(dirs) [lsearch -all -inline -not -exact $cur(dirs) $dir]
    } elseif {[regexp {^#test (.*)$} $line -> name]} {
        set cur(test) $name
        set cur(test_start) [clock milliseconds]
        if {$::opt(verbose)} {puts "# running: $name"}
    } elseif {[regexp {^#done } $line]} {
        set cur(done) 1
    } else {
        count_line $line $cur(file)
        puts $line
    }
}

proc tick {} {
    global cur opt deadline
    set now [clock milliseconds]
    if {$now >= $deadline} {
        set cur(state) "total-timeout"
    } elseif {$now - $cur(start) > $opt(file-timeout) * 1000} {
        set cur(state) "file-timeout"
    } elseif {$cur(test) ne {} && $now - $cur(test_start) > $opt(test-timeout) * 1000} {
        set cur(state) "test-timeout"
    } else {
        set cur(timer) [after 200 tick]
    }
}

proc run_file {file} {
    global cur opt redis_src failed failures
    array set cur [list file $file pids {} dirs {} test {} test_start 0 \
        start [clock milliseconds] state running done 0 timer {}]
    set cmd [list [info nameofexecutable] $::self --child $file \
        --build $opt(build) --redis-src $redis_src --match $opt(match)]
    if {$opt(direct)} {lappend cmd --direct}
    if {$opt(verbose)} {lappend cmd --verbose}
    set chan [open |[concat $cmd [list 2>@1]] r]
    fconfigure $chan -blocking 0 -buffering line
    fileevent $chan readable [list on_child_output $chan]
    set cur(timer) [after 200 tick]
    while {$cur(state) eq "running"} {vwait cur(state)}
    after cancel $cur(timer)
    set state $cur(state)
    set name [file tail $file]
    if {$state ne "eof"} {
        foreach p [pid $chan] {catch {exec kill -KILL $p}}
        set what [expr {$cur(test) ne {} ? "test '$cur(test)'" : "file"}]
        set why [dict get {total-timeout "the whole run's time limit"
            file-timeout "the file's time limit" test-timeout "the test's time limit"} $state]
        puts "\[err\]: $what in $name: killed: ran past $why"
        foreach dir $cur(dirs) {
            puts "  tmp dir (kept): $dir"
            set log [file join $dir redraft.log]
            if {!$opt(direct) && [file exists $log]} {
                puts "  --- last lines of $log"
                catch {foreach l [split [exec tail -n 25 $log] \n] {puts "  | $l"}}
            }
        }
        incr failed
        lappend failures "$what in $name (timeout)"
    } elseif {!$cur(done)} {
        puts "\[err\]: $name: the test process died (last test: '$cur(test)')"
        incr failed
        lappend failures "$name (crashed)"
    }
    kill_leftovers $cur(pids)
    fconfigure $chan -blocking 1
    catch {close $chan}
}

set redis_src [find_redis_src]
if {![file exists [file join $redis_src tests support redis.tcl]]} {
    puts "no tests/support/redis.tcl under $redis_src"
    puts "0 passed, 1 failed"
    exit 1
}
if {!$opt(direct) && ![file executable [file join $opt(build) redraft]]} {
    puts "no redraft binary at [file join $opt(build) redraft] (run make, or use --direct)"
    puts "0 passed, 1 failed"
    exit 1
}

set files [test_files]
if {[llength $files] == 0} {
    puts "no test file matches '$opt(only)'"
    puts "0 passed, 1 failed"
    exit 1
}
set mode [expr {$opt(direct) ? "direct (plain redis-server, no redraft)" : "redraft at $opt(build)"}]
puts "# redraft integration tests: [llength $files] files, $mode"
set started [clock milliseconds]
set deadline [expr {$started + $opt(total-timeout) * 1000}]
foreach f $files {
    if {[clock milliseconds] >= $deadline} {
        puts "\[err\]: [file tail $f]: not run: the whole run's time limit was reached"
        incr failed
        lappend failures "[file tail $f] (not run)"
        continue
    }
    if {$opt(verbose)} {puts "# file [file tail $f]"}
    run_file $f
}
catch {file delete [file join $here tmp]}   ;# only if empty

set secs [expr {([clock milliseconds] - $started) / 1000.0}]
puts ""
if {[llength $failures]} {
    puts "failed:"
    foreach f $failures {puts "  $f"}
}
puts "# [format %.1f $secs] s, $skipped skipped"
puts "$passed passed, $failed failed"
exit [expr {$failed > 0}]
