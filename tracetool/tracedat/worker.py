"""A worker process of ``parallel``: ``python -m tracetool.tracedat.worker``.

Reads pickled ``(function name, arguments)`` tasks from stdin and writes each one's
pickled ``(ok, result or error text)`` to stdout, until stdin closes. Started as its own
program (not by ``multiprocessing``), so the caller's main module is never re-imported.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback


def serve() -> None:
    from tracetool.tracedat import parallel

    tasks, results = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            name, args = pickle.load(tasks)
        except EOFError:
            # Every reply is flushed and every part written and closed: skip the
            # interpreter's teardown (freeing the chunk buffers, polars' pools), which
            # the parent would otherwise wait for.
            results.flush()
            os._exit(0)
        try:
            reply: tuple[bool, object] = (True, getattr(parallel, name)(*args))
        except Exception:  # sent back to the parent, which raises it
            reply = (False, traceback.format_exc())
        pickle.dump(reply, results, protocol=pickle.HIGHEST_PROTOCOL)
        results.flush()


if __name__ == "__main__":
    serve()
