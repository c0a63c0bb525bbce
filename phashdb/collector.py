"""Python's cycle collector paused while a bulk write makes millions of objects that hold no
cycles (pairs, parameter lists, Thrift cells): each pass of the collector that their
allocation sets off walks every live object again, the growing batch included."""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def paused():
    """The collector off inside; back on at the end if it was on (left alone if it was off
    already, as by an outer use), which then looks at what was made once."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
