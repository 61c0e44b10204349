# How an exception reads as a sandbox status. Used by the program's process to describe what it raised
# and by the checker for what the tests raised; only the checker decides the verdict.
import errno
import os
import sys

# Errors that mean the program reached for something the sandbox withholds (the file system outside
# its folder, the network, other processes) rather than being wrong.
VIOLATION_ERRNOS = {
    errno.EROFS, errno.EACCES, errno.EPERM, errno.ENETUNREACH, errno.EHOSTUNREACH,
    errno.ECONNREFUSED, errno.ENETDOWN, errno.EADDRNOTAVAIL,
}
# Limits the sandbox enforces: hitting one is a crash, not a wrong answer.
RESOURCE_ERRNOS = {errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EFBIG, errno.ENOSPC}
SOURCES = ("solution.py", "tests.py")


def causes(error):
    seen = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])


def outside(path, visible):
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not path.startswith("/"):
        return False
    path = os.path.normpath(path)
    return not any(path == root or path.startswith(root.rstrip("/") + "/") for root in visible)


def missing_under(error, private):
    # Paths the error found missing below /tmp or /dev/shm: the sandbox's own there hide the host's, which
    # only the runner can check for (a project cloned under /tmp reads as missing, not as off limits).
    found = []
    for cause in causes(error):
        if isinstance(cause, OSError) and cause.errno == errno.ENOENT:
            for path in (cause.filename, cause.filename2):
                if isinstance(path, bytes):
                    path = os.fsdecode(path)
                if isinstance(path, str) and path.startswith("/"):
                    path = os.path.normpath(path)
                    if any(path.startswith(root + "/") for root in private) and path not in found:
                        found.append(path)
    return found


def limit_status(error, visible):
    """sandbox_violation or crashed when the error is the sandbox's doing, else None."""
    socket = sys.modules.get("socket")
    for cause in causes(error):
        if socket is not None and isinstance(cause, socket.gaierror):
            return "sandbox_violation"
        if isinstance(cause, OSError):
            if cause.errno in VIOLATION_ERRNOS:
                return "sandbox_violation"
            # A host path the sandbox does not mount reads as missing, so ENOENT outside the
            # mounted roots means the program went looking for the host's files.
            if cause.errno == errno.ENOENT and (outside(cause.filename, visible) or outside(cause.filename2, visible)):
                return "sandbox_violation"
    for cause in causes(error):
        if isinstance(cause, (MemoryError, RecursionError, KeyboardInterrupt)):
            return "crashed"
        if isinstance(cause, OSError) and cause.errno in RESOURCE_ERRNOS:
            return "crashed"
    return None


def disk_full(error):
    return any(isinstance(cause, OSError) and cause.errno == errno.ENOSPC for cause in causes(error))


def exception_only(error):
    traceback = traceback_module()
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def describe(error):
    traceback = traceback_module()
    head = exception_only(error)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in SOURCES]
    if not frames:
        return head
    last = frames[-1]
    where = "%s:%d" % (last.filename, last.lineno)
    return "%s (at %s: %s)" % (head, where, (last.line or "").strip()) if last.line else "%s (at %s)" % (head, where)


def format_trace(error, with_frames=True):
    traceback = traceback_module()
    return "".join(traceback.format_exception(type(error), error, error.__traceback__ if with_frames else None))


remembered = {}


def remember_source(filename, source):
    """Lets tracebacks quote lines of code that never was a file in the sandbox."""
    remembered[filename] = source


def traceback_module():
    # Imported (with linecache, tokenize and re) only when a run fails: a passing one never pays for it.
    import linecache
    import traceback

    for filename, source in remembered.items():
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return traceback
