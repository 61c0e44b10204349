# Runs one solution and its tests inside the sandbox and reports a single verdict on fd 3.
# The verdict carries a nonce read from stdin before any user code runs, so a program that prints,
# exits early or writes to fd 3 itself cannot pass for a finished test run.
import builtins
import errno
import json
import os
import sys
import traceback

MAIN = os.getpid()
HERE = "/harness"

# Errors that mean the program reached for something the sandbox withholds (the file system outside
# its folder, the network, other processes) rather than being wrong.
VIOLATION_ERRNOS = {
    errno.EROFS, errno.EACCES, errno.EPERM, errno.ENETUNREACH, errno.EHOSTUNREACH,
    errno.ECONNREFUSED, errno.ENETDOWN, errno.EADDRNOTAVAIL,
}
# Limits the sandbox enforces: hitting one is a crash, not a wrong answer.
RESOURCE_ERRNOS = {errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EFBIG, errno.ENOSPC}


def main():
    # The interpreter runs with -S: site-packages are on the path, but their .pth files (arbitrary code
    # run at every start, and most of a pyenv python's start-up time) are not executed.
    import site
    for folder in site.getsitepackages():
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.append(folder)
    nonce = sys.stdin.readline().strip()
    sys.stdin = open(os.devnull)
    with open(os.path.join(HERE, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    visible = tuple(job["visibleRoots"])
    private = tuple(job.get("privateRoots", ()))

    def report(event, status="", message="", trace="", missing=()):
        if os.getpid() != MAIN:
            return
        line = json.dumps({"nonce": nonce, "event": event, "status": status, "message": message[:4000], "trace": trace[-8000:], "missing": list(missing)[:16]})
        os.write(3, (line + "\n").encode("utf-8"))

    def finish(code):
        if os.getpid() == MAIN:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except Exception:
                pass
        os._exit(code)

    report("started")
    compiled = {}
    for part in ("solution", "tests"):
        path = os.path.join(HERE, part + ".py")
        with open(path, encoding="utf-8") as f:
            source = f.read()
        try:
            compiled[part] = compile(source, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as error:
            trace = print_trace(error, with_frames=False)
            report("verdict", "syntax_error", part + ": " + exception_only(error), trace)
            finish(1)

    sys.argv = [os.path.join(HERE, "solution.py")]
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    phase = "code"
    try:
        exec(compiled["solution"], namespace)
        phase = "tests"
        exec(compiled["tests"], namespace)
        entry = job.get("entryPoint")
        if entry:
            namespace["check"](namespace[entry])
    except BaseException as error:
        if os.getpid() != MAIN:
            finish(1)
        trace = print_trace(error)
        report("verdict", classify(error, phase, visible), describe(error), trace, missing_under(error, private))
        finish(1)
    # A forked child that fell through the program must not report for its parent.
    if os.getpid() != MAIN:
        finish(0)
    report("verdict", "passed")
    finish(0)


def print_trace(error, with_frames=True):
    # Sent with the verdict too, so the runner can tell the harness's report from what the program printed.
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__ if with_frames else None))
    sys.stderr.write(trace)
    return trace


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


def classify(error, phase, visible):
    if isinstance(error, SystemExit):
        return "test_failed"
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
    if isinstance(error, AssertionError):
        return "test_failed"
    # Raising while the program itself loads is a crash; raising once the tests call into it is a failed test.
    return "crashed" if phase == "code" else "test_failed"


def exception_only(error):
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def describe(error):
    if isinstance(error, SystemExit):
        return "exited with code %r before the tests finished" % (error.code,)
    head = exception_only(error)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename != __file__ and f.filename.startswith(HERE + "/")]
    if not frames:
        return head
    last = frames[-1]
    where = "%s:%d" % (os.path.basename(last.filename), last.lineno)
    return "%s (at %s: %s)" % (head, where, (last.line or "").strip()) if last.line else "%s (at %s)" % (head, where)


main()
