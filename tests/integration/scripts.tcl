# Scripts and functions leave every replica identical whatever they call (docs/scripts.md):
# the clock, chance and relative expiries inside EVAL, EVALSHA and FCALL come from the log
# entry, through the leader and through followers; EVALSHA works with the client's sha through
# any node; what cannot be made identical is refused with the same error everywhere. Every test
# ends comparing the three backends key by key.

start_cluster 3 {} {
    set leader [wait_for_leader]
    set f1 [expr {$leader % 3 + 1}]
    set f2 [expr {$f1 % 3 + 1}]
    set nodes [list $leader $f1 $f2]

    # Lua that calls every command whose result depends on the replica's clock or chance and
    # writes what it got; shared by the EVAL and the FCALL tests. k is the key prefix.
    set body {
        local k = KEYS[1]
        local t = redis.call('time')
        local t2 = redis.call('time')
        redis.call('set', k .. ':time', t[1] .. '.' .. t[2] .. '/' .. t2[1] .. '.' .. t2[2])
        redis.call('set', k .. ':rand', tostring(math.random()) .. ' ' .. math.random(100) .. ' ' .. math.random(5, 9))
        redis.call('del', k .. ':s', k .. ':h', k .. ':z')
        for i = 1, 40 do
            redis.call('sadd', k .. ':s', 'm' .. i)
            redis.call('hset', k .. ':h', 'f' .. i, 'v' .. i)
            redis.call('zadd', k .. ':z', i, 'z' .. i)
        end
        local picks = {}
        picks[#picks + 1] = redis.call('srandmember', k .. ':s')
        for _, v in ipairs(redis.call('srandmember', k .. ':s', 3)) do picks[#picks + 1] = v end
        for _, v in ipairs(redis.call('srandmember', k .. ':s', -5)) do picks[#picks + 1] = v end
        for _, v in ipairs(redis.call('hrandfield', k .. ':h', -4, 'WITHVALUES')) do picks[#picks + 1] = v end
        for _, v in ipairs(redis.call('zrandmember', k .. ':z', 3, 'WITHSCORES')) do picks[#picks + 1] = v end
        picks[#picks + 1] = redis.call('hrandfield', k .. ':h')
        picks[#picks + 1] = redis.call('zrandmember', k .. ':z')
        picks[#picks + 1] = redis.call('spop', k .. ':s')
        for _, v in ipairs(redis.call('spop', k .. ':s', 4)) do picks[#picks + 1] = v end
        redis.call('rpush', k .. ':picks', unpack(picks))
        local m = redis.call('smembers', k .. ':s')
        redis.call('rpush', k .. ':members', unpack(m))
        redis.call('xadd', k .. ':x', '*', 'a', 1)
        redis.call('xadd', k .. ':x', 'MAXLEN', '~', 100, '*', 'a', 2)
        redis.call('set', k .. ':e1', 1) redis.call('expire', k .. ':e1', 1000)
        redis.call('set', k .. ':e2', 1) redis.call('pexpire', k .. ':e2', 1000000)
        redis.call('setex', k .. ':e3', 1000, 'x')
        redis.call('set', k .. ':e4', 'y', 'EX', 1000)
        redis.call('set', k .. ':e5', 'z') redis.call('getex', k .. ':e5', 'EX', 1000)
        redis.call('set', k .. ':ttl', redis.call('ttl', k .. ':e1') .. ' ' .. redis.call('pttl', k .. ':e2'))
        local e = redis.pcall('randomkey')
        redis.call('set', k .. ':randomkey', e.err)
        return {t[1], #picks}
    }

    test {EVAL calling the clock and chance leaves identical replicas (leader and followers)} {
        foreach i $nodes {
            set res [[node_client $i] eval $body 1 ev:$i]
            assert_equal 2 [llength $res]
            assert_range [lindex $res 0] [expr {[clock seconds] - 30}] [expr {[clock seconds] + 30}]
        }
        assert_replicas_identical
        # The values are what a script sees in Redis: TIME advances, picks are members.
        set c [node_client $leader]
        lassign [split [$c get ev:$leader:time] /] a b
        assert {$b > $a}
        assert_equal 30 [$c llen ev:$leader:picks]
        assert_equal 35 [$c llen ev:$leader:members]
        assert_equal [lsort [$c lrange ev:$leader:members 0 -1]] [$c lrange ev:$leader:members 0 -1]
        assert_match {ERR RANDOMKEY is not allowed*} [$c get ev:$leader:randomkey]
        assert_range [$c ttl ev:$leader:e4] 900 1000
        assert_equal 2 [$c xlen ev:$leader:x]
    }

    test {the same EVAL twice draws anew, and still identically} {
        set c [node_client $f1]
        $c eval $body 1 again
        set p1 [$c lrange again:picks 0 -1]
        $c del again:picks
        $c eval $body 1 again
        assert_not_equal $p1 [$c lrange again:picks 0 -1]
        assert_replicas_identical
    }

    test {a script may start with a parenthesis} {
        assert_equal 7 [[node_client $f2] eval {(function() redis.call('set', KEYS[1], 7) end)() return redis.call('get', KEYS[1])} 1 paren:k]
        assert_replicas_identical
    }

    test {RANDOMKEY in a script: the same clear error on every node} {
        foreach i $nodes {
            assert_error {*RANDOMKEY is not allowed in scripts*} {
                [node_client $i] eval {return redis.call('randomkey')} 0
            }
        }
        assert_replicas_identical
    }

    test {what cannot be made identical under RESP3 is refused too} {
        foreach i $nodes {
            assert_error {*SMEMBERS under RESP3 in a script is not supported*} {
                [node_client $i] eval {redis.setresp(3) return redis.call('smembers', 'x')} 0
            }
            assert_equal {} [[node_client $i] eval {redis.setresp(3) return redis.call('keys', 'nomatch:*')} 0]
        }
        assert_replicas_identical
    }

    test {SCRIPT LOAD answers sha1(body); EVALSHA and SCRIPT EXISTS work through every node} {
        set sha [[node_client $f1] script load $body]
        assert_equal [string length $sha] 40
        # Redis's own sha of the body: the same text through EVAL gives the same name.
        assert_equal $sha [[node_client $leader] eval {return redis.sha1hex(ARGV[1])} 0 $body]
        foreach i $nodes {
            wait_for_condition 50 100 {
                [lindex [[node_client $i] script exists $sha] 0] == 1
            } {
                fail "SCRIPT EXISTS on node $i"
            }
            [node_client $i] evalsha $sha 1 sha:$i
            [node_client $i] evalsha [string toupper $sha] 1 shaup:$i
        }
        assert_equal {1 0} [[node_client $f2] script exists $sha [string repeat 0 40]]
        assert_replicas_identical
    }

    test {EVALSHA error texts name the client's sha} {
        set sha [[node_client $leader] script load {return redis.call('nosuchcommand')}]
        foreach i $nodes {
            catch {[node_client $i] evalsha $sha 0} e
            assert_match "*script: $sha,*" $e
        }
        catch {[node_client $f1] eval {return redis.call('nosuchcommand')} 0} e
        assert_match "*script: $sha,*" $e
        assert_replicas_identical
    }

    test {EVALSHA of an unknown script and after SCRIPT FLUSH: NOSCRIPT} {
        assert_error {NOSCRIPT*} {[node_client $f1] evalsha [string repeat a 40] 0}
        set sha [[node_client $f2] script load {return 1}]
        assert_equal 1 [[node_client $leader] evalsha $sha 0]
        [node_client $f1] script flush
        foreach i $nodes {
            wait_for_condition 50 100 {
                [lindex [[node_client $i] script exists $sha] 0] == 0
            } {
                fail "SCRIPT EXISTS after SCRIPT FLUSH on node $i"
            }
            assert_error {NOSCRIPT*} {[node_client $i] evalsha $sha 0}
        }
        assert_replicas_identical
    }

    test {EVALSHA survives a restart of redraft while Redis keeps its data} {
        set sha [[node_client $leader] script load {return redis.call('incr', KEYS[1])}]
        assert_equal 1 [[node_client $f1] evalsha $sha 1 restart:ctr]
        restart_node $f2
        wait_for_leader
        # Generous: under a sanitizer build on a loaded machine a restart takes seconds.
        wait_for_condition 300 100 {
            ![catch {[node_client $f2] evalsha $sha 1 restart:ctr} v] && $v >= 2
        } {
            fail "EVALSHA after a restart of node $f2"
        }
        assert_equal 1 [lindex [[node_client $f2] script exists $sha] 0]
        assert_replicas_identical
    }

    test {EVALSHA survives a restart of Redis: the registry comes back with the data} {
        set sha [[node_client $f1] script load {return redis.call('incrby', KEYS[1], 10)}]
        assert_equal 10 [[node_client $leader] evalsha $sha 1 rr:ctr]
        restart_node_redis $f1
        wait_for_condition 300 100 {
            ![catch {[node_client $f1] evalsha $sha 1 rr:ctr} v] && $v >= 20
        } {
            fail "EVALSHA after a restart of node $f1's redis"
        }
        assert_equal 1 [lindex [[node_client $f1] script exists $sha] 0]
        assert_replicas_identical
    }

    test {EVAL_RO and EVALSHA_RO run the same bodies, served locally} {
        set sha [[node_client $leader] script load {return redis.call('get', KEYS[1])}]
        [node_client $leader] set ro:k hello
        foreach i $nodes {
            [node_client $i] client consistency linearizable
            assert_equal hello [[node_client $i] evalsha_ro $sha 1 ro:k]
            assert_equal hello [[node_client $i] eval_ro {return redis.call('get', KEYS[1])} 1 ro:k]
            assert_equal 2 [llength [[node_client $i] eval_ro {return redis.call('time')} 0]]
        }
        assert_replicas_identical
    }

    test {FUNCTION LOAD and FCALL calling the clock and chance leave identical replicas} {
        set lib "#!lua name=determ\nlocal function f(KEYS, ARGV) $body end\nredis.register_function('determ', f)\nredis.register_function{function_name='determ_ro', callback=function(keys, args) return {redis.call('time')\[1\], #args} end, flags={'no-writes'}}"
        assert_equal determ [[node_client $f1] function load $lib]
        foreach i $nodes {
            set res [[node_client $i] fcall determ 1 fn:$i]
            assert_equal 2 [llength $res]
            assert_equal 0 [lindex [[node_client $i] fcall_ro determ_ro 0] 1]
        }
        assert_replicas_identical
        # FUNCTION LIST WITHCODE shows the library as it was loaded.
        foreach i $nodes {
            set list [[node_client $i] function list withcode libraryname determ]
            set code [dict get [lindex $list 0] library_code]
            assert_equal $lib $code
        }
        # A dump restored (after a flush) round-trips, and still runs deterministically.
        set dump [[node_client $leader] function dump]
        [node_client $leader] function flush
        [node_client $f2] function restore $dump
        assert_equal $lib [dict get [lindex [[node_client $f1] function list withcode] 0] library_code]
        foreach i $nodes {[node_client $i] fcall determ 1 fr:$i}
        assert_replicas_identical
    }

    test {FUNCTION RESTORE of a library dumped from a Redis without redraft is refused} {
        # FUNCTION DUMP of "#!lua name=small ..." on a plain redis-server 7.0.15.
        set hex f5404623216c7561206e616d653d736d616c6c0a72656469732e72656769737465725f66756e6374696f6e282773272c2066756e6374696f6e28292072657475726e203120656e64290a005e5475a2a94eef22
        foreach i $nodes {
            assert_error {*FUNCTION RESTORE of library '#!lua name=small'*not supported*} {
                [node_client $i] function restore [binary format H* $hex]
            }
        }
        assert_equal {} [[node_client $f1] function list libraryname small]
        assert_replicas_identical
    }

    test {errors inside functions are the same on every node} {
        [node_client $leader] function load replace "#!lua name=errs\nredis.register_function('rk', function(k, a) return redis.call('randomkey') end)"
        foreach i $nodes {
            assert_error {*RANDOMKEY is not allowed in scripts*} {[node_client $i] fcall rk 0}
        }
        assert_replicas_identical
    }
}
