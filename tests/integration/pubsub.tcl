# Pub/sub through redraft: a subscribed client gets its own link to the local Redis; PUBLISH goes
# through the log, so subscribers on every node receive it.

proc sub_connect {{port {}}} {
    set fd [raw_connect $port]
    fconfigure $fd -translation binary
    return $fd
}

start_pair {} {
    test {SUBSCRIBE and PSUBSCRIBE receive what PUBLISH sends, in order} {
        set fd [sub_connect]
        raw_send $fd [resp_cmd SUBSCRIBE ps:a ps:b]
        assert_equal {subscribe ps:a :1} [raw_read_reply $fd]
        assert_equal {subscribe ps:b :2} [raw_read_reply $fd]
        set pfd [sub_connect]
        raw_send $pfd [resp_cmd PSUBSCRIBE ps:*]
        assert_equal {psubscribe ps:* :1} [raw_read_reply $pfd]
        assert_equal 2 [r publish ps:a one]
        assert_equal 1 [r publish ps:c two]
        assert_equal {message ps:a one} [raw_read_reply $fd]
        assert_equal {pmessage ps:* ps:a one} [raw_read_reply $pfd]
        assert_equal {pmessage ps:* ps:c two} [raw_read_reply $pfd]
        close $fd
        close $pfd
    }

    test {A subscribed client may only run pub/sub commands; PING answers in pub/sub form} {
        set fd [sub_connect]
        raw_send $fd [resp_cmd SUBSCRIBE ps:x]
        assert_equal {subscribe ps:x :1} [raw_read_reply $fd]
        raw_send $fd [resp_cmd GET somekey]
        assert_match {-ERR Can't execute 'get': only (P|S)SUBSCRIBE*} [raw_read_reply $fd]
        raw_send $fd [resp_cmd PING]
        assert_equal {pong {}} [raw_read_reply $fd]
        raw_send $fd [resp_cmd UNSUBSCRIBE ps:x]
        assert_equal {unsubscribe ps:x :0} [raw_read_reply $fd]
        # out of subscribe mode: ordinary commands again
        raw_send $fd [resp_cmd SET ps:k v]
        assert_equal +OK [raw_read_reply $fd]
        raw_send $fd [resp_cmd GET ps:k]
        set v [raw_read_reply $fd]
        close $fd
        set v
    } {v}

    test {RESET leaves subscribe mode} {
        set fd [sub_connect]
        raw_send $fd [resp_cmd PSUBSCRIBE ps:*]
        assert_equal {psubscribe ps:* :1} [raw_read_reply $fd]
        raw_send $fd [resp_cmd RESET]
        assert_equal +RESET [raw_read_reply $fd]
        # Redis drops the subscriber link's subscriptions when it notices the link closed
        wait_for_condition 50 20 {[r publish ps:q nobody] == 0} {
            fail "the subscription outlived RESET"
        }
        raw_send $fd [resp_cmd PING]
        set v [raw_read_reply $fd]
        close $fd
        set v
    } {+PONG}
}

start_cluster 3 {} {
    test {A message published through one node reaches subscribers on every node} {
        set fds {}
        foreach i {1 2 3} {
            set fd [sub_connect [node_port $i]]
            raw_send $fd [resp_cmd SUBSCRIBE cps:ch]
            assert_equal {subscribe cps:ch :1} [raw_read_reply $fd]
            lappend fds $fd
        }
        # every node's Redis publishes the applied entry to its own subscriber
        [node_client 2] publish cps:ch hello
        set got {}
        foreach fd $fds {
            lappend got [raw_read_reply $fd]
            close $fd
        }
        set got
    } {{message cps:ch hello} {message cps:ch hello} {message cps:ch hello}}
}
