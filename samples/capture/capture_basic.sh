#!/bin/bash
# Variants 1-3: default `trace` file, noirq-info, record-tgid, record-tgid+noirq-info.
. "$(dirname "$0")/common.sh"
ensure_tracefs
tt_restore

BASIC_EVENTS="sched:sched_switch sched:sched_wakeup sched:sched_wakeup_new sched:sched_process_exit
irq:irq_handler_entry irq:irq_handler_exit block:block_rq_issue block:block_rq_complete
timer:timer_start timer:timer_expire_entry timer:timer_expire_exit timer:timer_cancel
timer:hrtimer_start timer:hrtimer_expire_entry timer:hrtimer_expire_exit"

# run_capture NAME [trace_options...]
run_capture() {
    local name=$1; shift
    tt_restore
    for o in "$@"; do echo "$o" > $T/trace_options; done
    for e in $BASIC_EVENTS; do echo "$e" >> $T/set_event; done
    echo > $T/trace
    echo 1 > $T/tracing_on
    workload 16
    echo 0 > $T/tracing_on
    cat $T/trace > $RAW/$name.trace.txt
}

run_capture x86-default                          # irq-info (default)
run_capture x86-noirq-info        noirq-info
run_capture x86-record-tgid       record-tgid
run_capture x86-record-tgid-noirq record-tgid noirq-info
tt_restore

# Trim: header + a slice of the start + windows around interesting events.
for n in x86-default x86-noirq-info x86-record-tgid x86-record-tgid-noirq; do
    trim $RAW/$n.trace.txt $FT_OUT/$n.trace.txt --first 40 --last 10 \
        --around 'sched_wakeup:' --around 'block_rq_issue:' --around 'block_rq_complete:' \
        --around 'irq_handler_entry:' --around 'timer_expire_entry:' --around 'hrtimer_expire_entry:' \
        --around 'sched_process_exit:' --around '\(-------\)' --around 'sched_wakeup_new:' \
        --before 3 --after 4 --count 1
done
