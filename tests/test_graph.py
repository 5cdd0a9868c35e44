"""function_graph text: entries, leaves, returns, marks, columns, switches, calls()."""

from __future__ import annotations

import polars as pl

import tracetool
from tracetool.graph import calls

DEFAULT = """\
# tracer: function_graph
#
# CPU  DURATION                  FUNCTION CALLS
# |     |   |                     |   |   |   |
  2)               |  s390_iommu_attach_device() {
  2)               |    zpci_dma_exit_device() {
  2)   8.123 us    |      zpci_unregister_ioat();
  2) + 30.876 us   |      dma_cleanup_tables();
  2) + 41.231 us   |    }
  2)               |    /* zpci: exit dma */
  2) + 63.512 us   |  }
 ------------------------------------------
  3)   kmcheck-41   =>  qemu-sy-5082
 ------------------------------------------

  3) # 1234.567 us |  } /* s390_iommu_release_device */
 11) $ 1204319 us  |  zpci_refresh_trans();
 11)   ==========> |
 11)   3.012 us    |  nvme_irq();
 11)   <========== |
"""


def graph_args(trace: tracetool.Trace) -> list[tuple[object, ...]]:
    a = pl.col("args")
    return (
        trace.events.select(
            "line",
            "cpu",
            "comm",
            "pid",
            "event",
            a.struct.field("func"),
            a.struct.field("depth"),
            a.struct.field("dur"),
        )
        .collect()
        .rows()
    )


def test_default_columns() -> None:
    trace = tracetool.parse_text(DEFAULT)
    (info,) = trace.inputs
    assert info.format == "function-graph"
    assert info.counts == {"events": 13, "records": 0, "headers": 7, "losses": 0, "diagnostics": 0}
    assert trace.diagnostics.collect().is_empty()
    assert graph_args(trace) == [
        (5, 2, None, None, "funcgraph_entry", "s390_iommu_attach_device", 0, None),
        (6, 2, None, None, "funcgraph_entry", "zpci_dma_exit_device", 1, None),
        (7, 2, None, None, "funcgraph_entry", "zpci_unregister_ioat", 2, 8123),
        (8, 2, None, None, "funcgraph_entry", "dma_cleanup_tables", 2, 30876),
        (9, 2, None, None, "funcgraph_exit", None, 1, 41231),
        (10, 2, None, None, "funcgraph_comment", None, None, None),
        (11, 2, None, None, "funcgraph_exit", None, 0, 63512),
        (13, 3, "kmcheck", 41, "funcgraph_switch", None, None, None),
        (16, 3, "qemu-sy", 5082, "funcgraph_exit", "s390_iommu_release_device", 0, 1234567),
        (17, 11, None, None, "funcgraph_entry", "zpci_refresh_trans", 0, 1204319000),
        (18, 11, None, None, "funcgraph_irq_entry", None, None, None),
        (19, 11, None, None, "funcgraph_entry", "nvme_irq", 0, 3012),
        (20, 11, None, None, "funcgraph_irq_exit", None, None, None),
    ]
    switch = trace.events.filter(pl.col("event") == "funcgraph_switch").collect()["args"][0]
    assert (switch["prev_comm"], switch["prev_pid"], switch["next_comm"], switch["next_pid"]) == (
        "kmcheck",
        41,
        "qemu-sy",
        5082,
    )
    comment = trace.events.filter(pl.col("event") == "funcgraph_comment").collect()["args"][0]
    assert comment["text"] == "zpci: exit dma"


def test_abstime_proc_and_calls() -> None:
    text = (
        "# tracer: function_graph\n"
        "  531.000020 |   0)  qemu-sy-5082  |               |  s390_iommu_attach_device() {\n"
        "  531.000023 |   0)  qemu-sy-5082  |   8.123 us    |    zpci_unregister_ioat();\n"
        "  531.000084 |   0)  qemu-sy-5082  | + 64.412 us   |  }\n"
        "  531.000090 |   1)    fio-2211    |               |  zpci_refresh_trans() {\n"
    )
    trace = tracetool.parse_text(text)
    assert trace.diagnostics.collect().is_empty()
    got = (
        calls(trace.events)
        .select("cpu", "pid", "comm", "func", "depth", "start_ts", "end_ts", "dur")
        .collect()
        .rows()
    )
    assert got == [
        (
            0,
            5082,
            "qemu-sy",
            "s390_iommu_attach_device",
            0,
            531_000_020_000,
            531_000_084_000,
            64412,
        ),
        (0, 5082, "qemu-sy", "zpci_unregister_ioat", 1, 531_000_023_000, 531_000_031_123, 8123),
        (1, 2211, "fio", "zpci_refresh_trans", 0, 531_000_090_000, None, None),
    ]


def test_retval() -> None:
    text = (
        "# tracer: function_graph\n"
        "  2)   0.904 us    |    zpci_init_iommu(); /* ret=0x0 */\n"
        "  2)   2.204 us    |  } /* s390_iommu_probe_device ret=-19 */\n"
    )
    a = pl.col("args")
    rows = tracetool.parse_text(text).events.select(a.struct.field("func", "ret")).collect().rows()
    assert rows == [("zpci_init_iommu", 0), ("s390_iommu_probe_device", -19)]


def test_trace_cmd_funcgraph_events_share_the_fields() -> None:
    text = (
        "cpus=1\n"
        "     qemu-5082  [000]   512.104420: funcgraph_entry:                   |  s390_iommu_attach_device() {\n"
        "     qemu-5082  [000]   512.104421: funcgraph_entry:        0.764 us   |    mutex_unlock();\n"
        "     qemu-5082  [000]   512.104484: funcgraph_exit:       + 63.512 us  |  }\n"
    )
    trace = tracetool.parse_text(text)
    assert trace.inputs[0].format == "trace-cmd"
    assert trace.diagnostics.collect().is_empty()
    got = calls(trace.events).select("func", "depth", "dur").collect().rows()
    assert got == [("s390_iommu_attach_device", 0, 63512), ("mutex_unlock", 1, 764)]
