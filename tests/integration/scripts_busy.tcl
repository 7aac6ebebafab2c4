# Runaway scripts and functions (docs/scripts.md). While one runs on every
# replica's Redis past busy-reply-threshold, every node answers data commands
# with Redis's own BUSY error at once (PING too, as Redis does; INFO, RAFT.INFO
# and FUNCTION STATS keep answering); SCRIPT KILL and FUNCTION KILL through any node end it on every
# replica, decided once through the log; the killed client gets Redis's
# "Script killed by user" error; the cluster serves again and every replica
# holds the same data.

start_cluster 3 {} {

    proc busy_on {i} {
        return [string match "-BUSY*" [node_call $i 2000 GET k]]
    }

    proc wait_busy_everywhere {} {
        wait_for_condition 100 100 {[busy_on 1] && [busy_on 2] && [busy_on 3]} {
            fail "not every node answers BUSY"
        }
    }

    proc wait_serving_everywhere {key want} {
        foreach i {1 2 3} {
            wait_for_condition 100 100 {[node_call $i 2000 GET $key] eq $want} {
                fail "node $i does not serve $key = $want: [node_call $i 2000 GET $key]"
            }
        }
    }

    test {setup: a short busy-reply-threshold, set through the log} {
        wait_for_leader
        assert_equal +OK [node_call 1 5000 CONFIG SET busy-reply-threshold 200]
        assert_equal +OK [node_call 2 5000 SET k v]
        foreach i {1 2 3} {
            wait_for_condition 50 100 {
                [lindex [node_call $i 2000 CONFIG GET busy-reply-threshold] 1] eq "200"
            } {fail "node $i: threshold not applied"}
        }
    }

    test {a runaway script: BUSY on every node; PING, INFO, RAFT.INFO answer} {
        set fd [raw_connect [node_port 1]]
        raw_send $fd [resp_cmd EVAL "while true do end" 0]
        wait_busy_everywhere
        foreach i {1 2 3} {
            # PING answers at once, with BUSY, as Redis's own does.
            assert_match "-BUSY*" [node_call $i 2000 PING]
            assert_match "*local_redis:busy*" [node_call $i 2000 INFO]
            assert_match "*role:*" [node_call $i 2000 RAFT.INFO]
            assert_equal "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE." \
                [node_call $i 2000 SET k2 v2]
        }
        # The other kind of kill gets Redis's BUSY text, which names the right one.
        assert_match "-BUSY*SCRIPT KILL*" [node_call 2 2000 FUNCTION KILL]
        # Killed through a follower (or whichever node is not the origin).
        assert_equal +OK [node_call 3 5000 SCRIPT KILL]
        assert_match "-ERR Script killed by user with SCRIPT KILL...*" [raw_read_reply $fd]
        close $fd
        wait_serving_everywhere k v
        assert_equal "-NOTBUSY No scripts in execution right now." [node_call 2 2000 SCRIPT KILL]
        assert_equal +OK [node_call 2 5000 SET k3 v3]
        assert_replicas_identical {1 2 3}
    }

    test {a runaway function killed with FUNCTION KILL through a follower} {
        set lib "#!lua name=runaway\nredis.register_function('spin', function(keys, args) while true do end end)"
        assert_equal runaway [node_call 1 5000 FUNCTION LOAD REPLACE $lib]
        set origin [wait_for_leader]
        set other [expr {$origin % 3 + 1}]
        set fd [raw_connect [node_port $origin]]
        raw_send $fd [resp_cmd FCALL spin 0]
        wait_busy_everywhere
        assert_match "-BUSY*FUNCTION KILL*" [node_call $other 2000 GET k]
        assert_match "-BUSY*FUNCTION KILL*" [node_call $other 2000 SCRIPT KILL]
        # Redis answers FUNCTION STATS while busy: it names the running function.
        assert_match "*running_script*spin*" [node_call $other 2000 FUNCTION STATS]
        assert_equal +OK [node_call $other 5000 FUNCTION KILL]
        assert_match "-ERR Script killed by user with SCRIPT KILL...*spin*" [raw_read_reply $fd]
        close $fd
        wait_serving_everywhere k v
        assert_replicas_identical {1 2 3}
    }

    test {MULTI during a runaway script: queued commands get BUSY, EXEC aborts} {
        set fd [raw_connect [node_port 2]]
        raw_send $fd [resp_cmd EVAL "while true do end" 0]
        wait_busy_everywhere
        set m [raw_connect [node_port 1]]
        raw_send $m [resp_cmd MULTI]
        assert_equal +OK [raw_read_reply $m]
        raw_send $m [resp_cmd INCR counter]
        assert_match "-BUSY*" [raw_read_reply $m]
        assert_equal +OK [node_call 1 5000 SCRIPT KILL]
        assert_match "-ERR Script killed*" [raw_read_reply $fd]
        wait_serving_everywhere k v
        raw_send $m [resp_cmd INCR counter]
        assert_equal +QUEUED [raw_read_reply $m]
        raw_send $m [resp_cmd EXEC]
        assert_match "-EXECABORT*" [raw_read_reply $m]
        close $m
        close $fd
        assert_equal (nil) [node_call 3 2000 GET counter]
        assert_replicas_identical {1 2 3}
    }

    test {a read-only script (EVAL_RO) runs on one node only: killed there} {
        set fd [raw_connect [node_port 3]]
        raw_send $fd [resp_cmd EVAL_RO "while true do end" 0]
        wait_for_condition 100 100 {[busy_on 3]} {fail "node 3 not busy"}
        assert_equal v [node_call 1 2000 GET k]
        assert_equal +OK [node_call 3 5000 SCRIPT KILL]
        assert_match "-ERR Script killed*" [raw_read_reply $fd]
        close $fd
        wait_serving_everywhere k v
        assert_replicas_identical {1 2 3}
    }

    test {a log script queued behind a node's own EVAL_RO: each kill ends the right one} {
        # Node 3 runs an endless EVAL_RO of its own; behind it on its link comes an endless
        # EVAL from the log, which the other nodes run at once.
        set ro [raw_connect [node_port 3]]
        raw_send $ro [resp_cmd EVAL_RO "while true do end" 0]
        wait_for_condition 100 100 {[busy_on 3]} {fail "node 3 not busy"}
        set fd [raw_connect [node_port 1]]
        raw_send $fd [resp_cmd EVAL "while true do end" 0]
        wait_busy_everywhere
        # Through node 1: the log's kill names the EVAL. Nodes 1 and 2 kill it; node 3 must
        # not kill its EVAL_RO for it, and keeps the kill for when the EVAL starts there.
        assert_equal +OK [node_call 1 5000 SCRIPT KILL]
        assert_match "-ERR Script killed*" [raw_read_reply $fd]
        close $fd
        foreach i {1 2} {
            wait_for_condition 100 100 {[node_call $i 2000 GET k] eq "v"} {fail "node $i busy"}
        }
        assert_match "-BUSY*" [node_call 3 2000 GET k]
        # Through node 3: its own EVAL_RO is what runs there; then the EVAL starts, and the
        # kill waiting for it ends it at once.
        assert_equal +OK [node_call 3 5000 SCRIPT KILL]
        assert_match "-ERR Script killed*" [raw_read_reply $ro]
        close $ro
        wait_serving_everywhere k v
        assert_equal +OK [node_call 3 5000 SET after-ro 1]
        assert_replicas_identical {1 2 3}
    }

    test {a kill while the leader is replaced} {
        set leader [wait_for_leader]
        set origin [expr {$leader % 3 + 1}]
        set fd [raw_connect [node_port $origin]]
        raw_send $fd [resp_cmd EVAL "while true do end" 0]
        wait_busy_everywhere
        assert_equal +OK [node_call $leader 5000 RAFT.TRANSFER-LEADER]
        wait_for_condition 100 100 {[set nl [cluster_leader]] ne {} && $nl != $leader} {
            fail "leadership did not move"
        }
        assert_equal +OK [node_call $leader 10000 SCRIPT KILL]
        assert_match "-ERR Script killed*" [raw_read_reply $fd]
        close $fd
        wait_serving_everywhere k v
        assert_equal +OK [node_call $leader 5000 SET after-transfer 1]
        assert_replicas_identical {1 2 3}
    }

    test {a script that wrote, then runs away: SHUTDOWN NOSAVE, restart, refill without it} {
        assert_equal +OK [node_call 1 5000 SET w 0]
        assert_equal +OK [node_call 1 5000 SET before 1]
        set fd [raw_connect [node_port 2]]
        raw_send $fd [resp_cmd EVAL "redis.call('incr','w') while true do end" 0]
        wait_busy_everywhere
        # Redis cannot kill a script that wrote; redraft says so, as Redis does.
        assert_match "-UNKILLABLE*" [node_call 3 5000 SCRIPT KILL]
        set t0 [clock milliseconds]
        assert_equal +OK [node_call 3 10000 SHUTDOWN NOSAVE]
        # The test is the redis-servers' supervisor (as systemd, compose or Kubernetes
        # are in production): each one that exits is started again, empty.
        foreach i {1 2 3} {
            set pid [node_redis_pid $i]
            wait_for_condition 100 100 {![::rd::alive $pid]} {
                fail "redis-server of node $i did not exit"
            }
            ::rd::reaped $pid
            set ::rd::cl($i,redis_pid) 0
            ::rd::start_node_redis $i
        }
        wait_serving_everywhere before 1
        set t1 [clock milliseconds]
        puts "    recovery: [expr {$t1 - $t0}] ms from SHUTDOWN NOSAVE to every node serving"
        # The killed entry ran nowhere: its INCR is in no replica.
        wait_serving_everywhere w 0
        assert_match "-ERR Script killed by user*" [raw_read_reply $fd]
        close $fd
        assert_equal +OK [node_call 2 5000 SET after 1]
        assert_replicas_identical {1 2 3}
    }

    test {SHUTDOWN without a runaway script stays refused} {
        assert_match "-ERR SHUTDOWN is not allowed through redraft*" [node_call 1 2000 SHUTDOWN NOSAVE]
        assert_match "-ERR SHUTDOWN is not allowed through redraft*" [node_call 1 2000 SHUTDOWN]
    }
}
