# A three-node cluster behaves as one Redis: writes through any node are seen
# by linearizable reads on every node as soon as they are acknowledged,
# followers forward writes to the leader, concurrent INCRs through different
# nodes count exactly, and every replica's redis-server ends up holding the
# same dataset, key by key, type by type, with the same absolute expiries.

# The bus on its default port (client port + 10000), as most users run it.
start_cluster 3 {default_bus_port 1} {

    test {RAFT.INFO: three voters, one leader, every link up} {
        set leader [wait_for_leader]
        set ids {}
        foreach i {1 2 3} {
            set info [node_info $i]
            assert_equal up [dict get $info state] "state of node $i"
            assert_equal 3 [dict get $info num_nodes] "num_nodes on node $i"
            assert_equal 3 [dict get $info num_voters] "num_voters on node $i"
            assert_equal [node_id $leader] [dict get $info leader_id] "leader_id on node $i"
            set want [expr {$i == $leader ? "leader" : "follower"}]
            assert_equal $want [dict get $info role] "role of node $i"
            assert_equal [node_id $i] [dict get $info node_id]
            lappend ids [dict get $info node_id]
            assert {[dict get $info commit_index] <= [dict get $info last_index]}
            set members [info_members $info]
            assert_equal 3 [llength $members] "member lines on node $i"
            set selves 0
            foreach m $members {
                assert_equal 1 [dict get $m voter]
                if {[dict get $m self]} {
                    incr selves
                    assert_equal self [dict get $m link]
                    assert_equal [node_id $i] [dict get $m id]
                    assert_equal 127.0.0.1:[node_bus_port $i] [dict get $m addr]
                } else {
                    assert_equal up [dict get $m link] "link from node $i to [dict get $m id]"
                }
            }
            assert_equal 1 $selves
        }
        assert_equal 3 [llength [lsort -unique $ids]] "three distinct node ids"
        # The leader's member lines show the followers caught up.
        set info [node_info $leader]
        foreach m [info_members $info] {
            if {![dict get $m self]} {
                assert_range [dict get $m match_index] 1 [dict get $info last_index]
            }
        }
        # INFO raft says the same, plus the applied index.
        set text [[node_client 2] info raft]
        assert_match "*role:*" $text
        set info [::rd::parse_info $text]
        assert_equal 3 [dict get $info num_voters]
        assert {[dict get $info applied_index] >= 1}
    }

    test {XADD with an automatic id makes the same ids on every replica} {
        # Each node's Redis applies the entry at its own moment: left to itself, each would pick
        # its own clock's id. The id comes from the entry's time instead.
        for {set i 0} {$i < 150} {incr i} {
            [node_client [expr {$i % 3 + 1}]] xadd xa:s * n $i
        }
        [node_client 1] xadd xa:s 99999999999999-1 n future
        set after [[node_client 2] xadd xa:s * n after]
        assert_equal 99999999999999-2 $after
        assert_replicas_identical {1 2 3}
        [node_client 3] xlen xa:s
    } {152}

    test {A write through any node is read by linearizable reads on every node at once} {
        foreach w {1 2 3} {
            for {set k 0} {$k < 20} {incr k} {
                set v "w$w-$k-[clock microseconds]"
                assert_equal OK [[node_client $w] set lin:$k $v]
                foreach rd {1 2 3} {
                    assert_equal $v [[node_client $rd] get lin:$k] \
                        "read on node $rd right after a write through node $w"
                }
            }
        }
    }

    test {Linearizable reads on the leader go to Redis beside their read-index round} {
        set l [wait_for_leader]
        set f [expr {$l % 3 + 1}]
        set ahead {apply {{i} {
            set d [::rd::parse_info [[node_client $i] info raft]]
            list [dict get $d reads_ahead] [dict get $d reads_ahead_dropped]
        }}}
        lassign [{*}$ahead $l] l0 ld0
        lassign [{*}$ahead $f] f0 fd0
        for {set k 0} {$k < 20} {incr k} {
            assert_equal OK [[node_client $l] set ra:$k v$k]
            assert_equal v$k [[node_client $l] get ra:$k]
            assert_equal v$k [[node_client $f] get ra:$k]
        }
        lassign [{*}$ahead $l] l1 ld1
        lassign [{*}$ahead $f] f1 fd1
        # Every read on the leader went ahead and was used (the 20 GETs and the second INFO,
        # itself a linearizable read); a follower never sends one ahead.
        assert_equal 21 [expr {$l1 - $l0}]
        assert_equal $ld0 $ld1
        assert_equal [list $f0 $fd0] [list $f1 $fd1]
    }

    test {A follower forwards writes: written via a follower, read on the leader and the third node} {
        set leader [wait_for_leader]
        set followers [lsearch -all -inline -not -exact {1 2 3} $leader]
        lassign $followers f1 f2
        set c [node_client $f1]
        assert_equal OK [$c set fwd:str hello]
        assert_equal 3 [$c rpush fwd:list a b c]
        assert_equal 2 [$c hset fwd:hash f1 v1 f2 v2]
        assert_equal 5 [$c incrby fwd:n 5]
        foreach i [list $leader $f2] {
            set o [node_client $i]
            assert_equal hello [$o get fwd:str]
            assert_equal {a b c} [$o lrange fwd:list 0 -1]
            assert_equal v2 [$o hget fwd:hash f2]
            assert_equal 5 [$o get fwd:n]
        }
        # The follower answered with the reply of the command itself, errors included.
        assert_error {WRONGTYPE*} {$c lpush fwd:str x}
        assert_error {ERR value is not an integer*} {$c incr fwd:str}
    }

    test {INCR through all three nodes interleaved counts exactly} {
        foreach i {1 2 3} {[node_client $i] del ctr:all}
        set expect 0
        for {set k 0} {$k < 150} {incr k} {
            set i [expr {$k % 3 + 1}]
            set got [[node_client $i] incr ctr:all]
            incr expect
            assert_equal $expect $got "INCR number $expect through node $i"
        }
        foreach i {1 2 3} {assert_equal 150 [[node_client $i] get ctr:all]}
    }

    test {Pipelined INCRs from three clients on three nodes at once total exactly} {
        set fds {}
        foreach i {1 2 3} {
            set fd [raw_connect [node_port $i]]
            set batch {}
            for {set k 0} {$k < 300} {incr k} {append batch [resp_cmd INCR ctr:pipe]}
            lappend fds $fd $batch
        }
        # Send all three batches before reading any reply.
        foreach {fd batch} $fds {raw_send $fd $batch}
        set all {}
        foreach {fd batch} $fds {
            set prev 0
            for {set k 0} {$k < 300} {incr k} {
                set rep [raw_read_reply $fd]
                assert_match {:*} $rep
                set n [string range $rep 1 end]
                assert {$n > $prev} "replies on one connection increase ($prev then $n)"
                set prev $n
                lappend all $n
            }
        }
        # Every value 1..900 was handed out exactly once.
        assert_equal [llength $all] [llength [lsort -unique -integer $all]]
        assert_equal 900 [lindex [lsort -integer $all] end]
        foreach i {1 2 3} {assert_equal 900 [[node_client $i] get ctr:pipe]}
    }

    test {Replicas' datasets are identical after a mixed workload through all nodes} {
        for {set k 0} {$k < 60} {incr k} {
            set c [node_client [expr {$k % 3 + 1}]]
            $c set mix:s:$k v$k
            $c append mix:s:$k -more
            $c rpush mix:l:[expr {$k % 5}] $k
            $c lpush mix:l:[expr {$k % 5}] x$k
            $c hset mix:h:[expr {$k % 4}] f$k $k
            $c sadd mix:set:[expr {$k % 3}] m$k
            $c zadd mix:z [expr {$k * 1.5}] z$k
            $c zincrby mix:z 1 z[expr {$k / 2}]
            if {$k % 4 == 0} {$c expire mix:s:$k 1000}
            if {$k % 7 == 0} {$c set mix:ex:$k v EX 500}
            if {$k % 9 == 0} {$c pexpire mix:h:[expr {$k % 4}] 900000}
            if {$k % 10 == 0} {$c lpop mix:l:[expr {$k % 5}]}
            if {$k % 11 == 0} {$c srem mix:set:[expr {$k % 3}] m[expr {$k - 3}]}
        }
        set c [node_client 2]
        $c select 3
        $c set mix:db3 in-db-3 PX 700000
        $c hincrby mix:db3h n 7
        $c select 0
        $c setex mix:gone 1 x
        $c del mix:s:1
        $c rename mix:s:2 mix:renamed
        $c xadd mix:stream 1-1 a 1
        $c xadd mix:stream 2-1 b 2
        $c copy mix:z mix:zcopy
        $c sinterstore mix:inter mix:set:0 mix:set:1
        $c zunionstore mix:zu 2 mix:z mix:zcopy
        $c persist mix:s:4
        # A key that expires before the comparison is gone on every node.
        after 1100
        set n [assert_replicas_identical {1 2 3}]
        assert_morethan $n 50
        set d [dataset_of 3]
        # Spot checks that the comparison sees what matters.
        assert {[lsearch -index 1 $d mix:gone] < 0} "mix:gone expired"
        set e [lsearch -inline -index 1 $d mix:db3]
        assert_equal 3 [lindex $e 0]
        assert_morethan [lindex $e 4] [clock milliseconds]
        assert_equal -1 [lindex [lsearch -inline -index 1 $d mix:s:4] 4]
        assert_equal stream [lindex [lsearch -inline -index 1 $d mix:stream] 2]
    }

    test {dataset_of tells replicas apart (the comparison can fail)} {
        # Write behind redraft's back into node 3's redis, then undo it.
        set h [redis 127.0.0.1 [node_redis_port 3]]
        $h set mix:intruder 1
        set rc [catch {assert_replicas_identical {1 2 3} 300} err]
        $h del mix:intruder
        $h close
        assert_equal 1 $rc
        assert_match {*mix:intruder*} $err
        assert_replicas_identical {1 2 3}
    } {*}

    test {MULTI/EXEC through a follower is applied as one on every node} {
        set leader [wait_for_leader]
        set f [lindex [lsearch -all -inline -not -exact {1 2 3} $leader] 0]
        set c [new_client [node_port $f]]
        $c del tx:n tx:l
        # Raw, to see the error inside EXEC's reply (redis.tcl raises it).
        set fd [raw_connect [node_port $f]]
        raw_send $fd [join [list [resp_cmd MULTI] [resp_cmd SET tx:s one] \
            [resp_cmd INCRBY tx:n 10] [resp_cmd RPUSH tx:l a b] [resp_cmd INCR tx:s] \
            [resp_cmd EXEC]] {}]
        assert_equal +OK [raw_read_reply $fd]
        for {set k 0} {$k < 4} {incr k} {assert_equal +QUEUED [raw_read_reply $fd]}
        set replies [raw_read_reply $fd]
        assert_equal 4 [llength $replies]
        assert_equal {+OK :10 :2} [lrange $replies 0 2]
        assert_match {-ERR value is not an integer*} [lindex $replies 3]
        foreach i {1 2 3} {
            set o [node_client $i]
            assert_equal one [$o get tx:s]
            assert_equal 10 [$o get tx:n]
            assert_equal {a b} [$o lrange tx:l 0 -1]
        }
        $c multi
        $c set tx:s two
        assert_equal OK [$c discard]
        assert_equal one [[node_client $leader] get tx:s]
        # No node's Redis ever shows half a transaction: 200 pipelined
        # transactions of two INCRs, watched on the third node meanwhile.
        set third [lindex [lsearch -all -inline -not -exact {1 2 3} $f] end]
        set ev [new_client [node_port $third]]
        $ev client consistency eventual
        set batch {}
        for {set k 0} {$k < 200} {incr k} {
            append batch [resp_cmd MULTI] [resp_cmd INCR tx:a] [resp_cmd INCR tx:b] [resp_cmd EXEC]
        }
        raw_send $fd $batch
        set seen {}
        set deadline [expr {[clock milliseconds] + 10000}]
        while {1} {
            lassign [$ev mget tx:a tx:b] a b
            assert_equal $a $b "node $third showed half a transaction"
            lappend seen $a
            if {$a eq "200" || [clock milliseconds] > $deadline} break
        }
        assert_equal 200 $a
        for {set k 0} {$k < 200} {incr k} {
            for {set j 0} {$j < 3} {incr j} {raw_read_reply $fd}
            assert_equal [list :[expr {$k + 1}] :[expr {$k + 1}]] [raw_read_reply $fd]
        }
        puts "    [llength [lsort -unique $seen]] distinct states seen on node $third while applying"
        close_client $ev
        close_client $c
        assert_replicas_identical {1 2 3}
    }

    test {CLIENT CONSISTENCY: per connection, default linearizable, invalid level refused} {
        set c [new_client [node_port 2]]
        assert_equal linearizable [$c client consistency]
        assert_equal OK [$c client consistency EVENTUAL]
        assert_equal eventual [$c client consistency]
        assert_equal OK [$c client consistency session]
        assert_equal session [$c client consistency]
        assert_equal OK [$c client consistency Linearizable]
        assert_equal linearizable [$c client consistency]
        assert_error {ERR consistency must be LINEARIZABLE, SESSION or EVENTUAL*} {
            $c client consistency strong
        }
        assert_equal linearizable [$c client consistency]
        # Another connection keeps its own level.
        $c client consistency eventual
        set d [new_client [node_port 2]]
        assert_equal linearizable [$d client consistency]
        assert_equal eventual [$c client consistency]
        # A session client reads its own writes through a follower.
        $d client consistency session
        for {set k 0} {$k < 20} {incr k} {
            $d set sess:$k $k
            assert_equal $k [$d get sess:$k]
        }
        close_client $c
        close_client $d
    }
}
