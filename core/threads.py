"""The product's threads: a stage run in the background, and torch's OpenMP threads beside them."""
import os
import queue
import sys
import threading


def let_idle_torch_threads_sleep() -> bool:
    """Make OpenMP's idle threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE), unless the user
    chose a policy. OpenMP reads it once, when torch is first imported: True when it applies.

    A render runs decode, blend, the encoder and the generator at once; torch's threads spinning
    between two operators took the cores the other stages needed (bench_render, 720p25, width 0.5,
    2 cores: 31.2 -> 35.9 frames/s). A trainer runs torch alone, where spinning pays (the generator
    alone ran 18 % faster with it): training commands keep OpenMP's default."""
    if "torch" in sys.modules:
        return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE"


def in_background(iterator, maxsize: int, stop: threading.Event):
    """Run `iterator` in a thread, handing its items over through a bounded queue. Set `stop` when
    the consumer gives up: the thread then stops and closes the iterator itself (a generator cannot
    be closed from another thread while it runs)."""
    items: queue.Queue = queue.Queue(maxsize)
    done = object()

    def pump():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(exc)
        finally:
            if hasattr(iterator, "close"):
                iterator.close()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    while True:
        item = items.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item
