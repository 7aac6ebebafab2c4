# A node that comes back at another bus address (a rescheduled container gets
# a new IP; here: a new port) is followed, not lost: it tells the leader, the
# configuration records the new address, and every node dials it there.

proc member_of {i id} {
    foreach m [info_members [node_info $i]] {
        if {[dict get $m id] eq $id} {return $m}
    }
    return {}
}

start_cluster 3 {} {
    test {A node restarted at a new bus address is followed by the whole cluster} {
        set leader [wait_for_leader]
        set moved [lindex [lsearch -all -inline -not -exact {1 2 3} $leader] 0]
        set id [node_id $moved]
        set old "127.0.0.1:[node_bus_port $moved]"
        kill_node $moved
        [node_client $leader] set while:away 1
        set ::rd::cl($moved,bus_port) [free_port]
        set new "127.0.0.1:[node_bus_port $moved]"
        assert_not_equal $new $old
        start_node $moved
        foreach i {1 2 3} {
            if {$i == $moved} continue
            wait_for_condition 100 100 {
                [dict exists [member_of $i $id] addr] &&
                [dict get [member_of $i $id] addr] eq $new &&
                [dict get [member_of $i $id] link] eq "up"
            } {
                fail "node $i still has node $moved at [dict get [member_of $i $id] addr]\
                      (link [dict get [member_of $i $id] link]), not $new"
            }
        }
        [node_client $leader] set after:move 1
        wait_for_condition 100 50 {
            ![catch {[reconnect_node_client $moved] get after:move} v] && $v eq "1"
        } {
            fail "the moved node did not receive new writes"
        }
        assert [string match "*address is $new now*" [exec cat [node_log $moved]]] \
            "the moved node did not log that it told the leader"
        assert_replicas_identical
    }
}
