#!/bin/bash
# Variant 11: trace-cmd report outputs.
# `trace-cmd record` fails on this machine ("Can't enable ftrace", the function
# tracer is not permitted), so events are enabled through tracefs directly and
# the ring buffer is then pulled with `trace-cmd extract` (which reads
# per_cpu/cpuN/trace_pipe_raw). Note: extract resets the event/tracing state
# itself afterwards.
. "$(dirname "$0")/common.sh"
ensure_tracefs
command -v trace-cmd > /dev/null || { echo "apt-get install -y trace-cmd" >&2; exit 1; }
trace-cmd --version 2>&1 | grep version > $RAW/trace-cmd-version.txt

TC_EVENTS="sched:sched_switch sched:sched_wakeup irq:irq_handler_entry irq:irq_handler_exit
block:block_rq_issue block:block_rq_complete timer:timer_start timer:timer_expire_entry
timer:timer_expire_exit timer:hrtimer_start timer:hrtimer_expire_entry timer:hrtimer_expire_exit"

enable_events() { for e in $TC_EVENTS; do echo $e >> ${1:-$T}/set_event; done; }

# A) plain capture of the top-level buffer
tt_restore
enable_events
echo 1 > $T/tracing_on
echo "tt: trace-cmd sample" > $T/trace_marker
workload 8
echo 0 > $T/tracing_on
trace-cmd extract -o $RAW/tc-main.dat > $RAW/tc-main.extract.log 2>&1
trace-cmd report -i $RAW/tc-main.dat           > $RAW/x86-default.report.txt 2>&1
trace-cmd report -i $RAW/tc-main.dat -l        > $RAW/x86-latency.report.txt 2>&1
trace-cmd report -i $RAW/tc-main.dat -t        > $RAW/x86-nsec.report.txt 2>&1
trace-cmd report -i $RAW/tc-main.dat --ts-diff > $RAW/x86-ts-diff.report.txt 2>&1

# B) only CPU 0 traced (tracing_cpumask=1): CPU 1 has no data
tt_restore
echo 1 > $T/tracing_cpumask
enable_events
echo 1 > $T/tracing_on
( taskset -cp 0 $BASHPID > /dev/null; workload 2 )
echo 0 > $T/tracing_on
trace-cmd extract -o $RAW/tc-cpu0.dat > $RAW/tc-cpu0.extract.log 2>&1
trace-cmd report -i $RAW/tc-cpu0.dat > $RAW/x86-cpumask-cpu0.report.txt 2>&1

# C) top-level buffer + instance "tt" in one file (extract -t -B tt)
tt_restore
mkdir $T/instances/tt
I=$T/instances/tt
echo sched:sched_switch >> $T/set_event
echo sched:sched_wakeup >> $T/set_event
echo block:block_rq_issue >> $I/set_event
echo block:block_rq_complete >> $I/set_event
echo 1 > $T/tracing_on; echo 1 > $I/tracing_on
echo "tt: top-level marker" > $T/trace_marker
echo "tt: instance marker" > $I/trace_marker
workload 4
echo 0 > $T/tracing_on; echo 0 > $I/tracing_on
trace-cmd extract -t -B tt -o $RAW/tc-instance.dat > $RAW/tc-instance.extract.log 2>&1
trace-cmd report -i $RAW/tc-instance.dat > $RAW/x86-instance.report.txt 2>&1

# D) overflowed buffer: tiny per-CPU buffer, burst of events -> dropped events
tt_restore
echo 8 > $T/buffer_size_kb
enable_events
echo 1 > $T/tracing_on
workload 8
taskset -c 0 python3 -c "import time; [time.sleep(0.0001) for _ in range(2000)]" &
taskset -c 1 python3 -c "import time; [time.sleep(0.0001) for _ in range(2000)]" &
wait
echo 0 > $T/tracing_on
trace-cmd extract -o $RAW/tc-dropped.dat > $RAW/tc-dropped.extract.log 2>&1
trace-cmd report -i $RAW/tc-dropped.dat > $RAW/x86-dropped.report.txt 2>&1
tt_restore

PRE='(cpus=|version = |CPU [0-9]+ is empty|trace-cmd: |  [a-z]+ )'
for n in x86-default x86-latency x86-nsec x86-ts-diff; do
    trim $RAW/$n.report.txt $TC_OUT/$n.report.txt --header-re "$PRE" --first 50 \
        --around 'tracing_mark_write' --around 'block_rq_issue' --around 'irq_handler_entry' \
        --before 2 --after 3
done
trim $RAW/x86-cpumask-cpu0.report.txt $TC_OUT/x86-cpumask-cpu0.report.txt --header-re "$PRE" --first 40
trim $RAW/x86-instance.report.txt $TC_OUT/x86-instance.report.txt --header-re "$PRE" --first 30 \
    --around 'tt: .*block_rq_issue' --around 'marker' --count 2 --before 3 --after 3
trim $RAW/x86-dropped.report.txt $TC_OUT/x86-dropped.report.txt --header-re "$PRE" --first 10 \
    --around 'EVENTS DROPPED' --count 4 --before 12 --after 12
