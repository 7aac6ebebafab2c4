# A TCP relay that stands for a redis-server which dies on one command:
#   tclsh tests/tools/dropping_proxy.tcl <listen-port> <redis-port> <marker>
# It relays every connection to the real redis-server on loopback, and closes both sides
# of one the moment the client sends bytes that contain <marker>, as the connection of a
# Redis that exits while executing them would close. The real Redis never sees those
# bytes, so what it holds is what it held before (as a Redis restarted from the same state).
lassign $argv listen upstream marker

proc accept {c addr port} {
    if {[catch {socket 127.0.0.1 $::upstream} u]} {
        close $c
        return
    }
    foreach s [list $c $u] {fconfigure $s -translation binary -blocking 0 -buffering none}
    fileevent $c readable [list pump $c $u 1]
    fileevent $u readable [list pump $u $c 0]
}

proc pump {from to check} {
    if {[catch {read $from} data] || [eof $from] ||
        ($check && [string first $::marker $data] >= 0)} {
        catch {close $from}
        catch {close $to}
        return
    }
    if {[catch {puts -nonewline $to $data}]} {
        catch {close $from}
        catch {close $to}
    }
}

socket -server accept -myaddr 127.0.0.1 $listen
vwait forever
