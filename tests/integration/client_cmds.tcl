# CLIENT REPLY, CLIENT LIST and CLIENT KILL, answered by redraft itself for the
# clients of this node, in Redis's formats.

start_pair {} {
    test {CLIENT REPLY OFF, SKIP and ON drop exactly the replies Redis drops} {
        set fd [raw_connect]
        raw_send $fd [join {
            "CLIENT REPLY OFF" "SET reply:k 1" "GET reply:k" "CLIENT REPLY ON" "GET reply:k"
            "CLIENT REPLY SKIP" "INCR reply:k" "GET reply:k" "PING"
        } "\r\n"]\r\n
        # ON answers +OK; the first GET, the INCR (skipped) are silent.
        assert_equal [raw_read_reply $fd] "+OK"
        assert_equal [raw_read_reply $fd] "1"
        assert_equal [raw_read_reply $fd] "2"
        assert_equal [raw_read_reply $fd] "+PONG"
        raw_send $fd "CLIENT REPLY MAYBE\r\n"
        assert_match "-ERR*syntax*" [raw_read_reply $fd]
    }

    test {CLIENT LIST shows this node's clients in Redis's format, filtered by TYPE and ID} {
        set other [new_client]
        $other client setname lister
        set id [$other client id]
        set list [r client list]
        assert_match "*id=$id addr=* name=lister *cmd=client|id *" $list
        assert_match "*cmd=client|list*" $list
        set one [r client list id $id]
        assert_equal [llength [split [string trim $one] \n]] 1
        assert_match "id=$id *" $one
        assert_equal [r client list type pubsub] {}
        # INFO counts redraft's clients (as CLIENT LIST does), not Redis's links to redraft.
        set n [llength [split [string trim [r client list]] \n]]
        assert_morethan $n 1
        assert_match "*connected_clients:$n\r*" [r info clients]
        assert_error "*Invalid client ID*" {r client list id abc}
        assert_error "*Unknown client type*" {r client list type bogus}
        close_client $other
    }

    test {CLIENT KILL by address, by ID and with SKIPME} {
        set victim [raw_connect]
        raw_send $victim "CLIENT ID\r\n"
        set vid [string range [raw_read_reply $victim] 1 end]
        set line [r client list id $vid]
        regexp {addr=([^ ]+)} $line -> addr
        assert_equal [r client kill $addr] OK
        assert [raw_wait_closed $victim]
        assert_error "*No such client*" {r client kill $addr}

        set v2 [raw_connect]
        raw_send $v2 "CLIENT ID\r\n"
        set v2id [string range [raw_read_reply $v2] 1 end]
        assert_equal [r client kill id $v2id] 1
        assert [raw_wait_closed $v2]
        assert_equal [r client kill id $v2id] 0

        # SKIPME yes (the default) spares the caller; the caller still works.
        set me [r client id]
        assert_equal [r client kill id $me] 0
        assert_equal [r ping] PONG
        assert_error "*syntax error*" {r client kill id 1 bogus}
        assert_error "*greater than 0*" {r client kill id -1}
    }
}

start_pair {} {
    test {RESET turns replies back on, answers, and restores the default consistency} {
        needs_redraft {CLIENT CONSISTENCY is redraft's}
        set fd [raw_connect]
        raw_send $fd "CLIENT CONSISTENCY EVENTUAL\r\nCLIENT REPLY OFF\r\nPING\r\nRESET\r\nPING\r\nCLIENT CONSISTENCY\r\n"
        assert_equal [raw_read_reply $fd] "+OK"
        assert_equal [raw_read_reply $fd] "+RESET"
        assert_equal [raw_read_reply $fd] "+PONG"
        assert_match "*LINEARIZABLE*" [string toupper [raw_read_reply $fd]]
        close $fd
    }
}

start_pair {} {
    proc cmdstat {name} {
        if {[regexp "\r\ncmdstat_$name:(\[^\r\]*)" [r info commandstats] -> v]} {return $v}
        return {}
    }

    test {INFO commandstats counts the clients' commands, not the apply path's batches} {
        r config resetstat
        r set cs:k v
        r get cs:k
        r expire cs:k 100
        r multi
        r set cs:k2 1
        r incr cs:k2
        r exec
        catch {r incr cs:k} _
        assert_match {calls=2,*rejected_calls=0,failed_calls=0} [cmdstat set]
        assert_match {calls=1,*} [cmdstat get]
        # as the client sent it (redraft logs it as PEXPIREAT)
        assert_match {calls=1,*} [cmdstat expire]
        assert_equal {} [cmdstat pexpireat]
        assert_match {calls=1,*} [cmdstat multi]
        assert_match {calls=1,*} [cmdstat exec]
        assert_match {calls=2,*failed_calls=1} [cmdstat incr]
        assert_match {calls=*,usec=*,usec_per_call=*} [cmdstat set]
        r config resetstat
        assert_equal {} [cmdstat set]
    }

    test {SLOWLOG lists the clients' commands as sent, trimmed and redacted as Redis does} {
        r config set slowlog-log-slower-than 0
        r config set slowlog-max-len 5
        r slowlog reset
        r client setname slowpoke
        r expire sl:k 100
        catch {r auth not-the-password} _
        r sadd sl:s 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33
        r set sl:big [string repeat A 129]
        set log [r slowlog get]
        assert_equal [llength $log] 5
        assert_equal [r slowlog len] 5
        set e [lindex $log 0]
        assert_equal [llength $e] 6
        assert_equal [lindex $e 3] [list set sl:big "[string repeat A 128]... (1 more bytes)"]
        assert_equal [lindex $e 5] slowpoke
        assert_match {127.0.0.1:*} [lindex $e 4]
        assert_equal [lindex [lindex $log 1] 3] {sadd sl:s 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 {... (2 more arguments)}}
        assert_equal [lindex [lindex $log 2] 3] {auth (redacted)}
        # as the client sent it, though the log holds PEXPIREAT
        assert_equal [lindex [lindex $log 3] 3] {expire sl:k 100}
        assert_equal [llength [r slowlog get 2]] 2
        assert_error {*count should be greater than or equal to -1*} {r slowlog get -2}
        assert_equal [r slowlog reset] OK
        assert_equal [r slowlog len] 1 ;# the RESET itself
    }

    test {SLOWLOG times a command from its start, not from when it queued behind another} {
        r config set slowlog-log-slower-than 100000
        r slowlog reset
        set fd [raw_connect]
        raw_send $fd "BLPOP sl:none 0.3\r\nPING\r\n"
        assert_equal [raw_read_reply $fd] "(nil)"
        assert_equal [raw_read_reply $fd] "+PONG"
        close $fd
        set cmds [lmap e [r slowlog get] {string tolower [lindex $e 3 0]}]
        r config set slowlog-log-slower-than 10000
        # neither the PING (which waited behind the BLPOP) nor the BLPOP (whose time was spent
        # blocked) ran for 100 ms
        set cmds
    } {}

    test {SLOWLOG follows the local Redis's settings, however they were changed} {
        needs_redraft {the settings are read back from the local Redis}
        r config set slowlog-log-slower-than 0
        set be [redis 127.0.0.1 [srv redis_port]]
        $be config set slowlog-log-slower-than -1
        $be close
        wait_for_condition 50 100 {
            [r slowlog reset] eq {OK} && [r slowlog len] == 0
        } {
            fail "redraft still logs every command"
        }
        r config set slowlog-log-slower-than 10000
    }

    test {LATENCY HISTOGRAM from the same counts, by command, container or subcommand} {
        r config resetstat
        r set lh:a b
        r set lh:c d
        r get lh:a
        r client id
        r client getname
        set h [dict create {*}[r latency histogram set get]]
        assert_equal [lsort [dict keys $h]] {get set}
        assert_match {calls 2 histogram_usec *} [dict get $h set]
        # cumulative counts per power-of-two bucket: the last one is all the calls
        set buckets [lindex [dict get $h set] 3]
        assert_equal [lindex $buckets end] 2
        assert_equal [expr {[llength $buckets] % 2}] 0
        set h [dict create {*}[r latency histogram client]]
        assert_equal [lsort [dict keys $h]] {client|getname client|id}
        set h [dict create {*}[r latency histogram client|id nosuchcommand]]
        assert_equal [dict keys $h] {client|id}
        assert_equal [r latency histogram nosuchcommand] {}
    }
}
