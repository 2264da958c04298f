"""Sentinel's log lines, live: pgwatch's `GET /log` WebSocket.

Every Sentinel process (gunicorn's master and workers, RQ workers, the CLI)
PUBLISHes the lines it logs on one Redis channel, while anyone listens; a
stream SUBSCRIBEs to it and sends each line to its client as a text frame.

No stream slows the service or another stream: a thread of its own reads the
channel into a bounded queue, and a line that finds it full is dropped (the
client is told how many, among the next lines it gets); lines wait there while
the client's socket takes no more, so a client that stops reading holds its
stream's thread, nothing else, until the pings it no longer answers close it.
Each stream holds one of its process's few gunicorn threads: a process serves
at most STREAMS_PER_PROCESS at once and refuses more, and a worker asked to
stop closes them at once instead of waiting out its graceful timeout.
"""

import logging
import queue
import selectors
import signal
import socket
import threading
import time

import simple_websocket
from flask import Response, current_app, g, request
from redis import Redis, RedisError
from redis.backoff import NoBackoff
from redis.retry import Retry
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import ProtocolError

from .. import logs
from ..auth.access import token_required
from ..contract import STRING, describe
from ..errors import Invalid, NotReady

logger = logging.getLogger(__name__)

EXTENSION = "sentinel.log_streams"

# gunicorn runs 4 threads a process: two streams leave two for everything else.
STREAMS_PER_PROCESS = 2
# Lines a stream keeps for a client that reads slower than they come.
QUEUE_LINES = 1000
# Bytes the kernel keeps for a client that does not read (on top of the queue).
SEND_BUFFER = 64 * 1024
# A ping every so often; a client that has not answered one by the next is gone.
PING_INTERVAL = 15
# How often a stream looks whether its worker stops, Redis went or its client left.
TICK = 0.5
# Seconds a closing stream waits for its client's answering close frame.
CLOSE_WAIT = 1.0
# Seconds a stream waits for its reader thread once the connection is shut
# down (a moment: anything it waited on fails at once).
READER_EXIT_WAIT = 10.0
# What a client sends is read and dropped; a message longer than this closes it.
MAX_MESSAGE = 4096
RETRY_AFTER = 10

# The publisher asks Redis whether anyone listens at most this often, and
# waits this long before trying a Redis that failed again.
LOOK_EVERY = 1.0
LOOK_AGAIN_AFTER_FAILURE = 10.0
PUBLISH_TIMEOUT = 0.25


def channel_of(connection):
    """The channel of the log lines. Redis's channels are shared by all its
    databases: the database number keeps two Sentinels on one Redis apart."""
    return f"sentinel:log:{connection.connection_pool.connection_kwargs.get('db', 0)}"


def short_lived_redis(url, timeout):
    """A Redis client that fails at once, never retrying, within `timeout` s."""
    return Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


class Publisher(logging.Handler):
    """PUBLISHes each line this process logs on the log channel, while a
    stream listens.

    The line's caller never waits long: whether anyone listens is asked at
    most once a second (only once every 10 s while Redis fails), every call
    gives up after PUBLISH_TIMEOUT, and a failure is dropped in silence:
    logging it would come back here."""

    def __init__(self, redis_url):
        super().__init__()
        self.name = __name__
        self.redis = short_lived_redis(redis_url, PUBLISH_TIMEOUT)
        self.channel = channel_of(self.redis)
        self.listened = False
        self.next_look = 0.0
        self.publishing = threading.local()

    def emit(self, record):
        # The Redis client may log while it publishes: that line stays out.
        if getattr(self.publishing, "active", False):
            return
        self.publishing.active = True
        try:
            if self.anyone_listens():
                self.redis.publish(self.channel, self.format(record))
        except Exception:
            self.listened = False
            self.next_look = time.monotonic() + LOOK_AGAIN_AFTER_FAILURE
        finally:
            self.publishing.active = False

    def anyone_listens(self):
        now = time.monotonic()
        if now >= self.next_look:
            self.next_look = now + LOOK_EVERY
            [(_, listeners)] = self.redis.pubsub_numsub(self.channel)
            self.listened = listeners > 0
        return self.listened

    def handleError(self, record):
        pass  # emit() keeps its failures to itself

    def close(self):
        self.redis.close()
        super().close()


class Streams:
    """A process's log streams: how many more it may open, and what they need."""

    def __init__(self, redis_url, log_format):
        self.redis_url = redis_url
        self.formatter = logs.formatter(log_format)
        self.slots = threading.BoundedSemaphore(STREAMS_PER_PROCESS)

    def dropped_notice(self, count):
        """The line that tells a client how many lines it missed."""
        record = logging.makeLogRecord(
            {
                "name": __name__,
                "levelno": logging.WARNING,
                "levelname": "WARNING",
                "msg": "event=log_lines_dropped count=%s reason=client_not_reading",
                "args": (count,),
            }
        )
        return self.formatter.format(record)


class TooManyStreams(NotReady):
    """This process already serves as many streams as it may."""

    def __init__(self):
        super().__init__(
            f"This Sentinel process already streams its log to {STREAMS_PER_PROCESS} clients,"
            " as many as it may: close one, or retry later."
        )

    @property
    def headers(self):
        return {"Retry-After": str(RETRY_AFTER)}


class Subscription:
    """The log channel, read by a thread of its own into a bounded queue; a
    line that finds the queue full is dropped and counted. `lost` is the
    Redis error that ended it, if one did."""

    def __init__(self, redis_url):
        self.lines = queue.Queue(QUEUE_LINES)
        self.dropped = 0
        self.counting = threading.Lock()
        self.lost = None
        self.redis = short_lived_redis(redis_url, 5)
        self.pubsub = self.redis.pubsub()
        try:
            self.pubsub.subscribe(**{channel_of(self.redis): self.received})
            # Subscribed once Redis says so: a line logged from now on comes.
            if self.pubsub.get_message(timeout=5) is None:
                raise RedisError("no answer to SUBSCRIBE")
        except RedisError as exc:
            self.close()
            logger.warning("event=log_stream_refused reason=redis_unavailable error=%s", exc)
            raise NotReady(f"Redis is unavailable, and the log travels through it: {exc}") from exc
        self.reader = self.pubsub.run_in_thread(
            sleep_time=TICK, daemon=True, exception_handler=self.failed
        )

    def received(self, message):
        try:
            self.lines.put_nowait(message["data"].decode(errors="replace"))
        except queue.Full:
            with self.counting:
                self.dropped += 1

    def failed(self, exc, pubsub, reader):
        self.lost = exc
        reader.stop()

    def next_lines(self, timeout):
        """(how many lines were dropped since the last call, the next line),
        or queue.Empty after `timeout` s without one."""
        line = self.lines.get(timeout=timeout)
        with self.counting:
            dropped, self.dropped = self.dropped, 0
        return dropped, line

    def close(self):
        reader = getattr(self, "reader", None)
        if reader is not None:
            reader.stop()  # it closes the subscription on its way out
            reader.join(2 * TICK)
        else:
            self.pubsub.close()
        self.redis.close()


class LentSocket:
    """The client's socket, lent to the WebSocket for the stream: it reads
    and writes through it, but only gunicorn closes it, once, when the
    request is over (a socket closed under it would be counted closed twice).

    Its reader thread reads while the stream's thread writes: over TLS, both
    would use one OpenSSL connection, which two threads may not use at once.
    The reader only reads what has arrived, and the stream only writes what
    the socket takes, so neither waits long for the other."""

    def __init__(self, sock):
        self.sock = sock
        self.in_use = threading.Lock()

    def fileno(self):
        return self.sock.fileno()

    def send(self, data):
        with self.in_use:
            return self.sock.send(data)

    def recv(self, size):
        with self.in_use:
            return self.sock.recv(size)

    def close(self):
        pass


class ReaderThread(threading.Thread):
    """The WebSocket's reader (pings, the client's frames), as a daemon: an
    ending process never waits for a client."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.daemon = True


class HandedOver(Response):
    """The answer to a request whose connection became a WebSocket: there is
    nothing left to write on it, and gunicorn closes a connection whose
    application raises StopIteration without writing anything."""

    def __call__(self, environ, start_response):
        raise StopIteration


def gunicorn_worker():
    """The gunicorn worker serving this process, or None. Its SIGTERM
    handler is its own bound method: the one public way to it from a
    request, and to `alive`, false once it was asked to stop."""
    return getattr(signal.getsignal(signal.SIGTERM), "__self__", None)


def stopping(worker):
    return worker is not None and not getattr(worker, "alive", True)


def accept(sock):
    """The WebSocket of this request (its 101 answer sent), or Invalid."""
    lent = LentSocket(sock)
    environ = {**request.environ, "gunicorn.socket": lent}
    environ.pop("werkzeug.socket", None)
    try:
        return simple_websocket.Server.accept(
            environ,
            ping_interval=PING_INTERVAL,
            max_message_size=MAX_MESSAGE,
            thread_class=ReaderThread,
        )
    except (ProtocolError, simple_websocket.ConnectionError) as exc:
        raise Invalid(f"Not a WebSocket handshake: {exc or 'refused'}") from None


def relay(ws, sock, subscription, streams, worker):
    """Send the lines until the client leaves, Redis goes or the worker
    stops. Returns (why, lines sent, close code or None)."""
    sent = 0
    writable = selectors.DefaultSelector()
    writable.register(sock, selectors.EVENT_WRITE)
    pending = []
    try:
        while ws.connected:
            if stopping(worker):
                return "sentinel_stopping", sent, CloseReason.GOING_AWAY
            if subscription.lost is not None:
                return "redis_unavailable", sent, CloseReason.INTERNAL_ERROR
            while ws.receive(timeout=0) is not None:
                pass  # a client has nothing to say to a log stream
            if not pending:
                try:
                    dropped, line = subscription.next_lines(TICK)
                except queue.Empty:
                    continue
                pending = [streams.dropped_notice(dropped), line] if dropped else [line]
            # A client that does not read leaves its lines in the queue meanwhile.
            if writable.select(TICK):
                ws.send(pending.pop(0))
                sent += 1
        return "client_left", sent, None
    except (simple_websocket.ConnectionClosed, OSError):
        return "client_left", sent, None
    finally:
        writable.close()


CLOSE_MESSAGES = {
    CloseReason.GOING_AWAY: "Sentinel is stopping or restarting: connect again.",
    CloseReason.INTERNAL_ERROR: "Redis is unavailable: the log stream ends; connect again later.",
}


def close(ws, sock, code):
    """Close the WebSocket (with `code`, if the client still reads), then
    the connection under it."""
    if code is not None and ws.connected:
        ready = selectors.DefaultSelector()
        ready.register(sock, selectors.EVENT_WRITE)
        try:
            if ready.select(0):
                ws.close(reason=code, message=CLOSE_MESSAGES[code])
                ws.thread.join(CLOSE_WAIT)  # the client's close frame, answering
        except (simple_websocket.ConnectionClosed, OSError):
            pass
        finally:
            ready.close()
    try:
        sock.shutdown(socket.SHUT_RDWR)  # ends the reader thread's wait at once
    except OSError:
        pass
    # Gone before gunicorn closes the socket: a thread still reading from a
    # closed descriptor could read from the next connection given its number.
    ws.thread.join(READER_EXIT_WAIT)


@token_required(scheme="token", admin=True)
@describe(
    "Sentinel's log lines, live, over a WebSocket",
    answers={101: ("text/plain", STRING)},
    errors=(400, 503),
    error={"text/plain": STRING},
    description=(
        "A WebSocket (`Upgrade: websocket`; the token in `?Token=`): each text"
        " frame is one line logged by any Sentinel process, as it is on stderr,"
        " from the moment the stream opens. A client that reads slower than"
        f" lines come loses the overflow of a {QUEUE_LINES}-line queue, and is"
        " told how many it lost (`event=log_lines_dropped count=N`). Sentinel"
        f" pings every {PING_INTERVAL} s and closes a stream whose client stops"
        " answering; it closes with 1001 when it stops or restarts, 1011 when"
        " Redis (which carries the lines) goes. A plain GET is answered 400;"
        f" a process already serving {STREAMS_PER_PROCESS} streams answers 503"
        " with Retry-After."
    ),
)
def log():
    if "websocket" not in request.headers.get("Upgrade", "").lower():
        raise Invalid(
            "GET /log is a WebSocket: connect with a WebSocket client"
            " (this request asked for no `Upgrade: websocket`)."
        )
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        raise Invalid("The log stream is served by `sentinel serve` (gunicorn) only.")
    streams = current_app.extensions[EXTENSION]
    if not streams.slots.acquire(blocking=False):
        logger.warning(
            "event=log_stream_refused user=%s client=%s reason=too_many_streams limit=%s",
            g.username,
            request.remote_addr,
            STREAMS_PER_PROCESS,
        )
        raise TooManyStreams()
    try:
        stream(sock, streams)
    finally:
        streams.slots.release()
    return HandedOver()


def stream(sock, streams):
    """Subscribe, accept the WebSocket, relay until the end, close."""
    subscription = Subscription(streams.redis_url)
    try:
        # What the kernel keeps for a client that does not read: past it,
        # lines wait in the queue, where the overflow is dropped.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        ws = accept(sock)
        started = time.monotonic()
        logger.info("event=log_stream_opened user=%s client=%s", g.username, request.remote_addr)
        why, sent, code = "error", 0, CloseReason.INTERNAL_ERROR
        try:
            why, sent, code = relay(ws, sock, subscription, streams, gunicorn_worker())
        finally:
            close(ws, sock, code)
        logger.info(
            "event=log_stream_closed user=%s client=%s reason=%s lines=%s seconds=%.0f",
            g.username,
            request.remote_addr,
            why,
            sent,
            time.monotonic() - started,
        )
    finally:
        subscription.close()


def install(state):
    """Publish this process's lines, and make room for its streams."""
    settings = state.app.config["SENTINEL"]
    logs.attach(Publisher(settings["redis_url"]), settings["log_format"])
    state.app.extensions[EXTENSION] = Streams(settings["redis_url"], settings["log_format"])


def register(blueprint):
    """Add the `/log` route to pgwatch's blueprint; publishing starts when
    an application registers it."""
    blueprint.record_once(install)
    # Two rules for the one route: werkzeug matches a WebSocket handshake
    # only to a rule made for WebSockets, and a plain GET only to another,
    # and this route answers both (a plain GET in pgwatch's words).
    blueprint.add_url_rule("/log", view_func=log, methods=["GET"], websocket=True)
    blueprint.add_url_rule("/log", view_func=log, methods=["GET"])
