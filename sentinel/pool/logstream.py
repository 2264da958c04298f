"""Sentinel's log lines, live: pgwatch's `GET /log` WebSocket.

Every Sentinel process (gunicorn's master and workers, RQ workers, the CLI)
PUBLISHes the lines it logs on one Redis channel, while anyone listens; a
stream SUBSCRIBEs to it and sends each line to its client as a text frame.

A stream is one loop in its request's own thread, and starts no other: it
waits (select) on the client's socket and its Redis subscription's together,
speaks the WebSocket protocol itself (wsproto, which only turns bytes into
events and back), and never blocks on either socket. It drains Redis as
lines come, into a bounded buffer of frames that it writes whenever the
client's socket takes more; a line that finds the buffer full is dropped
(the client is told how many), so a client that stops reading holds its
stream's thread and buffer, nothing else, until the pings it no longer
answers close it. Each stream holds one of its process's few gunicorn
threads: a process serves at most STREAMS_PER_PROCESS at once and refuses
more, and a worker asked to stop closes them at once instead of waiting
out its graceful timeout.
"""

import logging
import selectors
import signal
import socket
import ssl
import threading
import time
from collections import deque

from flask import Response, current_app, g, request
from redis import Redis, RedisError
from redis.backoff import NoBackoff
from redis.retry import Retry
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import RemoteProtocolError

from .. import logs
from ..auth.access import token_required
from ..contract import STRING, describe
from ..errors import Invalid, NotReady

logger = logging.getLogger(__name__)

EXTENSION = "sentinel.log_streams"

# gunicorn runs 4 threads a process: two streams leave two for everything else.
STREAMS_PER_PROCESS = 2
# Bytes of frames a stream keeps for a client that reads slower than lines come.
BUFFER_BYTES = 256 * 1024
# Bytes the kernel keeps for a client that does not read (on top of the buffer).
SEND_BUFFER = 64 * 1024
# A ping every so often; a client heard from in none of this long is gone.
PING_INTERVAL = 15
SILENCE_LIMIT = 40
# The longest a stream waits before it reads its subscription and looks
# whether its worker stops: a line reaches the client within this.
TICK = 0.5
# Seconds a closing stream gives its last frames and the client's answering close.
CLOSE_WAIT = 1.0
# What a client sends is read and dropped; a message longer than this closes it.
MAX_MESSAGE = 4096
# At most this much of either side is handled before the loop turns to the other.
READ_SIZE = 64 * 1024
LINES_PER_TURN = 500
# Bytes of frames given to the socket at once (over TLS, one record at most).
CHUNK = 16 * 1024
RETRY_AFTER = 10

# The publisher asks Redis whether anyone listens at most this often, and
# waits this long before trying a Redis that failed again.
LOOK_EVERY = 1.0
LOOK_AGAIN_AFTER_FAILURE = 10.0
PUBLISH_TIMEOUT = 0.25

# A non-blocking socket that has nothing to give or take at the moment:
# over TLS, OpenSSL may want the other direction first, which the loop's
# next turn offers anyway.
WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


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
    """The log channel, subscribed on a connection of its own, read only
    when its socket has something (or NotReady when Redis is down)."""

    def __init__(self, redis_url):
        self.redis = short_lived_redis(redis_url, 5)
        self.pubsub = self.redis.pubsub()
        try:
            self.pubsub.subscribe(channel_of(self.redis))
            # Subscribed once Redis says so: a line logged from now on comes.
            if self.pubsub.get_message(timeout=5) is None:
                raise RedisError("no answer to SUBSCRIBE")
        except RedisError as exc:
            self.close()
            logger.warning("event=log_stream_refused reason=redis_unavailable error=%s", exc)
            raise NotReady(f"Redis is unavailable, and the log travels through it: {exc}") from exc

    def lines(self, most):
        """Up to `most` lines that have arrived, without waiting; RedisError
        once Redis is gone. Its client may hold more than its socket shows
        (read ahead), so a caller that got `most` asks again without waiting."""
        lines = []
        while len(lines) < most:
            message = self.pubsub.get_message(timeout=0)
            if message is None:
                break
            if message["type"] == "message":
                lines.append(message["data"].decode(errors="replace"))
        return lines

    def close(self):
        self.pubsub.close()
        self.redis.close()


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


CLOSE_MESSAGES = {
    CloseReason.GOING_AWAY: "Sentinel is stopping or restarting: connect again.",
    CloseReason.INTERNAL_ERROR: "Redis is unavailable: the log stream ends; connect again later.",
    CloseReason.POLICY_VIOLATION: f"No answer to pings for {SILENCE_LIMIT} s: the stream ends.",
    CloseReason.MESSAGE_TOO_BIG: f"A log stream takes no message over {MAX_MESSAGE} bytes.",
}


class Outgoing:
    """What a stream has for its client: the chunk under way, which (over
    TLS) must be offered again as it is until the socket takes it, then
    whole frames, so that a control frame or the word on dropped lines can
    go right after the chunk, ahead of the lines waiting."""

    def __init__(self):
        self.chunk = b""
        self.frames = deque()
        self.size = 0  # bytes of both

    def __bool__(self):
        return self.size > 0

    def has_room(self, size):
        return self.size + size <= BUFFER_BYTES

    def append(self, frame):
        self.frames.append(frame)
        self.size += len(frame)

    def urgent(self, frame):
        self.frames.appendleft(frame)
        self.size += len(frame)

    def discard(self):
        """Forget the frames that wait; the chunk under way stays."""
        self.frames.clear()
        self.size = len(self.chunk)

    def write(self, sock):
        """Write what `sock` takes now, without waiting (or WOULD_BLOCK)."""
        if not self.chunk:
            chunk = bytearray()
            while self.frames and len(chunk) < CHUNK:
                chunk += self.frames.popleft()
            self.chunk = bytes(chunk)
        written = sock.send(self.chunk)
        self.chunk = self.chunk[written:]
        self.size -= written


class ClientLeft(Exception):
    """The client closed the connection, or it broke."""


class Stream:
    """One client's stream: the WebSocket on the client's socket (made
    non-blocking for its life), the subscription, and the frames not yet
    written."""

    def __init__(self, sock, subscription, streams):
        self.sock = sock
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.subscription = subscription
        self.streams = streams
        self.ws = WSConnection(ConnectionType.SERVER)
        self.outgoing = Outgoing()
        self.lines = 0
        self.dropped = 0  # since the client was last told
        self.dropped_in_all = 0
        self.incoming = 0  # bytes of the client's message being received
        self.heard = time.monotonic()

    def accept(self):
        """Answer the handshake gunicorn read (its 101), or Invalid."""
        head = [f"GET {request.path} HTTP/1.1"]
        head += [f"{name}: {value}" for name, value in request.headers.items()]
        try:
            self.ws.receive_data("\r\n".join(head + ["", ""]).encode("latin-1"))
            events = list(self.ws.events())
            if not events or not isinstance(events[0], Request):
                raise RemoteProtocolError("an incomplete request", event_hint=None)
        except RemoteProtocolError as exc:
            raise Invalid(f"Not a WebSocket handshake: {exc}") from None
        # What the kernel keeps for a client that does not read: past it,
        # frames wait in the stream's buffer, where the overflow is dropped.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        try:
            self.sock.sendall(self.ws.send(AcceptConnection()))
        except OSError:
            raise ClientLeft() from None

    def relay(self, worker):
        """Send the lines until the client leaves, Redis goes, the client
        falls silent or the worker stops: (why, close code or None)."""
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        next_ping = time.monotonic() + PING_INTERVAL
        more_lines = False
        try:
            while True:
                now = time.monotonic()
                if stopping(worker):
                    return "sentinel_stopping", CloseReason.GOING_AWAY
                if now - self.heard > SILENCE_LIMIT:
                    return "client_not_answering", CloseReason.POLICY_VIOLATION
                if now >= next_ping:
                    self.outgoing.urgent(self.ws.send(Ping()))
                    next_ping = now + PING_INTERVAL
                writing = self.outgoing or self.dropped
                wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
                selector.modify(self.sock, wanted)
                # redis-py offers no public way to wait on its socket beside
                # the client's: the subscription is read every TICK instead.
                waiting = more_lines or self.decrypted()
                client = 0
                for _, events in selector.select(0 if waiting else min(TICK, next_ping - now)):
                    client = events
                try:
                    lines = self.subscription.lines(LINES_PER_TURN)
                except RedisError:
                    return "redis_unavailable", CloseReason.INTERNAL_ERROR
                more_lines = len(lines) == LINES_PER_TURN
                for line in lines:
                    self.offer(line)
                if client & selectors.EVENT_READ or self.decrypted():
                    code = self.receive()
                    if code is not None:
                        return "client_message_too_big", code
                if client & selectors.EVENT_WRITE:
                    self.write()
        except ClientLeft:
            return "client_left", None
        finally:
            selector.close()

    def decrypted(self):
        """Whether bytes the client sent over TLS wait, read and decrypted
        already, where the socket no longer shows them."""
        return self.tls and self.sock.pending() > 0

    def offer(self, line):
        """Buffer a line's frame, or drop it, and count it, when the buffer
        has no room."""
        frame = self.ws.send(TextMessage(data=line))
        if not self.outgoing.has_room(len(frame)):
            self.dropped += 1
            self.dropped_in_all += 1
            return
        self.outgoing.append(frame)
        self.lines += 1

    def write(self):
        """Write what the socket takes of the buffer, without waiting; the
        word on lines dropped goes first once the chunk under way is out."""
        if self.dropped and not self.outgoing.chunk:
            notice = self.streams.dropped_notice(self.dropped)
            self.outgoing.urgent(self.ws.send(TextMessage(data=notice)))
            self.dropped = 0
        try:
            self.outgoing.write(self.sock)
        except WOULD_BLOCK:
            pass
        except OSError:
            raise ClientLeft() from None

    def receive(self):
        """Read what the client sent, answer its pings and its close; the
        close code its message calls for, if too long; ClientLeft once it
        closed."""
        try:
            data = self.sock.recv(READ_SIZE)
        except WOULD_BLOCK:
            return None
        except OSError:
            raise ClientLeft() from None
        if not data:
            raise ClientLeft()
        self.heard = time.monotonic()
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, CloseConnection):
                self.outgoing.discard()  # the client wants no more lines
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self.outgoing.urgent(self.ws.send(event.response()))
                elif self.ws.state is ConnectionState.OPEN:  # a frame that broke the protocol
                    self.outgoing.urgent(self.ws.send(event))
                self.flush(time.monotonic() + CLOSE_WAIT)
                raise ClientLeft()
            if isinstance(event, Ping):
                self.outgoing.urgent(self.ws.send(event.response()))
            elif isinstance(event, Message):
                self.incoming += len(event.data)
                if self.incoming > MAX_MESSAGE:
                    return CloseReason.MESSAGE_TOO_BIG
                if event.message_finished:
                    self.incoming = 0
        return None

    def flush(self, deadline):
        """Write the buffer until it is empty or `deadline` passes."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_WRITE)
            while self.outgoing and selector.select(max(0, deadline - time.monotonic())):
                self.write()

    def close(self, code):
        """Close the WebSocket with `code`: the close frame, then the
        client's answering close, given CLOSE_WAIT in all."""
        if code is None or self.ws.state is not ConnectionState.OPEN:
            return
        # Right after the chunk under way: lines still waiting would only delay it.
        self.outgoing.discard()
        self.dropped = 0
        self.outgoing.append(self.ws.send(CloseConnection(code=code, reason=CLOSE_MESSAGES[code])))
        deadline = time.monotonic() + CLOSE_WAIT
        try:
            self.flush(deadline)
            with selectors.DefaultSelector() as selector:
                selector.register(self.sock, selectors.EVENT_READ)
                while self.ws.state is not ConnectionState.CLOSED and (
                    self.decrypted() or selector.select(max(0, deadline - time.monotonic()))
                ):
                    self.receive()
        except ClientLeft:
            pass


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
        f" lines come loses the overflow of a {BUFFER_BYTES // 1024} KiB buffer,"
        " and is told how many lines it lost (`event=log_lines_dropped count=N`)."
        f" Sentinel pings every {PING_INTERVAL} s and closes a stream whose client"
        f" it has not heard from in {SILENCE_LIMIT} s; it closes with 1001 when it"
        " stops or restarts, 1011 when Redis (which carries the lines) goes. A"
        f" plain GET is answered 400; a process already serving {STREAMS_PER_PROCESS}"
        " streams answers 503 with Retry-After."
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
    """Subscribe, accept the WebSocket, relay until the end, close. The
    socket stays gunicorn's: only gunicorn closes it, once the view returns."""
    subscription = Subscription(streams.redis_url)
    try:
        current = Stream(sock, subscription, streams)
        try:
            current.accept()
        except ClientLeft:
            return  # gone before it saw the upgrade: nothing to close
        started = time.monotonic()
        logger.info("event=log_stream_opened user=%s client=%s", g.username, request.remote_addr)
        why, code = "error", CloseReason.INTERNAL_ERROR
        sock.setblocking(False)
        try:
            why, code = current.relay(gunicorn_worker())
        finally:
            current.close(code)
            sock.setblocking(True)
        logger.info(
            "event=log_stream_closed user=%s client=%s reason=%s lines=%s dropped=%s seconds=%.0f",
            g.username,
            request.remote_addr,
            why,
            current.lines,
            current.dropped_in_all,
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
