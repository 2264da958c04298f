"""Gunicorn's threaded worker, answering back-to-back calls on the thread
that answered the previous one.

With the stock gthread worker every call on a kept-alive connection crosses
two threads: the worker thread hands the connection back to the main thread's
poller, which hands it to a pool thread again when the next request arrives.
On a small virtual machine those two wake-ups cost 0.15 to 0.2 ms, often more
than the route itself. Here a thread that has just answered watches its
connection for a short while (LINGER) and serves the next request itself.

It only lingers while another pool thread is idle, so a new connection is
never kept waiting for a thread that is merely watching; past LINGER the
connection goes back to the poller as before, and idle clients cost no thread.
"""

import select
import threading

from gunicorn.workers.gthread import ThreadWorker

# Long enough for a program or a page sending its next call at once, short
# enough that a thread watching a quiet connection is soon free again.
LINGER = 0.002


class KeepAliveWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = 0
        self.busy_lock = threading.Lock()

    def handle(self, conn):
        with self.busy_lock:
            self.busy += 1
        try:
            kept_alive = super().handle(conn)
            while kept_alive is True and self.next_request_comes(conn):
                kept_alive = super().handle(conn)
            return kept_alive
        finally:
            with self.busy_lock:
                self.busy -= 1

    def next_request_comes(self, conn):
        """Whether the connection became readable within LINGER, watched only
        while the worker runs and another thread is free for other clients."""
        if not self.alive or conn.is_http2 or self.busy >= self.cfg.threads:
            return False
        if conn.parser.unreader.buf.getvalue():
            return True  # already read ahead with the previous request
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        return bool(poller.poll(LINGER * 1000))
