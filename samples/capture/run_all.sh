#!/bin/bash
# Run every capture recipe in order, then restore tracefs and list the results.
# Must run as root. Untrimmed captures go to $RAW (default /tmp/tt-raw).
set -e
cd "$(dirname "$0")"
./capture_basic.sh
./capture_clocks.sh
./capture_pipe.sh
./capture_stack.sh
./capture_overflow.sh
./capture_misc.sh
./capture_uprobe.sh
./capture_tracecmd.sh
./restore.sh
ls -l ../ftrace ../trace-cmd
