#!/bin/bash
# Variant 6: stacktrace / userstacktrace / sym-offset+sym-addr (+sym-userobj).
. "$(dirname "$0")/common.sh"
ensure_tracefs

STK_EVENTS="block:block_rq_issue block:block_rq_complete sched:sched_process_exec sched:sched_process_exit"
USTACK=/tmp/tt_ustack
gcc -O0 -fno-omit-frame-pointer -o $USTACK "$HERE/ustack_demo.c"

run_stack() {
    local name=$1; shift
    tt_restore
    for e in $STK_EVENTS; do echo $e >> $T/set_event; done
    for o in "$@"; do echo "$o" > $T/trace_options; done
    echo > $T/trace
    echo 1 > $T/tracing_on
    echo "tt: stack sample $name" > $T/trace_marker
    workload 2
    echo 0 > $T/tracing_on
    cat $T/trace > $RAW/$name.trace.txt
}

# user stacks of a frame-pointer program: syscalls:sys_enter_getppid fired
# from nested functions; the trace is read while the program is still alive
# (sym-userobj needs the task's mm to resolve addresses).
run_ustack() {
    local name=$1; shift
    tt_restore
    echo syscalls:sys_enter_getppid >> $T/set_event
    echo sched:sched_process_exec >> $T/set_event
    for o in "$@"; do echo "$o" > $T/trace_options; done
    echo > $T/trace
    echo 1 > $T/tracing_on
    $USTACK 2 &
    local pid=$!
    sleep 1
    echo 0 > $T/tracing_on
    cat $T/trace > $RAW/$name.trace.txt
    wait $pid
}

run_stack x86-stacktrace             stacktrace
run_stack x86-stacktrace-sym         stacktrace sym-offset sym-addr
run_stack x86-userstacktrace         userstacktrace
run_ustack x86-userstacktrace-fp     userstacktrace
run_ustack x86-userstacktrace-userobj userstacktrace sym-userobj
tt_restore

for n in x86-stacktrace x86-stacktrace-sym; do
    trim $RAW/$n.trace.txt $FT_OUT/$n.trace.txt --first 110 \
        --around 'block_rq_complete:' --around 'sched_process_exec:' --around '=> handle_softirqs' --before 0 --after 16
done
trim $RAW/x86-userstacktrace.trace.txt $FT_OUT/x86-userstacktrace.trace.txt --first 50
for n in x86-userstacktrace-fp x86-userstacktrace-userobj; do
    trim $RAW/$n.trace.txt $FT_OUT/$n.trace.txt --first 80
done
