#!/bin/bash
# Variant 5: trace_pipe capture (no header) with trace_marker writes.
. "$(dirname "$0")/common.sh"
ensure_tracefs
tt_restore
for e in sched:sched_switch sched:sched_wakeup block:block_rq_issue block:block_rq_complete; do
    echo $e >> $T/set_event
done
echo > $T/trace
echo 1 > $T/tracing_on
echo "tt: workload start" > $T/trace_marker
workload 4
echo "tt marker: hello world, key=value with spaces" > $T/trace_marker
printf 'tt: no trailing newline' > $T/trace_marker
echo "tt: end: done" > $T/trace_marker
sleep 0.1
echo 0 > $T/tracing_on
# Read (consume) the buffer after tracing stopped: a live reader would trace its
# own wakeups (feedback loop). trace_pipe blocks when empty, hence the timeout.
timeout 1 cat $T/trace_pipe > $RAW/x86-markers.trace_pipe.txt
tt_restore
trim $RAW/x86-markers.trace_pipe.txt $FT_OUT/x86-markers.trace_pipe.txt --first 20 \
    --around 'tracing_mark_write' --around 'block_rq_issue' --around 'block_rq_complete' --count 4 --before 3 --after 3
