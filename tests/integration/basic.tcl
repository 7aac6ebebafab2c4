# Single-node basics: every data type round trips through the proxy, errors
# look like Redis's own, the hidden bookkeeping database stays hidden, and the
# commands redraft refuses say so without breaking the connection.

start_pair {} {
    test {Strings: SET GET INCR APPEND MSET MGET DEL EXISTS} {
        r flushdb
        assert_equal OK [r set foo bar]
        assert_equal bar [r get foo]
        assert_equal {} [r get nokey]
        assert_equal 1 [r incr counter]
        assert_equal 11 [r incrby counter 10]
        assert_equal 6 [r append foo baz]
        assert_equal barbaz [r get foo]
        assert_equal OK [r mset a 1 b 2 c 3]
        assert_equal {1 2 {} 3} [r mget a b nokey c]
        assert_equal 2 [r exists a b nokey]
        assert_equal 2 [r del a b nokey]
        assert_equal 0 [r exists a b]
        r get c
    } {3}

    test {Lists: RPUSH LPUSH LRANGE LPOP} {
        r del l
        assert_equal 2 [r rpush l b c]
        assert_equal 3 [r lpush l a]
        assert_equal {a b c} [r lrange l 0 -1]
        assert_equal a [r lpop l]
        assert_equal {b c} [r lpop l 2]
        assert_equal 0 [r exists l]
    }

    test {Hashes: HSET HGET HGETALL HDEL} {
        r del h
        assert_equal 2 [r hset h f1 v1 f2 v2]
        assert_equal 0 [r hset h f1 v1b]
        assert_equal v1b [r hget h f1]
        assert_equal {f1 v1b f2 v2} [lsort -stride 2 -index 0 [r hgetall h]]
        assert_equal 1 [r hdel h f1 nofield]
        r hgetall h
    } {f2 v2}

    test {Sets: SADD SMEMBERS SCARD SREM} {
        r del s
        assert_equal 3 [r sadd s c a b a]
        assert_equal {a b c} [lsort [r smembers s]]
        assert_equal 3 [r scard s]
        assert_equal 1 [r srem s b nomember]
        lsort [r smembers s]
    } {a c}

    test {Sorted sets: ZADD ZRANGE WITHSCORES ZSCORE ZREM} {
        r del z
        assert_equal 3 [r zadd z 3 c 1 a 2 b]
        assert_equal {a 1 b 2 c 3} [r zrange z 0 -1 withscores]
        assert_equal 2.5 [r zincrby z 0.5 b]
        assert_equal 2.5 [r zscore z b]
        assert_equal 1 [r zrem z a]
        r zrange z 0 -1
    } {b c}

    test {WRONGTYPE is Redis's own error and changes nothing} {
        r del l
        r set str value
        assert_error {WRONGTYPE Operation against a key holding the wrong kind of value} {
            r lpush str x
        }
        assert_error {WRONGTYPE*} {r hget str f}
        r rpush l a
        assert_error {ERR value is not an integer or out of range} {r incr str}
        list [r get str] [r lrange l 0 -1]
    } {value a}

    test {SET EX, SETEX, EXPIRE and PEXPIRE set TTLs; expired keys vanish} {
        r set ex v EX 100
        assert_range [r ttl ex] 99 100
        r setex sx 200 v
        assert_range [r ttl sx] 199 200
        r set plain v
        assert_equal 1 [r expire plain 50]
        assert_range [r ttl plain] 49 50
        assert_equal 1 [r pexpire plain 30000]
        assert_range [r pttl plain] 29000 30000
        assert_equal 1 [r persist plain]
        assert_equal -1 [r ttl plain]
        r set short v PX 200
        after 400
        list [r get short] [r exists short] [r get ex]
    } {{} 0 v}

    test {Unknown command error} {
        assert_error {ERR unknown command 'nosuchcommand', with args beginning with: 'a' 'b'} {
            r nosuchcommand a b
        }
        r ping
    } {PONG}

    test {Wrong arity error} {
        assert_error {ERR wrong number of arguments for 'get' command} {r get}
        assert_error {ERR wrong number of arguments for 'set' command} {r set onlykey}
        r ping
    } {PONG}

    test {SELECT 1 keeps its keys apart from db 0} {
        set c [new_client]
        $c select 1
        $c set dbkey in-db-1
        assert_equal OK [r select 0]
        r set dbkey in-db-0
        assert_equal in-db-1 [$c get dbkey]
        assert_equal in-db-0 [r get dbkey]
        r select 1
        set v [r get dbkey]
        r select 0
        set v
    } {in-db-1}

    test {PING and ECHO} {
        list [r ping] [r ping hello] [r echo "two words"]
    } {PONG hello {two words}}

    # Tests that could leave their client in another state (another db,
    # RESP3, MONITOR) use a client of their own, so a failure stays theirs.
    test {The hidden database cannot be selected} {
        needs_redraft {plain Redis lets clients use db 15}
        set c [new_client]
        assert_error {ERR DB index is out of range} {$c select 15}
        assert_error {ERR DB index is out of range} {$c select 16}
        # Still in db 0.
        $c set stillhere 1
        assert_equal 1 [r get stillhere]
        $c select 14
        $c set in14 yes
        $c get in14
    } {yes}

    test {The hidden database cannot be reached with MOVE, COPY or SWAPDB} {
        needs_redraft {plain Redis lets clients use db 15}
        set c [new_client]
        $c set tomove v
        assert_error {ERR DB index is out of range} {$c move tomove 15}
        assert_error {ERR DB index is out of range} {$c copy tomove x db 15}
        assert_error {ERR DB index is out of range} {$c swapdb 0 15}
        assert_error {ERR DB index is out of range} {$c swapdb 15 0}
        $c get tomove
    } {v}

    test {KEYS, DBSIZE and SCAN show no bookkeeping} {
        r flushdb
        r set k1 1
        r set k2 2
        r incr k3
        assert_equal {k1 k2 k3} [lsort [r keys *]]
        assert_equal 3 [r dbsize]
        set seen {}
        set cursor 0
        while 1 {
            lassign [r scan $cursor count 100] cursor keys
            lappend seen {*}$keys
            if {$cursor == 0} break
        }
        lsort $seen
    } {k1 k2 k3}

    test {INFO keyspace does not show the hidden database} {
        needs_redraft {plain Redis shows every database}
        r set k1 1
        set info [r info keyspace]
        assert_match {*db0:keys=*} $info
        assert {![string match {*db15:*} $info]} "no db15 in INFO keyspace: $info"
    }

    test {FLUSHALL empties what clients see} {
        r set k 1
        r select 1
        r set k 1
        assert_equal OK [r flushall]
        assert_equal 0 [r dbsize]
        r select 0
        list [r dbsize] [r keys *]
    } {0 {}}

    test {HELLO and HELLO 2 answer in RESP2} {
        set h [r hello]
        assert_equal 2 [dict get $h proto]
        assert_match {*redis*} [dict get $h server]
        set h [r hello 2]
        assert_equal 2 [dict get $h proto]
        # The connection is still RESP2.
        r set hk v
        r get hk
    } {v}

    test {HELLO 3 is refused with NOPROTO} {
        needs_redraft {plain Redis speaks RESP3}
        set c [new_client]
        assert_error {NOPROTO*} {$c hello 3}
        # Still RESP2: a null bulk, not RESP3's null.
        $c del nokey
        assert_equal {} [$c get nokey]
        $c ping
    } {PONG}

    test {CLIENT SETNAME, GETNAME and ID} {
        set c [new_client]
        assert_equal {} [$c client getname]
        assert_equal OK [$c client setname tester]
        assert_equal tester [$c client getname]
        assert_error {ERR Client names cannot contain spaces, newlines or special characters.} {
            $c client setname "two words"
        }
        set id1 [r client id]
        set id2 [$c client id]
        assert {[string is integer -strict $id1] && $id1 > 0} "CLIENT ID is a positive integer ($id1)"
        assert_not_equal $id1 $id2 "two connections have different ids"
        assert_equal $id2 [$c client id]
        # The name belongs to that connection only.
        r client getname
    } {}

    test {QUIT answers OK and closes the connection} {
        set fd [raw_connect]
        raw_send $fd [resp_cmd QUIT]
        assert_equal +OK [raw_read_reply $fd]
        assert_equal 1 [raw_wait_closed $fd]
        r ping
    } {PONG}

    test {A 1 MB value round trips} {
        set big [string repeat "0123456789abcdef" 65536]
        append big [string repeat x 1000]
        assert_equal OK [r set big $big]
        set got [r get big]
        assert_equal [string length $big] [string length $got]
        assert_equal $big $got "1 MB value"
        assert_equal [string length $big] [r strlen big]
    }

    test {A binary value with CR, LF and NUL round trips} {
        set v "a\r\nb\x00c\r\n\xff"
        r set bin $v
        assert_equal $v [r get bin]
        r strlen bin
    } {9}

    test {DEBUG: the subcommands that only read reach Redis, the others are refused} {
        needs_redraft {plain Redis runs them all}
        r set dbg:k hello
        # Redis itself may refuse DEBUG (enable-debug-command no): either way not redraft
        catch {r debug object dbg:k} e
        assert {![string match *redraft* $e]} "DEBUG OBJECT refused by redraft: $e"
        catch {r debug digest-value dbg:k} e
        assert {![string match *redraft* $e]} "DEBUG DIGEST-VALUE refused by redraft: $e"
        catch {r debug reload} e
        assert_match {ERR DEBUG reload is not supported by redraft*} $e
        catch {r debug} e
        assert_match {*wrong number of arguments*} $e
        r get dbg:k
    } {hello}

    test {XADD * after an id in the future continues from it, as Redis's own * does} {
        r del xs
        r xadd xs 2577343934890-5 f v
        r xadd xs * f v2
        r xadd xs 2577343934891-18446744073709551615 f v3
        r xadd xs * f v4
        lmap e [r xrange xs - +] {lindex $e 0}
    } {2577343934890-5 2577343934890-6 2577343934891-18446744073709551615 2577343934892-0}
}

start_pair {} {
    test {CONFIG SET goes through the log: the setting reaches Redis, and survives a refill} {
        assert_equal OK [r config set list-max-listpack-size 7 hash-max-listpack-entries 99]
        assert_equal {list-max-listpack-size 7} [r config get list-max-listpack-size]
        assert_error {ERR*} {r config set list-max-listpack-size notanumber}
        if {![is_direct]} {
            # A redis-server restarted empty is refilled from the log, settings included.
            restart_redis
            wait_for_condition 100 100 {
                ![catch {r config get hash-max-listpack-entries} v] &&
                $v eq {hash-max-listpack-entries 99}
            } {
                fail "the setting did not come back with the log: $v"
            }
        }
        r config get hash-max-listpack-entries
    } {hash-max-listpack-entries 99}
}

# Commands redraft refuses.  In a pair of their own, last: one that slipped
# through (SHUTDOWN, REPLICAOF) would break every test after it.
start_pair {only_redraft {plain Redis runs them}} {
    foreach cmd {
        {CONFIG SET maxmemory 1}
        {CONFIG SET dir /tmp}
        {CONFIG SET list-max-listpack-size 4 dbfilename x.rdb}
        {DEBUG SLEEP 0}
        {SHUTDOWN NOSAVE}
        {REPLICAOF 127.0.0.1 1}
        {SLAVEOF 127.0.0.1 1}
    } {
        test "Refused command: $cmd" {
            set c [new_client]
            set err {}
            catch {$c {*}$cmd} err
            assert {[regexp -nocase {not supported|unsupported|not allowed} $err]} \
                "an error that says '$cmd' is not supported, got '$err'"
            # The same connection keeps working, and nothing happened.
            assert_equal PONG [$c ping]
            $c set after-refused ok
            close_client $c
            r get after-refused
        } {ok}
    }

    test {Refused commands leave the backend as it was} {
        # Still a master with no memory limit, and running.
        set be [redis 127.0.0.1 [srv redis_port]]
        set maxmem [lindex [$be config get maxmemory] 1]
        set role [lindex [$be role] 0]
        $be close
        list $maxmem $role
    } {0 master}
}
