"""trace-cmd report text: preamble, -l, -t, --ts-diff, instances, dropped events."""

from __future__ import annotations

import polars as pl

import tracetool


def test_report_preamble_and_padding() -> None:
    text = (
        "version = 6\n"
        "CPU 1 is empty\n"
        "cpus=4\n"
        " qemu-system-s39-5082  [000] 512.104553: attach_device_to_domain: IOMMU: device=0004:00:00.0\n"
        "             fio-2211  [001] 620.000101: block_rq_issue:       259,0 R 4096 () 123456 + 8 none,0,0 [fio]\n"
    )
    trace = tracetool.parse_text(text)
    (info,) = trace.inputs
    assert info.format == "trace-cmd"
    assert info.counts == {"events": 2, "records": 0, "headers": 3, "losses": 0, "diagnostics": 0}
    assert (info.meta["version"], info.meta["cpus"]) == (6, 4)
    ev = trace.events.collect()
    assert ev["source"].to_list() == ["trace-cmd"] * 2
    assert ev["body"].to_list()[1] == "259,0 R 4096 () 123456 + 8 none,0,0 [fio]"
    assert ev["args"].struct.field("sector").to_list() == [None, 123456]


def test_latency_columns_nanoseconds_and_ts_diff() -> None:
    text = (
        "cpus=2\n"
        "    bash-13324   0d..2.  2990.647668: sched_switch:         bash:13324 [120] S ==> bash:13326 [120]\n"
        "            bash-13324 [000]  2990.647579663: sched_process_fork:   comm=bash pid=13324\n"
        "            bash-13324 [000]  2990.647580: (+180)   sched_wakeup:         kworker/1:1H:44 [100] CPU:001\n"
    )
    lat, ns, diff = tracetool.parse_text(text).events.collect().to_dicts()
    assert (lat["cpu"], lat["flags"], lat["event"]) == (0, "d..2.", "sched_switch")
    assert lat["args"]["next_pid"] == 13326 and lat["args"]["prev_state"] == "S"
    assert ns["ts"] == 2_990_647_579_663
    assert (diff["event"], diff["args"]["target_pid"], diff["args"]["target_cpu"]) == (
        "sched_wakeup",
        44,
        1,
    )


def test_instances_and_dropped_events() -> None:
    text = (
        "cpus=2\n"
        "CPU:0 [15975 EVENTS DROPPED]\n"
        "tt:            bash-4411  [001]  1406.000001: print:                tracing_mark_write: in tt\n"
        "            bash-4411  [001]  1406.000002: print:                tracing_mark_write: top\n"
        "CPU:1 [EVENTS DROPPED]\n"
        "            bash-4411  [001]  1406.000003: print:                tracing_mark_write: after\n"
    )
    trace = tracetool.parse_text(text)
    ev = trace.events.collect()
    assert ev["args"].struct.field("text").to_list() == ["in tt", "top", "after"]
    assert ev["args"].struct.field("ip").to_list() == ["tracing_mark_write"] * 3
    losses = trace.losses.collect().select("cpu", "lost", "start_ts", "end_ts").rows()
    assert losses == [(0, 15975, None, None), (1, None, 1_406_000_002_000, 1_406_000_003_000)]


def test_function_plugin_and_failed_to_parse() -> None:
    text = (
        "cpus=1\n"
        "            bash-1  [000]  1.000001: function:             s390_iommu_release_device <-- iommu_release_device\n"
        "     kworker/5:2-1497  [005]   454.414603: thermal_power_cpu_get_power: [FAILED TO PARSE] cpumask=ARRAY[0f, 00]\n"
    )
    fn, failed = tracetool.parse_text(text).events.collect().to_dicts()
    assert (fn["args"]["func"], fn["args"]["parent"]) == (
        "s390_iommu_release_device",
        "iommu_release_device",
    )
    assert failed["event"] == "thermal_power_cpu_get_power"
    assert failed["body"].startswith("[FAILED TO PARSE]")


def test_same_fields_whichever_way_the_trace_arrived() -> None:
    kernel = tracetool.parse_text(
        " qemu-system-s39-5082    [000] .....   512.104771: map: IOMMU: iova=0x0000000100000000 - "
        "0x0000000100200000 paddr=0x0000000c8a400000 size=2097152\n"
    )
    report = tracetool.parse_text(
        "cpus=1\n qemu-system-s39-5082  [000] 512.104771: map:                  IOMMU: iova=0x0000000100000000"
        " - 0x0000000100200000 paddr=0x0000000c8a400000 size=2097152\n"
    )
    cols = ["ts", "cpu", "pid", "comm", "event", "body", "args"]
    assert kernel.events.select(cols).collect().equals(report.events.select(cols).collect())
    assert report.events.select(pl.col("args").struct.field("size")).collect().item() == 2097152


def test_wakeup_latency_report_and_buffer_stats() -> None:
    text = (
        "cpus=2\n"
        "              dd-13762 [001]  3033.053435: sched_switch:         dd:13762 [120] D ==> kworker/1:1H:59 [100] Latency: 3.566 usecs\n"
        "\n"
        "Average wakeup latency: 144.835 usecs\n"
        "Maximum Latency: 6679.271 usecs at timestamp: 3033.167678\n"
        "RT task timings:\n"
        "Kernel buffer statistics:\n"
        "CPU: 0\n"
        "dropped events: 0\n"
        "CPU0 data recorded at offset=0x1000\n"
        "    24576 bytes in size\n"
    )
    trace = tracetool.parse_text(text)
    (info,) = trace.inputs
    assert info.counts == {"events": 1, "records": 0, "headers": 10, "losses": 0, "diagnostics": 0}
    args = trace.events.collect()["args"][0]
    assert (args["next_comm"], args["next_pid"], args["wakeup_latency"]) == (
        "kworker/1:1H",
        59,
        3566,
    )
    assert trace.diagnostics.collect().is_empty()
