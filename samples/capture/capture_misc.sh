#!/bin/bash
# Variants 8 and 9: lock contention + syscall events, instance buffer, per-CPU file.
. "$(dirname "$0")/common.sh"
ensure_tracefs

# 8a) lock:contention_begin/end (parallel I/O + sleeps on both CPUs)
tt_restore
echo lock:contention_begin >> $T/set_event
echo lock:contention_end >> $T/set_event
echo sched:sched_switch >> $T/set_event
echo 1 > $T/tracing_on
taskset -c 0 dd if=/dev/urandom of=$SCRATCH/l0.bin bs=64k count=64 conv=fsync status=none &
taskset -c 1 dd if=/dev/urandom of=$SCRATCH/l1.bin bs=64k count=64 conv=fsync status=none &
taskset -c 0 python3 -c "import time; [time.sleep(0.0002) for _ in range(300)]" &
taskset -c 1 python3 -c "import time; [time.sleep(0.0002) for _ in range(300)]" &
wait
echo 0 > $T/tracing_on
cat $T/trace > $RAW/x86-lock-contention.trace.txt

# 8b) syscalls: openat/close/fsync/write enter+exit
tt_restore
for e in sys_enter_openat sys_exit_openat sys_enter_close sys_exit_close sys_enter_fsync \
         sys_exit_fsync sys_enter_write sys_exit_write; do
    echo syscalls:$e >> $T/set_event
done
# only the workload's processes (filter on comm)
for e in $T/events/syscalls/sys_{enter,exit}_{openat,close,fsync,write}; do
    echo 'comm == "dd" || comm == "cat"' > $e/filter
done
echo 1 > $T/tracing_on
workload 2
echo 0 > $T/tracing_on
cat $T/trace > $RAW/x86-syscalls.trace.txt
for e in $T/events/syscalls/sys_{enter,exit}_{openat,close,fsync,write}; do echo 0 > $e/filter; done

# 9a) instance buffer "tt" (top-level buffer stays off)
tt_restore
mkdir $T/instances/tt
I=$T/instances/tt
echo 0 > $I/tracing_on
for e in sched:sched_switch sched:sched_wakeup block:block_rq_issue block:block_rq_complete; do
    echo $e >> $I/set_event
done
echo > $I/trace
echo 1 > $I/tracing_on
echo "tt: instance marker" > $I/trace_marker
workload 4
echo 0 > $I/tracing_on
cat $I/trace > $RAW/x86-instance-tt.trace.txt
echo 0 > $I/events/enable
rmdir $I

# 9b) per-CPU file of the top-level buffer
tt_restore
for e in sched:sched_switch sched:sched_wakeup irq:irq_handler_entry irq:irq_handler_exit \
         block:block_rq_issue block:block_rq_complete; do
    echo $e >> $T/set_event
done
echo 1 > $T/tracing_on
( taskset -cp 0 $BASHPID > /dev/null; workload 4 )   # run the workload on CPU 0
echo 0 > $T/tracing_on
cat $T/per_cpu/cpu0/trace > $RAW/x86-percpu-cpu0.trace.txt
tt_restore

trim $RAW/x86-lock-contention.trace.txt $FT_OUT/x86-lock-contention.trace.txt --first 10 \
    --around 'contention_begin' --before 2 --after 3 --count 10
trim $RAW/x86-syscalls.trace.txt $FT_OUT/x86-syscalls.trace.txt --first 40 \
    --around 'sys_fsync' --before 4 --after 4 --count 2
trim $RAW/x86-instance-tt.trace.txt $FT_OUT/x86-instance-tt.trace.txt --first 30 \
    --around 'block_rq_issue' --around 'block_rq_complete' --before 3 --after 3 --count 2
trim $RAW/x86-percpu-cpu0.trace.txt $FT_OUT/x86-percpu-cpu0.trace.txt --first 30 \
    --around 'block_rq_issue' --around 'irq_handler_entry' --before 3 --after 3 --count 2
