# Snapshots. Under a steady write load every node snapshots its Redis and
# trims its log; a node that was down longer than the log reaches catches up
# through the leader's snapshot; a redis-server that comes back empty is
# refilled from its node's own snapshot; a transfer cut short by the death of
# the sender finishes from the next leader; and a Redis that held 100k keys
# before the cluster existed (an upgrade in place) keeps every key, value and
# TTL, on every node.

# A digest of db 0 of the redis-server on port, computed inside it (one round
# trip however many keys): every key with its type, its value in a canonical
# form (members and fields sorted) and its absolute expiry.
set ::digest_script {
    local cursor = "0"
    local keys = {}
    repeat
        local r = redis.call("SCAN", cursor, "COUNT", 1000)
        cursor = r[1]
        for _, k in ipairs(r[2]) do keys[#keys + 1] = k end
    until cursor == "0"
    table.sort(keys)
    local acc = ""
    for i, k in ipairs(keys) do
        local t = redis.call("TYPE", k)["ok"]
        local v
        if t == "string" then v = {redis.call("GET", k)}
        elseif t == "list" then v = redis.call("LRANGE", k, 0, -1)
        elseif t == "set" then v = redis.call("SMEMBERS", k); table.sort(v)
        elseif t == "zset" then v = redis.call("ZRANGE", k, 0, -1, "WITHSCORES")
        elseif t == "hash" then
            local h = redis.call("HGETALL", k)
            v = {}
            for j = 1, #h, 2 do v[#v + 1] = h[j] .. "=" .. h[j + 1] end
            table.sort(v)
        else v = {redis.call("DUMP", k)} end
        local line = k .. "|" .. t .. "|" .. table.concat(v, ",") .. "|" ..
            redis.call("PEXPIRETIME", k)
        acc = redis.sha1hex(acc .. line)
    end
    return {#keys, acc}
}

proc redis_digest {port} {
    set h [redis 127.0.0.1 $port]
    try {
        $h select 0
        return [$h eval $::digest_script 0]
    } finally {
        catch {$h close}
    }
}

proc info_of {i name {default {}}} {
    set info [node_info $i 1000]
    if {[dict exists $info $name]} {return [dict get $info $name]}
    return $default
}

proc wait_info {i name op value {ms 20000}} {
    set deadline [expr {[clock milliseconds] + $ms}]
    while {1} {
        set v [info_of $i $name 0]
        if {[string is entier -strict $v] && [expr "\$v $op \$value"]} {return $v}
        if {[clock milliseconds] >= $deadline} {
            fail "node $i: $name is '$v', waited for $op $value for $ms ms"
        }
        after 50
    }
}

proc log_has {i pattern} {
    set f [open [node_log $i]]
    set text [read $f]
    close $f
    return [string match $pattern $text]
}

start_cluster 3 {redraft {--snapshot-log-entries 300}} {
    set leader [wait_for_leader]

    test {Under a steady write load every node snapshots and its log stays short} {
        set c [node_client $leader]
        set max_len 0
        for {set round 0} {$round < 8} {incr round} {
            for {set k 0} {$k < 250} {incr k} {$c set trim:$round:$k [string repeat x 100]}
            foreach i {1 2 3} {
                set len [expr {[info_of $i last_index 0] - [info_of $i first_index 0]}]
                if {$len > $max_len} {set max_len $len}
            }
        }
        foreach i {1 2 3} {
            wait_info $i snapshots_taken >= 3
            wait_info $i first_index > 1500
        }
        # A snapshot every 300 entries: the log never holds much more than
        # that plus what arrived while one was being taken.
        assert_lessthan $max_len 1200
        assert_replicas_identical
    }

    test {A node down longer than the log reaches catches up through a snapshot} {
        set leader [wait_for_leader]
        set down [lindex [lsearch -all -inline -not -exact {1 2 3} $leader] 0]
        set last_before [info_of $down last_index 0]
        set down_id [node_id $down]
        kill_node $down
        set c [node_client $leader]
        for {set k 0} {$k < 1200} {incr k} {$c set behind:$k $k}
        $c rpush behind:list a b c
        $c hset behind:hash f v
        $c incrby behind:counter 41
        $c incr behind:counter
        $c set behind:ttl v PX 600000
        wait_info $leader first_index > [expr {$last_before + 1}]
        # the leader's log tells how far behind the node is, and its rate (every 5 s)
        wait_for_condition 80 100 {
            [log_has $leader "*node $down_id catching up: match index * behind*entries/s)*"]
        } {
            fail "the leader never logged node $down_id's catch-up progress"
        }
        set installed_before [info_of $down snapshots_installed 0]
        restart_node $down
        wait_info $down snapshots_installed > $installed_before
        wait_for_condition 80 100 {[log_has $leader "*node $down_id caught up: match index*"]} {
            fail "the leader never logged that node $down_id caught up"
        }
        assert_replicas_identical
        assert_equal [[node_client $down] get behind:counter] 42
        # The one-time masterauth of the load is gone again.
        set h [redis 127.0.0.1 [node_redis_port $down]]
        assert_equal [$h config get masterauth] {masterauth {}}
        assert_equal [dict get [::rd::parse_info [$h info replication]] role] master
        $h close
    }

    test {A redis-server that comes back empty is refilled from its node's snapshot} {
        set leader [wait_for_leader]
        set i [lindex [lsearch -all -inline -not -exact {1 2 3} $leader] 0]
        # Make sure its log starts after a snapshot, so replaying is no way out.
        wait_info $i first_index > 1
        set restored_before [info_of $i snapshots_restored 0]
        # Empty for real: without the dump.rdb a full sync leaves behind (a
        # Redis that loads one comes back at its index and replays the rest).
        ::rd::kill9 [node_redis_pid $i]
        set ::rd::cl($i,redis_pid) 0
        file delete [file join [node_dir $i] dump.rdb]
        ::rd::start_node_redis $i
        wait_info $i snapshots_restored > $restored_before
        assert_replicas_identical
        [node_client $leader] set after:refill 1
        wait_for_condition 100 50 {
            ![catch {[reconnect_node_client $i] get after:refill} v] && $v eq "1"
        } {
            fail "node $i did not apply new writes after the refill"
        }
    }
}

start_cluster 3 {redraft {--snapshot-log-entries 200}} {
    test {A snapshot transfer cut short by the sender's death finishes from the next leader} {
        set leader [wait_for_leader]
        set fetcher [lindex [lsearch -all -inline -not -exact {1 2 3} $leader] 0]
        kill_node $fetcher
        # About 8 MB of data, pulled at 1 MB/s: the transfer takes seconds.
        set c [node_client $leader]
        # Random letters: the RDB compresses repeated bytes away.
        set blob {}
        for {set k 0} {$k < 4000} {incr k} {
            append blob [format %c [expr {97 + int(rand() * 26)}]]
        }
        for {set k 0} {$k < 2000} {incr k} {$c set big:$k $blob$k}
        foreach i [lsearch -all -inline -not -exact {1 2 3} $fetcher] {
            wait_info $i first_index > 1000
        }
        set ::rd::cl($fetcher,opts) {--snapshot-fetch-rate 1mb}
        start_node $fetcher
        wait_for_condition 200 50 {
            [string match {fetching} [info_of $fetcher snapshot_state]] &&
            [regexp {^([0-9]+)/} [info_of $fetcher snapshot_fetch_progress 0/0] -> got] &&
            $got > 0
        } {
            fail "node $fetcher never started fetching the snapshot"
        }
        # the transfer's rate is reported while it runs
        assert_morethan [info_of $fetcher snapshot_bytes_per_sec 0] 0
        set sender_id [node_id $leader]
        kill_node $leader
        set new_leader [wait_for_leader 20000 [lsearch -all -inline -not -exact {1 2 3} $leader]]
        assert_not_equal $new_leader $fetcher
        wait_info $fetcher snapshots_installed >= 1 40000
        assert [log_has $fetcher "*fetch from node $sender_id abandoned*"] \
            "node $fetcher did not log the abandoned transfer"
        assert [log_has $fetcher "*received * bytes from node [node_id $new_leader]*"] \
            "node $fetcher did not receive the snapshot from the new leader"
        start_node $leader
        assert_replicas_identical {} 20000
    }
}

# An operator's Redis with 100k keys of every type, a seventh of them with a
# TTL, before redraft exists: node 1 starts beside it and initializes the
# cluster; the others join with empty (or stale) Redis.
set ::upgrade_fill {
    for i = 1, tonumber(ARGV[1]) do
        local t = i % 5
        local k
        if t == 0 then k = "s:" .. i; redis.call("SET", k, "v" .. i)
        elseif t == 1 then k = "l:" .. i; redis.call("RPUSH", k, "a", "b", i)
        elseif t == 2 then k = "h:" .. i; redis.call("HSET", k, "f", i, "g", "x")
        elseif t == 3 then k = "S:" .. i; redis.call("SADD", k, "m1", "m2", i)
        else k = "z:" .. i; redis.call("ZADD", k, i, "m" .. i, i + 0.5, "n") end
        if i % 7 == 0 then redis.call("PEXPIRE", k, 3600000 + i) end
    end
    return redis.call("DBSIZE")
}

start_cluster 3 {before_start {
    set h [redis 127.0.0.1 [node_redis_port 1]]
    assert_equal [$h eval $::upgrade_fill 0 100000] 100000
    set ::upgrade_digest [$h eval $::digest_script 0]
    # Node 3's Redis holds stale data of its own, which the cluster's replaces.
    set h3 [redis 127.0.0.1 [node_redis_port 3]]
    $h3 set stale:key 1
    $h3 close
    $h close
}} {
    test {Upgrade in place: 100k keys of a Redis that predates the cluster reach every node} {
        assert_equal [lindex $::upgrade_digest 0] 100000
        foreach i {1 2 3} {
            wait_for_condition 200 100 {
                [redis_digest [node_redis_port $i]] eq $::upgrade_digest
            } {
                fail "node $i's redis does not hold the original dataset:\
                      [redis_digest [node_redis_port $i]] vs $::upgrade_digest"
            }
        }
        assert [log_has 1 "*first snapshot now*"] "node 1 did not take the adopted data as a snapshot"
        set c [node_client 2]
        assert_equal [$c get s:100000] v100000
        assert_equal [$c exists stale:key] 0
        assert_range [$c pttl z:14] 3500000 3600014
        $c set new:key 1
        wait_for_condition 100 50 {
            [redis_digest [node_redis_port 1]] eq [redis_digest [node_redis_port 2]] &&
            [redis_digest [node_redis_port 2]] eq [redis_digest [node_redis_port 3]]
        } {
            fail "the nodes' datasets differ after a write"
        }
    }
}
