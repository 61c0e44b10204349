# The checker: runs the tests and decides the verdict, in a process the generated program never runs in.
#
# Before reading anything it forks the program's process (program.py), which gets the generated code, no
# tests, no verdict channel (fd 3) and no stdin. The tests run here, with the solution's functions stood in
# for by proxies: a call sends its arguments to the program's process and rebuilds the answer from plain
# data (protocol.py). So patching asserts, walking frames up to the reporter, exiting early or returning an
# object that equals anything cannot make a test pass: the program can only compute answers. Both processes
# run as one unprivileged uid (so files the tests make are the solution's to use), and this one is not
# dumpable, so the program cannot read its memory, take its file descriptors or trace it (ptrace is also
# refused by the sandbox's seccomp filter). A signal can only kill or stop it, which is never a pass.
import builtins
import itertools
import json
import os
import resource
import signal
import sys
import types

sys.path.insert(0, "/harness")  # -I leaves the script's own (read-only) folder off the path

import errors  # noqa: E402
import program  # noqa: E402
from protocol import Channel, NotPlain, decode, encode  # noqa: E402

RESULT_FD = 3
PR_SET_DUMPABLE = 4


class ProgramGone(BaseException):
    """The program exited, died or left the protocol during a call; no test can catch its way past this."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def main():
    options = dict(arg.split("=", 1) for arg in sys.argv[1:])
    limits = [int(n) for n in options["limits"].split(",")]
    uid = int(options["uid"]) if options.get("uid") else None
    disk_mb = int(options["disk"])
    set_limits(*limits)
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # a factorial of 2000 is an answer like any other
    # Lines reach the shared stdout in the order the two processes print them.
    sys.stdout.reconfigure(line_buffering=True)
    sys.path.extend(folder for folder in options.get("site", "").split(":") if folder and folder not in sys.path)

    calls_read, calls_write = os.pipe()
    answers_read, answers_write = os.pipe()
    child = os.fork()
    if child == 0:
        run_program(calls_read, answers_write, uid)
    os.close(calls_read)
    os.close(answers_write)
    if uid is not None:
        # From root to the sandbox's uid: the change of uid alone leaves this process undumpable.
        become(uid)
    else:
        undumpable()
    # Ctrl-C from the program would be a KeyboardInterrupt the tests could catch; as a plain signal it kills.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    check(Channel(answers_read, calls_write), child, disk_mb)


def set_limits(data, nproc, fsize, cpu):
    for limit, value in ((resource.RLIMIT_DATA, data), (resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_FSIZE, fsize),
                         (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))


def undumpable():
    """One uid for both processes (inside a user namespace): the checker makes itself undumpable, so the
    program's process cannot open its /proc/<pid>/mem or fds (bwrap has already set no_new_privs)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        setup_error("prctl(PR_SET_DUMPABLE) failed: errno %d" % ctypes.get_errno())


def become(uid):
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def setup_error(message):
    sys.stderr.write("harness: %s\n" % message)
    os._exit(70)


def run_program(calls_read, answers_write, uid):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Before anything of the program runs: no stdin (the job, with the tests, is still unread there), no
    # verdict channel, no descriptor but the two pipe ends.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    keep = {0, 1, 2, calls_read, answers_write}
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    sys.stdin = open(0, closefd=False)
    if uid is not None:
        become(uid)
    try:
        program.serve(Channel(calls_read, answers_write))
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(0)


def check(channel, child, disk_mb):
    job = json.loads(sys.stdin.readline())
    sys.stdin = open(os.devnull)
    nonce = job["nonce"]
    visible, private = tuple(job["visibleRoots"]), tuple(job["privateRoots"])

    def report(event, status="", message="", trace="", missing=()):
        line = json.dumps({"nonce": nonce, "event": event, "status": status, "message": message[:4000],
                           "trace": trace[-8000:], "missing": list(missing)[:16]})
        os.write(RESULT_FD, (line + "\n").encode("utf-8"))

    def verdict(status, message="", trace="", missing=()):
        report("verdict", status, message, trace, missing)
        finish(0 if status == "passed" else 1)

    report("started")
    errors.remember_source("tests.py", job["tests"])
    try:
        tests = compile(job["tests"], "tests.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        verdict("syntax_error", "tests: " + errors.exception_only(error), print_trace(error, with_frames=False))

    entry = job.get("entryPoint")
    gone = ProgramWatch(channel, child)
    try:
        channel.send({"op": "load", "code": job["code"], "visible": visible, "private": private, "diskMb": disk_mb})
        loaded = gone.receive("before its tests ran")
    except ProgramGone as error:
        verdict(error.status, error.message)
    if loaded.get("op") == "load_failed":
        verdict(str(loaded.get("status")), str(loaded.get("message", "")), str(loaded.get("trace", "")), loaded.get("missing", ()))
    if loaded.get("op") != "loaded":
        verdict("tampering", "the program's process wrote to the checker's channel")

    # Only names the tests' own code looks up are bound; the program learns nothing of which. The tests run
    # as __main__, so doctest and unittest.main() find what they define and the proxies' docstrings.
    wanted = referenced_names(tests)
    main_module = types.ModuleType("__main__")
    sys.modules["__main__"] = main_module
    sys.argv = ["tests.py"]  # unittest.main() reads it
    namespace = main_module.__dict__
    namespace["__builtins__"] = builtins
    docs = loaded.get("docs") if isinstance(loaded.get("docs"), dict) else {}
    functions = set()
    try:
        for name in loaded.get("functions", ()):
            if exportable(name) and (name in wanted or name == entry or name in docs):
                functions.add(name)
                namespace[name] = gone.proxy(name, namespace, docs.get(name))
        for name in loaded.get("values", ()):
            if exportable(name) and name in wanted and name not in functions:
                found, value = gone.value(name)
                if found:
                    namespace[name] = value
    except ProgramGone as error:
        verdict(error.status, error.message)
    try:
        exec(tests, namespace)
        if entry:
            if entry not in functions:
                raise NameError("the solution defines no function %r for the tests to check" % entry)
            namespace["check"](gone.proxy(entry, namespace, docs.get(entry)))
    except BaseException as error:
        if gone.forfeit is not None:
            verdict(gone.forfeit.status, gone.forfeit.message)
        # unittest.main() and a closing sys.exit(0) end the tests this way when they pass.
        if isinstance(error, SystemExit) and error.code in (None, 0, False):
            verdict("passed")
        status, message, missing = judge(error, visible, private)
        verdict(status, message, print_trace(error), missing)
    # A test that swallowed the program's exit (except BaseException) does not turn it into a pass.
    if gone.forfeit is not None:
        verdict(gone.forfeit.status, gone.forfeit.message)
    verdict("passed")


def referenced_names(code):
    """Global names the tests' code (any function in it included) may look up: the only ones asked for."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if hasattr(constant, "co_names"):
            names |= referenced_names(constant)
    return names


def exportable(name):
    # A solution that defines `abs` or `len` must not change what the tests' own calls to them mean.
    return isinstance(name, str) and name.isidentifier() and not name.startswith("__") and not hasattr(builtins, name)


class ProgramWatch:
    """The checker's side of the channel: calls, answers, and what it means when answers stop."""

    def __init__(self, channel, child):
        self.channel = channel
        self.child = child
        self.numbers = itertools.count(1)
        self.forfeit = None

    def proxy(self, name, namespace, doc=None):
        def call(*args, **kwargs):
            return self.call(name, args, kwargs)

        # A function of the tests' module, as the solution's would be in one process (doctest looks there).
        stand = types.FunctionType(call.__code__, namespace, name, None, call.__closure__)
        stand.__qualname__ = name
        stand.__module__ = "__main__"
        stand.__doc__ = doc if isinstance(doc, str) else None
        return stand

    def value(self, name):
        """A plain value the solution defined at top level, as (True, value); (False, None) when it is not plain data."""
        answer = self.ask({"op": "value", "id": next(self.numbers), "name": name}, "reading %s" % name)
        if answer.get("op") == "return":
            return True, self.decoded(answer["value"])
        return False, None

    def call(self, name, args, kwargs):
        if self.forfeit is not None:
            raise self.forfeit
        try:
            message = {"op": "call", "id": next(self.numbers), "name": name, "args": encode(list(args)),
                       "kwargs": [[key, encode(value)] for key, value in kwargs.items()]}
        except Exception as error:
            # Not a TypeError the tests could take for the solution's: the call never happened.
            what = str(error) if isinstance(error, NotPlain) else "a value that cannot be sent (%s)" % type(error).__name__
            self.fail("test_failed", "the tests passed %s to %s; only plain data crosses to the program" % (what, name))
        answer = self.ask(message, "during a call to %s" % name)
        op = answer.get("op")
        if op == "return":
            value = self.decoded(answer["value"])
            if "args" in answer:
                self.changed(args, kwargs, answer)
            return value
        if op == "not_plain":
            self.fail("test_failed", "%s %s; the tests see only plain data (numbers, strings, lists, tuples, dicts, "
                      "sets, bytes)" % (name, answer.get("message", "returned a value that is not plain data")))
        if op == "raise" and isinstance(answer.get("error"), dict):
            report = answer["error"]
            if report.get("exit"):
                self.fail("test_failed", "%s raised %s: the program exited during the call" % (name, report.get("type")))
            raise rebuild(report)
        self.fail("tampering", "the program's process wrote to the checker's channel")

    def ask(self, message, when):
        try:
            self.channel.send(message)
        except OSError:
            pass  # the program is gone; receive says how
        except Exception as error:  # too large, or not JSON: the call never happened
            self.fail("test_failed", "the tests passed a value that cannot be sent %s (%s)" % (when, error))
        answer = self.receive(when)
        if answer.get("id") != message["id"]:
            self.fail("tampering", "the program's process wrote to the checker's channel")
        return answer

    def decoded(self, value):
        try:
            return decode(value)
        except Exception:
            self.fail("tampering", "the program's process wrote to the checker's channel")

    def changed(self, args, kwargs, answer):
        """Applies the call's changes to its arguments to the tests' own objects, in place."""
        after_args = self.decoded(answer["args"])
        after_kwargs = {key: self.decoded(value) for key, value in answer.get("kwargs", ())}
        if not isinstance(after_args, list) or len(after_args) != len(args):
            self.fail("tampering", "the program's process wrote to the checker's channel")
        for old, new in zip(args, after_args):
            update(old, new)
        for key, old in kwargs.items():
            if key in after_kwargs:
                update(old, after_kwargs[key])

    def receive(self, when):
        try:
            answer = self.channel.receive()
        except (ValueError, UnicodeDecodeError):
            self.fail("tampering", "the program's process wrote to the checker's channel")
        if answer is None:
            self.fail(*self.ended(when))
        return answer

    def fail(self, status, message):
        self.forfeit = ProgramGone(status, message)
        raise self.forfeit

    def ended(self, when):
        """Why the answers stopped. A program that closed the channel but runs on is waited for (the
        runner's timeout bounds it), as a program that never answers would be."""
        try:
            _, status = os.waitpid(self.child, 0)
        except ChildProcessError:
            return "test_failed", "closed its end of the channel %s" % when
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            if number == signal.SIGXCPU:
                return "timeout", "used up its CPU-time limit"
            return "crashed", "killed by %s %s" % (signal.Signals(number).name, when)
        return "test_failed", "exited with code %d %s" % (os.WEXITSTATUS(status), when)


def update(target, fresh):
    """Makes `target` equal `fresh` in place, keeping the identity of the containers inside it that stay."""
    kind = type(target)
    if kind is not type(fresh):
        return
    if kind is list:
        for index, (old, new) in enumerate(zip(target, fresh)):
            if type(old) in MUTABLE and type(old) is type(new):
                update(old, new)
            else:
                target[index] = new
        del target[len(fresh):]
        target.extend(fresh[len(target):])
    elif kind is dict:
        if list(target) == list(fresh):
            for key, new in fresh.items():
                old = target[key]
                if type(old) in MUTABLE and type(old) is type(new):
                    update(old, new)
                else:
                    target[key] = new
        else:
            target.clear()
            target.update(fresh)
    elif kind is set:
        target.clear()
        target.update(fresh)
    elif kind is bytearray:
        target[:] = fresh
    elif kind is tuple and len(target) == len(fresh):
        for old, new in zip(target, fresh):
            if type(old) in MUTABLE:
                update(old, new)


MUTABLE = (list, dict, set, bytearray, tuple)
# Raised through the tests' own loops, these would end them (all(map(f, cases)) is True if f raises
# StopIteration), so they come back as the RuntimeError Python itself makes of them in generators.
CONTROL_FLOW = {"StopIteration", "StopAsyncIteration", "GeneratorExit"}


def rebuild(report):
    """The program's exception as one the tests can catch by its builtin type; never the program's own object."""
    name = str(report.get("type", "Exception"))
    if name in CONTROL_FLOW:
        error = RuntimeError("the program raised %s: %s" % (name, report.get("message", "")))
        error.sandbox_report = report
        return error
    kind = getattr(builtins, name, None) if report.get("builtin") else None
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        # The solution's own class, under its name, derived from the builtin it derives from.
        base = Exception
        for candidate in report.get("bases", ()):
            found = getattr(builtins, str(candidate), None)
            if isinstance(found, type) and issubclass(found, Exception):
                base = found
                break
        kind = type(name if name.isidentifier() else "ProgramError", (base,), {})
    args = []
    for arg in report.get("args", ()):
        try:
            args.append(decode(arg))
        except Exception:
            args.append(str(arg))
    try:
        error = kind(*args)
    except Exception:
        error = kind(str(report.get("message", "")))
    error.sandbox_report = report
    return error


def judge(error, visible, private):
    """The verdict's status, message and missing paths for an exception that ended the tests."""
    limits = ("sandbox_violation", "crashed")
    report = getattr(error, "sandbox_report", None)
    if isinstance(report, dict):
        status = report.get("status") if report.get("status") in limits else "test_failed"
        return status, str(report.get("message", "")), report.get("missing", [])
    # A test that caught the program's error and failed on it still fails for the program's reason.
    for cause in errors.causes(error):
        report = getattr(cause, "sandbox_report", None)
        if isinstance(report, dict) and report.get("status") in limits:
            return report["status"], str(report.get("message", "")), report.get("missing", [])
    status = errors.limit_status(error, visible) or "test_failed"
    return status, errors.describe(error), errors.missing_under(error, private)


def print_trace(error, with_frames=True):
    # Sent with the verdict too, so the runner can tell the harness's report from what the program printed.
    trace = errors.format_trace(error, with_frames)
    sys.stderr.write(trace)
    return trace


def finish(code):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(code)


main()
