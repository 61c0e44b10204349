# The only thing that crosses from the program's process to the checker's: plain data, one JSON line per
# message. Whatever the program returns is rebuilt from builtin types on the checker's side, so an object
# whose __eq__ always answers True, or a subclass with a forged __iter__, never reaches the tests.
import json
import os

MAX_MESSAGE = 16 * 1024 * 1024
MAX_DEPTH = 200
MAX_ITEMS = 100_000


class NotPlain(TypeError):
    """A value that is not plain data (an instance of the program's own class, a generator, a function)."""


def encode(value, depth=0):
    if depth > MAX_DEPTH:
        raise NotPlain("a value nested more than %d deep (or one that contains itself)" % MAX_DEPTH)
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int or kind is float:
        return value
    if kind is list:
        return [encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {"t": [encode(item, depth + 1) for item in value]}
    if kind is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if kind is set:
        return {"s": [encode(item, depth + 1) for item in value]}
    if kind is frozenset:
        return {"f": [encode(item, depth + 1) for item in value]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is bytearray:
        return {"ba": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    if kind is range:
        return {"r": [value.start, value.stop, value.step]}
    # A generator or map object reaches the tests as an iterator over what it yields (at most MAX_ITEMS).
    if hasattr(kind, "__next__") and getattr(kind, "__iter__", None) is not None and iter(value) is value:
        items = []
        for item in value:
            if len(items) == MAX_ITEMS:
                raise NotPlain("an iterator of more than %d items" % MAX_ITEMS)
            items.append(encode(item, depth + 1))
        return {"i": items}
    # Subclasses of builtins (a namedtuple, a Counter, an IntEnum) are read through the base type's own
    # methods, so the values the checker sees are the stored ones, whatever the subclass overrides.
    for base, read in BASES:
        if isinstance(value, base):
            return encode(read(value), depth)
    raise NotPlain("an object of type %s" % kind.__name__)


BASES = (
    (bool, bool.__bool__),
    (int, int.__int__),
    (float, float.__float__),
    (str, str.__str__),
    (tuple, lambda v: tuple(tuple.__iter__(v))),
    (list, lambda v: list(list.__iter__(v))),
    (dict, lambda v: dict(dict.items(v))),
    (frozenset, lambda v: frozenset(frozenset.__iter__(v))),
    (set, lambda v: set(set.__iter__(v))),
    (bytes, lambda v: bytes.fromhex(bytes.hex(v))),
)


def decode(value):
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    ((tag, inner),) = value.items()
    if tag == "t":
        return tuple(decode(item) for item in inner)
    if tag == "d":
        return {decode(k): decode(v) for k, v in inner}
    if tag == "s":
        return {decode(item) for item in inner}
    if tag == "f":
        return frozenset(decode(item) for item in inner)
    if tag == "b":
        return bytes.fromhex(inner)
    if tag == "ba":
        return bytearray.fromhex(inner)
    if tag == "c":
        return complex(inner[0], inner[1])
    if tag == "r":
        return range(inner[0], inner[1], inner[2])
    if tag == "i":
        return iter([decode(item) for item in inner])
    raise ValueError("unknown tag %r" % tag)


class Channel:
    """One end of a pipe pair carrying newline-delimited JSON messages."""

    def __init__(self, read_fd, write_fd):
        self.reader = open(read_fd, "rb", buffering=65536, closefd=True)
        self.write_fd = write_fd

    def send(self, message):
        # ASCII escapes carry lone surrogates, which UTF-8 cannot.
        data = (json.dumps(message) + "\n").encode("ascii")
        if len(data) > MAX_MESSAGE:
            raise NotPlain("a value of more than %d MiB" % (MAX_MESSAGE // (1024 * 1024)))
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view):]

    def receive(self):
        """The next message, or None at end of stream. ValueError: not a message of this protocol."""
        line = self.reader.readline(MAX_MESSAGE + 1)
        if not line:
            return None
        if len(line) > MAX_MESSAGE or not line.endswith(b"\n"):
            raise ValueError("a message longer than %d MiB or cut short" % (MAX_MESSAGE // (1024 * 1024)))
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("a message that is not an object")
        return message

