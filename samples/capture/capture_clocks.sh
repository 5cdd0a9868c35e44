#!/bin/bash
# Variant 4: one short `trace` capture per trace_clock.
. "$(dirname "$0")/common.sh"
ensure_tracefs
for clk in global mono boot counter x86-tsc uptime tai; do
    tt_restore
    echo $clk > $T/trace_clock          # changing the clock also resets the buffer
    echo sched:sched_switch >> $T/set_event
    echo sched:sched_wakeup >> $T/set_event
    echo 1 > $T/tracing_on
    sleep 0.02; echo "tt clock=$clk" > $T/trace_marker; sleep 0.02
    echo 0 > $T/tracing_on
    cat $T/trace > $RAW/x86-clock-$clk.trace.txt
    trim $RAW/x86-clock-$clk.trace.txt $FT_OUT/x86-clock-$clk.trace.txt --first 20 \
        --around 'tracing_mark_write' --before 2 --after 2
done
tt_restore
