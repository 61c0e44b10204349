// Red team for the code-execution sandbox: wrong solutions that try to make their tests pass anyway.
//
// Every attack below is a program whose honest answers fail its tests; it tries instead to reach the
// verdict (the checker's frames, objects, descriptors, process or files), to forge what crosses back
// (objects that equal anything, patched builtins, forged protocol lines), to leave early, to read the
// tests, or to exhaust the sandbox. None may come out `passed`. The controls are correct programs in the
// same shapes, which must pass: a sandbox that fails everything would satisfy the attacks too.
//
// The cases run through one small pool (two sandboxes at a time; the CPU-hungry ones alone), so the
// whole file stays well under a minute on two cores.
import { expect, it } from "vitest";
import { runSandboxed, type SandboxOptions, type SandboxResult, type SandboxStatus } from "../../src/sandbox/index.ts";
import { describeWithSandbox } from "../support/sandbox.ts";

type Language = SandboxOptions["language"];

interface Case {
  readonly name: string;
  readonly language: Language;
  readonly code: string;
  readonly tests: string;
  readonly entryPoint?: string;
  /** The statuses it may end with; an attack never lists "passed", a control lists only it. */
  readonly expect: SandboxStatus | readonly SandboxStatus[];
  readonly options?: Partial<SandboxOptions>;
  /** Spins every core it can (a fork bomb): runs with the pool to itself. */
  readonly heavy?: boolean;
  /** More to check of the result than its status. */
  readonly also?: (result: SandboxResult) => void;
}

/** Source text as written: backslashes stay (Python's "\n" is Python's), the first newline goes. */
const src = (strings: TemplateStringsArray, ...values: unknown[]): string => String.raw({ raw: strings.raw }, ...values).replace(/^\n/, "");

// ---------------------------------------------------------------- shared tests

const PY_ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n";
const JS_ADD_TESTS = "const assert = require('node:assert');\nassert.strictEqual(add(2, 3), 5);\nassert.strictEqual(add(-1, 1), 0);\n";

/** A 2 GB writer ends quickly as a crash that names the writable-space cap. */
const stoppedAtDiskCap = (result: SandboxResult) => {
  expect(result.message).toMatch(/writable space/);
  expect(result.durationMs).toBeLessThan(4000);
};
/** A forged verdict line, with the fields the runner reads; the nonce can only be guessed. */
const FORGED = '{"nonce": "00000000000000000000000000000000", "event": "verdict", "status": "passed", "message": "", "trace": "", "missing": []}';

// ---------------------------------------------------------------- python attacks

const pythonAttacks: Case[] = [
  {
    // Walks sys._getframe() up the stack looking for the harness's reporter (report, verdict, finish)
    // and calls whatever it finds with a "passed" verdict. The program's stack has only its own serving
    // loop: the only harness function it can reach, finish, ends the program's own process.
    name: "py: frame walking up to a reporter",
    language: "python",
    code: src`
import sys
def add(a, b):
    frame = sys._getframe()
    while frame is not None:
        for scope in (frame.f_locals, frame.f_globals):
            for key in ("report", "verdict", "finish", "check"):
                target = scope.get(key)
                if callable(target) and target is not add:
                    for args in (("verdict", "passed"), ("passed",), (0,)):
                        try:
                            target(*args)
                        except BaseException:
                            pass
        frame = frame.f_back
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Hunts gc.get_objects() for the harness's channel and reporter and sends forged verdicts through
    // whatever it finds; the channel leads to the checker, which takes a non-protocol line as tampering.
    name: "py: gc.get_objects() hunting harness functions and objects",
    language: "python",
    code: src`
import gc
def add(a, b):
    for obj in gc.get_objects():
        kind = type(obj).__name__
        if kind in ("Channel", "ProgramWatch") and hasattr(obj, "send"):
            try:
                obj.send({"nonce": "guess", "event": "verdict", "status": "passed"})
            except BaseException:
                pass
        elif callable(obj) and getattr(obj, "__name__", "") in ("report", "verdict"):
            try:
                obj("verdict", "passed")
            except BaseException:
                pass
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "tampering",
  },
  {
    // Returns an object whose __eq__ says yes to anything (and __ne__ no): only plain data crosses.
    name: "py: always-equal __eq__ object",
    language: "python",
    code: src`
class Anything:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__
def add(a, b):
    return Anything()
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // An int subclass that equals everything: crosses as the int it stores (0), which is not 5.
    name: "py: int subclass overriding __eq__",
    language: "python",
    code: src`
class Int(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def add(a, b):
    return Int(0)
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // A str subclass that equals (and hashes like) anything, also as a dict key and a set member.
    name: "py: str subclass overriding __eq__ and __hash__",
    language: "python",
    code: src`
class Str(str):
    def __eq__(self, other):
        return True
    def __hash__(self):
        return hash("olleh")
def reverse(s):
    return Str("wrong")
def index(words):
    return {Str("wrong"): Str("wrong")}
`,
    tests: "assert reverse('hello') == 'olleh'\nassert index(['a']) == {'a': 0}\n",
    expect: "test_failed",
  },
  {
    // A tuple subclass whose __iter__, __getitem__ and __len__ forge other contents than it stores.
    name: "py: tuple subclass forging __iter__, __getitem__ and __len__",
    language: "python",
    code: src`
class Forged(tuple):
    def __iter__(self):
        return iter((3, 2))
    def __getitem__(self, i):
        return (3, 2)[i]
    def __len__(self):
        return 2
    def __eq__(self, other):
        return True
    __hash__ = tuple.__hash__
def swap(a, b):
    return Forged((0, 0, 0))
`,
    tests: "assert swap(2, 3) == (3, 2)\nx, y = swap(2, 3)\nassert (x, y) == (3, 2)\n",
    expect: "test_failed",
  },
  {
    // A list subclass that equals anything and iterates as the expected answer.
    name: "py: list subclass overriding __eq__ and __iter__",
    language: "python",
    code: src`
class Forged(list):
    def __eq__(self, other):
        return True
    def __iter__(self):
        return iter([1, 2, 3])
def sort(xs):
    return Forged([9])
`,
    tests: "assert sort([3, 1, 2]) == [1, 2, 3]\nassert list(sort([3, 1, 2])) == [1, 2, 3]\n",
    expect: "test_failed",
  },
  {
    // Replaces builtins.AssertionError (so a failed assert raises something else) and builtins.abs and
    // len (so the tests' checks compute nothing; len only for the value it returns, so that the
    // program's own serving loop keeps working): the program's builtins are not the checker's.
    name: "py: monkeypatching builtins.AssertionError, abs and len",
    language: "python",
    code: src`
import builtins
class Ignored(BaseException):
    pass
builtins.AssertionError = Ignored
real_len = len
builtins.abs = lambda x: 0
builtins.len = lambda x: 3 if x == [] else real_len(x)
def dist(a, b):
    return 12345
def triple():
    return []
`,
    tests: "assert abs(dist(0, 5) - 5) < 1e-9\nassert len(triple()) == 3\n",
    expect: "test_failed",
  },
  {
    // Defines top-level abs, len and isinstance, hoping the tests' own calls of them resolve to these.
    name: "py: top-level abs, len and isinstance shadowing the tests' builtins",
    language: "python",
    code: src`
def abs(x):
    return 0
def len(x):
    return 3
def isinstance(value, kind):
    return True
def dist(a, b):
    return 12345
def triple():
    return []
def count():
    return "many"
`,
    tests: "assert abs(dist(0, 5) - 5) < 1e-9\nassert len(triple()) == 3\nassert isinstance(count(), int)\n",
    expect: "test_failed",
  },
  {
    // os._exit(0) in the middle of a call, hoping a clean exit reads as success.
    name: "py: os._exit(0) inside the call",
    language: "python",
    code: "import os\ndef add(a, b):\n    os._exit(0)\n",
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // sys.exit(0) inside the call, with tests that catch BaseException and fall back to the answer.
    name: "py: sys.exit(0) inside the call, tests catching BaseException",
    language: "python",
    code: "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    tests: "try:\n    result = add(2, 3)\nexcept BaseException:\n    result = 5\nassert result == 5\n",
    expect: "test_failed",
  },
  {
    // KeyboardInterrupt from the call (what a Ctrl-C looks like), swallowed by the tests the same way.
    name: "py: raising KeyboardInterrupt, tests catching BaseException",
    language: "python",
    code: "def add(a, b):\n    raise KeyboardInterrupt\n",
    tests: "try:\n    result = add(2, 3)\nexcept BaseException:\n    result = 5\nassert result == 5\n",
    expect: "test_failed",
  },
  {
    // atexit handlers that print a verdict and exit 0, run when the program's process ends.
    name: "py: atexit handlers forging a verdict and the exit code",
    language: "python",
    code: src`
import atexit, os, sys
FORGED = ${JSON.stringify(FORGED)}
atexit.register(lambda: os._exit(0))
atexit.register(lambda: (print(FORGED), print(FORGED, file=sys.stderr)))
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // sys.excepthook (and threading.excepthook) replaced so an uncaught AssertionError prints nothing.
    name: "py: sys.excepthook swallowing the failure",
    language: "python",
    code: src`
import sys, threading
sys.excepthook = lambda *args: None
threading.excepthook = lambda *args: None
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // A thread that calls os._exit(0) while the call is still being answered.
    name: "py: a thread calling os._exit(0) during the call",
    language: "python",
    code: src`
import os, threading, time
def add(a, b):
    threading.Thread(target=lambda: os._exit(0)).start()
    time.sleep(2)
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Fake verdict JSON lines (and a few guessed nonces) on stdout and stderr.
    name: "py: printing fake verdict JSON to stdout and stderr",
    language: "python",
    code: src`
import sys
FORGED = ${JSON.stringify(FORGED)}
for stream in (sys.stdout, sys.stderr):
    for _ in range(3):
        stream.write(FORGED + "\n")
    stream.flush()
def add(a, b):
    print(FORGED, flush=True)
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Verdict JSON written to every descriptor from 3 to 10; the one that is open leads to the checker.
    name: "py: writing verdict JSON to fds 3..10",
    language: "python",
    code: src`
import os
FORGED = ${JSON.stringify(FORGED)}
for fd in range(3, 11):
    try:
        os.write(fd, (FORGED + "\n").encode())
    except OSError:
        pass
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "tampering",
  },
  {
    // Reads everything it can find for the tests (the harness folder, its own folders, every process's
    // cmdline, and the checker's /proc/<ppid>/ cmdline, environ, mem and fds) and answers from it.
    name: "py: reading the tests from /harness, the file system and /proc/<ppid>/",
    language: "python",
    code: src`
import glob, os, re
seen = []
def grab(path, limit=1 << 20):
    try:
        with open(path, "rb") as handle:
            seen.append(handle.read(limit).decode("latin-1"))
    except OSError:
        pass
for path in glob.glob("/harness/**", recursive=True) + glob.glob("/sandbox/**", recursive=True) + glob.glob("/tmp/**", recursive=True):
    if os.path.isfile(path):
        grab(path)
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    grab("/proc/%s/cmdline" % pid)
ppid = os.getppid()
for name in ("cmdline", "environ", "mem", "fd/0", "fd/3"):
    grab("/proc/%d/%s" % (ppid, name))
try:
    for fd in os.listdir("/proc/%d/fd" % ppid):
        grab("/proc/%d/fd/%s" % (ppid, fd))
except OSError:
    pass
SOURCE = "\n".join(seen)
def add(a, b):
    found = re.search(r"add\(%d, %d\) == (-?\d+)" % (a, b), SOURCE)
    return int(found.group(1)) if found else a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Sends SIGSTOP and SIGKILL to the checker (os.getppid()): with no checker, no failing verdict?
    name: "py: SIGSTOP and SIGKILL to the parent process",
    language: "python",
    code: src`
import os, signal
def add(a, b):
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(os.getppid(), sig)
        except OSError:
            pass
    return a - b
`,
    tests: PY_ADD_TESTS,
    // As root the checker has another uid and the kill is refused; in a user namespace it lands.
    expect: ["test_failed", "crashed", "timeout"],
    options: { timeoutMs: 3000 },
  },
  {
    // os.kill(-1, SIGKILL): every process it may signal, hoping to take the checker with it.
    name: "py: os.kill(-1, SIGKILL)",
    language: "python",
    code: src`
import os, signal
def add(a, b):
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: ["test_failed", "crashed"],
    options: { timeoutMs: 3000 },
  },
  {
    // ptrace (attach, seize) and process_vm_readv on the checker through ctypes, to read or poke it.
    name: "py: ptrace and process_vm_readv on the checker via ctypes",
    language: "python",
    code: src`
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206
results = []
ppid = os.getppid()
for request in (PTRACE_ATTACH, PTRACE_SEIZE):
    results.append((libc.ptrace(request, ppid, None, None), ctypes.get_errno()))
class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(4096)
local = IOVec(ctypes.cast(buf, ctypes.c_void_p), 4096)
remote = IOVec(0x400000, 4096)
results.append((libc.process_vm_readv(ppid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0), ctypes.get_errno()))
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Writes 2 GB to its folder in 1 MiB pieces, hoping to fill the host's disk under the checker.
    name: "py: writing 2 GB to disk",
    language: "python",
    code: src`
chunk = b"x" * (1 << 20)
with open("/sandbox/big", "wb") as handle:
    for _ in range(2048):
        handle.write(chunk)
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "crashed",
    options: { timeoutMs: 5000 },
    also: stoppedAtDiskCap,
  },
  {
    // Fills /tmp and /dev/shm (shared with the checker, in Python) so the checker cannot write anything.
    name: "py: filling /tmp and /dev/shm",
    language: "python",
    code: src`
import errno
chunk = b"x" * (1 << 20)
for folder in ("/tmp", "/dev/shm", "/sandbox"):
    try:
        with open(folder + "/fill", "wb") as handle:
            for _ in range(4096):
                handle.write(chunk)
    except OSError as error:
        assert error.errno in (errno.ENOSPC, errno.EFBIG), error
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
    options: { timeoutMs: 5000 },
  },
  {
    // Floods stdout with 40 MB, hoping the runner chokes or loses the verdict in the noise.
    name: "py: output flooding (40 MB on stdout)",
    language: "python",
    code: src`
import sys
chunk = ("x" * 1023 + "\n") * 1024
for _ in range(40):
    sys.stdout.write(chunk)
sys.stdout.flush()
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
    options: { timeoutMs: 5000 },
    also: (result) => expect(result.stdoutTruncated).toBe(true),
  },
  {
    // Freezes the clock (time.time, time.monotonic) and tries to set the system date, hoping to stall
    // the runner's timer; the date command is refused (its stderr reads as a violation).
    name: "py: changing the clock",
    language: "python",
    code: src`
import os, time
time.time = lambda: 0
time.monotonic = lambda: 0
time.perf_counter = lambda: 0
os.system("date -s '2000-01-01 00:00:00' >/dev/null")
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: ["test_failed", "sandbox_violation"],
  },
  {
    // A fork bomb, hoping to starve the checker of processes or CPU.
    name: "py: fork bomb",
    language: "python",
    code: src`
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
`,
    tests: PY_ADD_TESTS,
    expect: ["timeout", "crashed"],
    options: { timeoutMs: 2500, maxProcesses: 16 },
    heavy: true,
  },
  {
    // Returns a wrong generator: it reaches the tests as an iterator over what it yields, compared by them.
    name: "py: returning a generator",
    language: "python",
    code: "def squares(n):\n    return (i * i + 1 for i in range(n))\n",
    tests: "assert list(squares(3)) == [0, 1, 4]\n",
    expect: "test_failed",
  },
  {
    // Returns a lambda that answers True to whatever the tests do with it.
    name: "py: returning a lambda",
    language: "python",
    code: "def add(a, b):\n    return lambda *args, **kwargs: True\n",
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Returns an instance of its own class with forged __eq__, __bool__, __int__ and __index__.
    name: "py: returning a custom object",
    language: "python",
    code: src`
class Answer:
    def __eq__(self, other): return True
    def __bool__(self): return True
    def __int__(self): return 5
    def __index__(self): return 5
    __hash__ = object.__hash__
def add(a, b):
    return Answer()
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // A list that contains itself: a recursion bomb for whoever serializes or compares it.
    name: "py: recursion bomb in the returned value",
    language: "python",
    code: "def add(a, b):\n    x = []\n    x.append(x)\n    return x\n",
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // A 17 MiB answer, more than one message may carry.
    name: "py: huge return value (> 16 MiB)",
    language: "python",
    code: "def add(a, b):\n    return 'x' * (17 * 1024 * 1024)\n",
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // StopIteration from the call: tests that iterate map(...) read it as "the iterator is exhausted",
    // so all(map(...)) is True and a for loop over zip(map(...), ...) ends, without one comparison
    // made. A rebuilt StopIteration must not end the tests' iteration (PEP 479 turns it into a
    // RuntimeError inside generators for this very reason).
    name: "py: StopIteration ending the tests' all(map(...)) and zip(map(...)) early",
    language: "python",
    code: "def is_even(n):\n    raise StopIteration\n",
    tests: src`
CASES = [(1, False), (2, True), (3, False)]
assert all(map(lambda case: is_even(case[0]) == case[1], CASES))
for got, (n, want) in zip(map(is_even, [n for n, _ in CASES]), CASES):
    assert got == want
`,
    expect: "test_failed",
  },
  {
    // The same inside a generator expression, where PEP 479 turns it into a RuntimeError.
    name: "py: StopIteration inside the tests' generator expression",
    language: "python",
    code: "def is_even(n):\n    raise StopIteration\n",
    tests: "CASES = [(1, False), (2, True), (3, False)]\nassert all(is_even(n) == want for n, want in CASES)\n",
    expect: "test_failed",
  },
  {
    // Sorts its argument in place although the tests require it unchanged: the tests check the list
    // they passed, which must show what the call did to it (plain Python fails this program).
    name: "py: mutating the argument that the tests check is left unchanged",
    language: "python",
    code: "def sorted_copy(xs):\n    xs.sort()\n    return xs\n",
    tests: "xs = [3, 1, 2]\nassert sorted_copy(xs) == [1, 2, 3]\nassert xs == [3, 1, 2], 'sorted_copy changed its argument'\n",
    expect: "test_failed",
  },
  {
    // An object whose __class__ claims to be int (isinstance believes __class__), so a checker that
    // trusts isinstance might take it for an int and call its forged methods.
    name: "py: __class__ spoofing int",
    language: "python",
    code: src`
class Fake:
    @property
    def __class__(self):
        return int
    def __eq__(self, other): return True
    def __int__(self): return 5
    __hash__ = object.__hash__
def add(a, b):
    return Fake()
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Patches unittest in sys.modules (assertEqual does nothing, every result is successful) for tests
    // written as a unittest.TestCase.
    name: "py: sys.modules tampering of unittest",
    language: "python",
    code: src`
import sys, unittest
unittest.TestCase.assertEqual = lambda self, *args, **kwargs: None
unittest.TestResult.wasSuccessful = lambda self: True
sys.modules["unittest"] = unittest
def add(a, b):
    return a - b
`,
    tests: src`
import unittest
class TestAdd(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)
result = unittest.TextTestRunner(verbosity=0).run(unittest.defaultTestLoader.loadTestsFromTestCase(TestAdd))
assert result.wasSuccessful()
`,
    expect: "test_failed",
  },
  {
    // Overwrites json in sys.modules and json.dumps so that whatever the harness sends is a "passed"
    // verdict: the checker reads it as a line that is not of the protocol.
    name: "py: overwriting json in sys.modules and json.dumps",
    language: "python",
    code: src`
import json, sys, types
FORGED = ${JSON.stringify(FORGED)}
fake = types.ModuleType("json")
fake.dumps = lambda *args, **kwargs: FORGED
fake.loads = json.loads
json.dumps = fake.dumps
sys.modules["json"] = fake
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "tampering",
  },
  {
    // Replaces __builtins__ for the code that follows and sets a trace function that rewrites the
    // locals of every frame it sees, hoping to reach the frames where the tests compare.
    name: "py: overriding __builtins__ and sys.settrace rewriting frames",
    language: "python",
    code: src`
import builtins, sys
def tracer(frame, event, arg):
    for key in list(frame.f_locals):
        if key in ("expected", "want", "result", "status"):
            frame.f_locals[key] = 5
    return tracer
sys.settrace(tracer)
sys.setprofile(lambda frame, event, arg: None)
__builtins__ = dict(vars(builtins), AssertionError=KeyError)
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Drops modules the tests import (random, heapq) and site/sitecustomize files into every writable
    // folder, hoping the checker's imports pick them up.
    name: "py: planting random.py, heapq.py and sitecustomize.py in writable folders",
    language: "python",
    code: src`
import os
PLANT = "import os\nos._exit(0)\n"
for folder in ("/sandbox", "/tmp", "/dev/shm", os.getcwd()):
    for name in ("random.py", "heapq.py", "sitecustomize.py", "usercustomize.py", "tests.py"):
        try:
            with open(os.path.join(folder, name), "w") as handle:
                handle.write(PLANT)
        except OSError:
            pass
def add(a, b):
    return a - b
`,
    tests: "import random, heapq\n" + PY_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Defines check() itself, HumanEval style, hoping the harness runs its check instead of the tests'.
    name: "py: defining check() to replace the tests' own (HumanEval)",
    language: "python",
    code: "def check(candidate):\n    pass\ndef add(a, b):\n    return a - b\n",
    tests: "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
    entryPoint: "add",
    expect: "test_failed",
  },
  {
    // Closes its end of the channel and runs on, hoping the checker takes the silence for the end of
    // the tests; it is waited for, and the runner's timeout ends it.
    name: "py: closing the channel and running on",
    language: "python",
    code: src`
import os, time
for fd in range(3, 64):
    try:
        os.close(fd)
    except OSError:
        pass
time.sleep(30)
def add(a, b):
    return a - b
`,
    tests: PY_ADD_TESTS,
    expect: "timeout",
    options: { timeoutMs: 2000 },
  },
  {
    // The Python twin of the JavaScript names attack: walks up to the harness's load message and looks
    // among the names the checker asked for for the expected word. Only identifiers the tests' code
    // uses (never its string constants) are asked for, so there is nothing to find.
    name: "py: reading the tests' expected strings from the load message",
    language: "python",
    code: src`
import sys
seen = []
frame = sys._getframe()
while frame is not None:
    load = frame.f_locals.get("load")
    if isinstance(load, dict):
        seen.extend(load.get("names", ()))
    frame = frame.f_back
def pig_latin(word):
    for name in seen:
        if name != word and sorted(name) == sorted(word + "ay"):
            return name
    return word
`,
    tests: "assert pig_latin('hello') == 'ellohay'\nassert pig_latin('world') == 'orldway'\n",
    expect: "test_failed",
  },
  {
    // signal.alarm plus a raised recursion limit and a deep recursion: crash the process at the right
    // moment, hoping a crash mid-call is not counted against it.
    name: "py: signal.alarm and sys.setrecursionlimit crash mid-call",
    language: "python",
    code: src`
import signal, sys
sys.setrecursionlimit(10 ** 7)
signal.signal(signal.SIGALRM, signal.SIG_DFL)
def down(n):
    return down(n + 1) + 1
def add(a, b):
    signal.alarm(1)
    return down(0)
`,
    tests: PY_ADD_TESTS,
    expect: ["crashed", "test_failed"],
    options: { timeoutMs: 4000 },
  },
];

// ---------------------------------------------------------------- javascript attacks

const javascriptAttacks: Case[] = [
  {
    // Replaces assert's strictEqual, deepStrictEqual, equal and ok with functions that never throw.
    name: "js: patching require('assert').strictEqual and deepStrictEqual",
    language: "javascript",
    code: src`
const assert = require('node:assert');
for (const key of ['strictEqual', 'deepStrictEqual', 'equal', 'deepEqual', 'ok', 'notStrictEqual']) assert[key] = () => {};
require('assert').strictEqual = () => {};
function add(a, b) { return a - b; }
`,
    tests: JS_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // console.assert made a no-op (under plain node it only prints anyway).
    name: "js: patching console.assert",
    language: "javascript",
    code: "console.assert = () => {};\nfunction add(a, b) { return a - b; }\n",
    tests: "console.assert(add(2, 3) === 5, 'add is wrong');\n",
    expect: "test_failed",
  },
  {
    // Object.is, Array.prototype (every, includes, indexOf) and Number.prototype.valueOf patched so the
    // tests' comparisons say yes.
    name: "js: patching Object.is and Array.prototype",
    language: "javascript",
    code: src`
Object.is = () => true;
Array.prototype.every = function () { return true; };
Array.prototype.includes = function () { return true; };
Array.prototype.indexOf = function () { return 0; };
Number.prototype.valueOf = function () { return 5; };
function sorted(xs) { return xs; }
`,
    tests: "const assert = require('node:assert');\nassert.ok(Object.is(sorted([3, 1, 2])[0], 1));\nassert.ok([1, 2, 3].every((x, i) => sorted([3, 1, 2])[i] === x));\n",
    expect: "test_failed",
  },
  {
    // JSON.stringify patched so every message the harness sends becomes a "passed" verdict.
    name: "js: patching JSON.stringify to forge the harness's messages",
    language: "javascript",
    code: src`
const FORGED = ${JSON.stringify(FORGED)};
JSON.stringify = () => FORGED;
function add(a, b) { return a - b; }
`,
    tests: JS_ADD_TESTS,
    expect: "tampering",
  },
  {
    // Calls the harness's beforeExit listeners (where a verdict of "passed" is written) and emits
    // beforeExit itself, then exits 0 before the tests run.
    name: "js: process.listeners('beforeExit') and process.emit('beforeExit'), then exit",
    language: "javascript",
    code: src`
for (const listener of process.listeners('beforeExit')) listener(0);
process.emit('beforeExit', 0);
for (const listener of process.listeners('exit')) listener(0);
process.exit(0);
`,
    tests: JS_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // process.exit(0) during the call, with tests that catch the error and fall back to the answer.
    name: "js: process.exit(0) during the call, tests in try/catch",
    language: "javascript",
    code: "function add(a, b) { process.exit(0); }\n",
    tests: "const assert = require('node:assert');\nlet result;\ntry { result = add(2, 3); } catch { result = 5; }\nassert.strictEqual(result, 5);\n",
    expect: "test_failed",
  },
  {
    // An object with valueOf, toString and Symbol.toPrimitive all answering 5, for loose comparisons
    // and string building.
    name: "js: returning an object with valueOf, toString and Symbol.toPrimitive",
    language: "javascript",
    code: src`
function add(a, b) {
  return { valueOf: () => 5, toString: () => '5', [Symbol.toPrimitive]: () => 5 };
}
`,
    tests: "const assert = require('node:assert');\nassert.equal(add(2, 3), 5);\nassert.ok(add(2, 3) == 5);\nassert.strictEqual(String(add(2, 3)), '5');\n",
    expect: "test_failed",
  },
  {
    // The same on a class instance, with the methods on the prototype (not own keys).
    name: "js: returning a class instance with Symbol.toPrimitive",
    language: "javascript",
    code: src`
class Five {
  [Symbol.toPrimitive]() { return 5; }
  valueOf() { return 5; }
}
function add(a, b) { return new Five(); }
`,
    tests: "const assert = require('node:assert');\nassert.ok(add(2, 3) == 5);\n",
    expect: "test_failed",
  },
  {
    // A Proxy that answers every property with 5, claims every key and lies about its prototype.
    name: "js: returning a Proxy",
    language: "javascript",
    code: src`
function stats(xs) {
  return new Proxy({}, {
    get: (target, key) => (key === Symbol.toPrimitive ? () => 5 : 5),
    has: () => true,
    ownKeys: () => ['mean', 'max'],
    getOwnPropertyDescriptor: () => ({ value: 5, enumerable: true, configurable: true }),
  });
}
`,
    tests: "const assert = require('node:assert');\nconst s = stats([1, 2, 3]);\nassert.strictEqual(s.mean, 2);\nassert.strictEqual(s.max, 3);\n",
    expect: "test_failed",
  },
  {
    // Getters that run code when read, hoping they run in the checker: one exits, one throws, one
    // answers differently on each read.
    name: "js: returning a getter-laden object",
    language: "javascript",
    code: src`
let reads = 0;
function stats(xs) {
  return {
    get mean() { reads++; return reads > 1 ? 2 : 0; },
    get max() { if (reads > 1) process.exit(0); return 0; },
  };
}
`,
    tests: "const assert = require('node:assert');\nconst s = stats([1, 2, 3]);\nassert.strictEqual(s.mean, 2);\nassert.strictEqual(s.max, 3);\n",
    expect: "test_failed",
  },
  {
    // throw 0: a falsy non-Error, for a harness that tests `if (error)` before failing.
    name: "js: throw 0",
    language: "javascript",
    code: "function add(a, b) { throw 0; }\n",
    tests: JS_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // A forged verdict written with fs.writeSync to every descriptor from 3 to 10.
    name: "js: writing verdict JSON to fds 3..10 with fs.writeSync",
    language: "javascript",
    code: src`
const fs = require('node:fs');
const FORGED = ${JSON.stringify(FORGED)};
for (let fd = 3; fd <= 10; fd++) {
  try { fs.writeSync(fd, FORGED + '\n'); } catch {}
}
function add(a, b) { return a - b; }
`,
    tests: JS_ADD_TESTS,
    expect: "tampering",
  },
  {
    // Reads /proc/*/cmdline and /proc/*/environ (and the fds) looking for the checker and its tests.
    name: "js: reading /proc/*/cmdline and /proc/*/environ for the checker",
    language: "javascript",
    code: src`
const fs = require('node:fs');
let seen = '';
for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
  for (const file of ['cmdline', 'environ']) {
    try { seen += fs.readFileSync('/proc/' + pid + '/' + file, 'latin1') + '\n'; } catch {}
  }
  try {
    for (const fd of fs.readdirSync('/proc/' + pid + '/fd')) {
      try { seen += fs.readlinkSync('/proc/' + pid + '/fd/' + fd) + '\n'; } catch {}
    }
  } catch {}
}
function add(a, b) {
  const found = new RegExp('add\\(' + a + ', ' + b + '\\), (-?\\d+)').exec(seen);
  return found ? Number(found[1]) : a - b;
}
`,
    tests: JS_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // process.kill on the parent, on every pid it can see, and on -1.
    name: "js: process.kill(process.ppid), other pids and -1",
    language: "javascript",
    code: src`
const fs = require('node:fs');
function add(a, b) {
  const pids = [process.ppid, ...fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)];
  for (const pid of pids) {
    if (pid === process.pid) continue;
    for (const signal of ['SIGSTOP', 'SIGKILL']) {
      try { process.kill(pid, signal); } catch {}
    }
  }
  try { process.kill(-1, 'SIGKILL'); } catch {}
  return a - b;
}
`,
    tests: JS_ADD_TESTS,
    expect: ["test_failed", "crashed"],
    options: { timeoutMs: 3000 },
  },
  {
    // An infinite loop inside the call, hoping the runner gives up without a failing verdict.
    name: "js: infinite loop",
    language: "javascript",
    code: "function add(a, b) { for (;;) {} }\n",
    tests: JS_ADD_TESTS,
    expect: "timeout",
    options: { timeoutMs: 2500 },
  },
  {
    // A heap hog inside the call.
    name: "js: memory hog",
    language: "javascript",
    code: "function add(a, b) {\n  const keep = [];\n  for (;;) keep.push(new Array(1e6).fill(1));\n}\n",
    tests: JS_ADD_TESTS,
    expect: ["crashed", "test_failed"],
    options: { memoryMb: 128, timeoutMs: 5000 },
  },
  {
    // Writes 2 GB to its folder; the tmpfs fills long before the host's disk is touched.
    name: "js: writing 2 GB to disk",
    language: "javascript",
    code: src`
const fs = require('node:fs');
const chunk = Buffer.alloc(1 << 20, 120);
const fd = fs.openSync('/sandbox/big', 'w');
for (let i = 0; i < 2048; i++) fs.writeSync(fd, chunk);
function add(a, b) { return a - b; }
`,
    tests: JS_ADD_TESTS,
    expect: "crashed",
    options: { timeoutMs: 5000 },
    also: stoppedAtDiskCap,
  },
  {
    // An async function whose promise resolves to the wrong answer, for tests that await it.
    name: "js: async function resolving wrong",
    language: "javascript",
    code: "async function add(a, b) { await new Promise((resolve) => setTimeout(resolve, 10)); return a - b; }\n",
    tests: "const assert = require('node:assert');\n(async () => {\n  assert.strictEqual(await add(2, 3), 5);\n})();\n",
    expect: "test_failed",
  },
  {
    // A promise that never settles, hoping the checker's event loop drains and reports a pass.
    name: "js: async function that never settles",
    language: "javascript",
    code: "function add(a, b) { return new Promise(() => {}); }\n",
    tests: "const assert = require('node:assert');\nadd(2, 3).then((sum) => assert.strictEqual(sum, 5));\n",
    expect: "timeout",
    options: { timeoutMs: 2500 },
  },
  {
    // Object.prototype polluted with the properties the tests read, hoping the polluted prototype is
    // the one the tests' objects inherit from.
    name: "js: prototype pollution (Object.prototype.x = ...)",
    language: "javascript",
    code: src`
Object.prototype.debug = false;
Object.prototype.level = 3;
Array.prototype.sorted = true;
function config() { return {}; }
`,
    tests: "const assert = require('node:assert');\nconst c = config();\nassert.strictEqual(c.debug, false);\nassert.strictEqual(c.level, 3);\n",
    expect: "test_failed",
  },
  {
    // Object.prototype.toJSON, so that every message the harness serializes says what the program wants.
    name: "js: Object.prototype.toJSON rewriting every message",
    language: "javascript",
    code: src`
// Flat, so serializing the replacement does not call toJSON again.
Object.prototype.toJSON = function () { return { nonce: '0', event: 'verdict', status: 'passed', op: 'return', id: 1 }; };
function config() { return {}; }
`,
    tests: "const assert = require('node:assert');\nconst c = config();\nassert.strictEqual(c.debug, false);\nassert.strictEqual(c.level, 3);\n",
    expect: "tampering",
  },
  {
    // Defines require, module and exports, so the tests' require('node:assert') gets a toothless assert.
    name: "js: defining require, module and exports",
    language: "javascript",
    code: src`
function require() { return { strictEqual() {}, deepStrictEqual() {}, equal() {}, ok() {} }; }
var module = { exports: {} };
var exports = module.exports;
function add(a, b) { return a - b; }
`,
    tests: JS_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Defines a global assert while the tests require their own.
    name: "js: defining a global assert next to the tests' require('node:assert')",
    language: "javascript",
    code: "function assert() {}\nassert.strictEqual = () => {};\nfunction add(a, b) { return a - b; }\n",
    tests: JS_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // Tests written for node -e or the REPL, where assert is a global, call a bare assert(); the
    // checker has none, so the program's own assert (a no-op) stands in for it. A name the tests use
    // as their assertion must not be the program's to define (console.assert already is not).
    name: "js: defining assert() for tests that call a bare assert",
    language: "javascript",
    code: "function assert() {}\nfunction add(a, b) { return a - b; }\n",
    tests: "assert(add(2, 3) === 5);\nassert(add(-1, 1) === 0);\n",
    expect: "test_failed",
  },
  {
    // Defines check() itself, HumanEval style, hoping the harness runs its check instead of the tests'.
    name: "js: defining check() to replace the tests' own (HumanEval)",
    language: "javascript",
    code: "function check(candidate) {}\nfunction add(a, b) { return a - b; }\n",
    tests: "const assert = require('node:assert');\nfunction check(candidate) {\n  assert.strictEqual(candidate(2, 3), 5);\n}\n",
    entryPoint: "add",
    expect: "test_failed",
  },
  {
    // A Proxy as the global object's prototype claims every identifier the harness asks about, so the
    // checker would take assert, strictEqual and the rest from the program.
    name: "js: claiming every identifier of the tests through a Proxy on the global prototype",
    language: "javascript",
    code: src`
const noop = function () { return true; };
noop.strictEqual = noop;
Object.setPrototypeOf(globalThis, new Proxy(Object.getPrototypeOf(globalThis), {
  has: () => true,
  get: (target, key, receiver) => (key in target ? Reflect.get(target, key, receiver) : noop),
}));
function add(a, b) { return a - b; }
`,
    tests: JS_ADD_TESTS,
    expect: ["test_failed", "crashed"],
  },
  {
    // The words of the tests (their string literals included) reach the program as the names the
    // checker asks about; a hook on vm.runInThisContext collects them and the function answers with
    // the one that is an anagram of its input plus "ay", never computing pig latin. The tests' text,
    // expected values included, must not reach the program.
    name: "js: reading the tests' expected strings from the names the checker asks for",
    language: "javascript",
    code: src`
const vm = require('node:vm');
const seen = [];
const original = vm.runInThisContext;
vm.runInThisContext = function (code, ...rest) {
  const asked = /^typeof ([\w$]+)$/.exec(String(code));
  if (asked) seen.push(asked[1]);
  return original.call(this, code, ...rest);
};
const letters = (s) => [...s].sort().join('');
function pigLatin(word) {
  return seen.find((w) => w !== word && letters(w) === letters(word + 'ay')) ?? word;
}
`,
    tests: "const assert = require('node:assert');\nassert.strictEqual(pigLatin('hello'), 'ellohay');\nassert.strictEqual(pigLatin('world'), 'orldway');\nassert.strictEqual(pigLatin('string'), 'ingstray');\n",
    expect: "test_failed",
  },
  {
    // Sorts its argument in place although the tests require it unchanged (plain node fails this).
    name: "js: mutating the argument that the tests check is left unchanged",
    language: "javascript",
    code: "function sortedCopy(xs) { return xs.sort((a, b) => a - b); }\n",
    tests: "const assert = require('node:assert');\nconst xs = [3, 1, 2];\nassert.deepStrictEqual(sortedCopy(xs), [1, 2, 3]);\nassert.deepStrictEqual(xs, [3, 1, 2], 'sortedCopy changed its argument');\n",
    expect: "test_failed",
  },
  {
    // A worker thread that writes forged verdicts to fd 3 (the channel) while the main thread answers.
    name: "js: a worker thread forging verdicts on fd 3",
    language: "javascript",
    code: src`
const { Worker } = require('node:worker_threads');
const written = new Int32Array(new SharedArrayBuffer(4));
const line = JSON.stringify(${JSON.stringify(FORGED)} + '\n');
new Worker("const { workerData } = require('node:worker_threads'); const fs = require('node:fs'); for (let i = 0; i < 20; i++) { try { fs.writeSync(3, " + line + "); } catch {} } Atomics.store(workerData, 0, 1); Atomics.notify(workerData, 0);", { eval: true, workerData: written });
function add(a, b) { Atomics.wait(written, 0, 0, 3000); return a - b; }
`,
    tests: JS_ADD_TESTS,
    expect: "tampering",
  },
  {
    // A value that contains itself, and one of 17 MiB.
    name: "js: self-referential and huge return values",
    language: "javascript",
    code: "function loop() { const x = {}; x.self = x; return x; }\nfunction big() { return 'x'.repeat(17 * 1024 * 1024); }\n",
    tests: "const assert = require('node:assert');\ntry { loop(); } catch {}\nassert.strictEqual(big().length, 5);\n",
    expect: "test_failed",
  },
  {
    // A thenable returned from a sync function, resolving (wrongly) when the harness awaits it.
    name: "js: returning a thenable",
    language: "javascript",
    code: "function add(a, b) { return { then(resolve) { resolve(a - b); } }; }\n",
    tests: JS_ADD_TESTS,
    expect: "test_failed",
  },
  {
    // A shell that signals every process it can see but itself and the program (SIGSTOP to each pid,
    // then SIGKILL to -1 and to pid 1).
    name: "js: a child shell signalling every process",
    language: "javascript",
    code: src`
const { execSync } = require('node:child_process');
function add(a, b) {
  const script = 'for p in /proc/[0-9]*; do q=$(basename $p); [ "$q" = "$$" ] || [ "$q" = "$PPID" ] || kill -STOP "$q"; done; kill -9 -1; kill -9 1; true';
  try { execSync(script, { stdio: 'ignore' }); } catch {}
  return a - b;
}
`,
    tests: JS_ADD_TESTS,
    expect: ["test_failed", "crashed", "timeout"],
    options: { timeoutMs: 3000 },
  },
];

// ---------------------------------------------------------------- controls

const pythonControls: Case[] = [
  {
    name: "py control: assert-style add",
    language: "python",
    code: "def add(a, b):\n    return a + b\n",
    tests: PY_ADD_TESTS,
    expect: "passed",
  },
  {
    name: "py control: HumanEval-style check(candidate)",
    language: "python",
    code: src`
def below_zero(operations):
    """Whether a running balance ever goes below zero."""
    balance = 0
    for op in operations:
        balance += op
        if balance < 0:
            return True
    return False
`,
    tests: src`
METADATA = {"author": "jt", "dataset": "test"}

def check(candidate):
    assert candidate([]) == False
    assert candidate([1, 2, -3, 1, 2, -3]) == False
    assert candidate([1, 2, -4, 5, 6]) == True
    assert candidate([1, -1, 2, -2, 5, -5, 4, -4]) == False
`,
    entryPoint: "below_zero",
    expect: "passed",
  },
  {
    name: "py control: plain data of every kind, a raised ValueError and all(map(...))",
    language: "python",
    code: src`
from collections import Counter, namedtuple
Point = namedtuple("Point", "x y")
def shapes():
    return (1, 2.5, "s", b"b", [1, (2, 3)], {"k": {1, 2}}, frozenset({4}), None, True, Point(1, 2), Counter("aab"))
def is_even(n):
    return n % 2 == 0
def root(x):
    if x < 0:
        raise ValueError("negative")
    return x ** 0.5
`,
    tests: src`
assert shapes() == (1, 2.5, "s", b"b", [1, (2, 3)], {"k": {1, 2}}, frozenset({4}), None, True, (1, 2), {"a": 2, "b": 1})
CASES = [(1, False), (2, True), (3, False)]
assert all(map(lambda case: is_even(case[0]) == case[1], CASES))
try:
    root(-1)
except ValueError as error:
    assert "negative" in str(error)
else:
    raise AssertionError("root(-1) did not raise")
assert root(9) == 3
`,
    expect: "passed",
  },
  {
    name: "py control: sorted_copy that leaves its argument alone",
    language: "python",
    code: "def sorted_copy(xs):\n    return sorted(xs)\n",
    tests: "xs = [3, 1, 2]\nassert sorted_copy(xs) == [1, 2, 3]\nassert xs == [3, 1, 2], 'sorted_copy changed its argument'\n",
    expect: "passed",
  },
  {
    name: "py control: unittest.TestCase tests",
    language: "python",
    code: "def add(a, b):\n    return a + b\n",
    tests: src`
import unittest
class TestAdd(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)
result = unittest.TextTestRunner(verbosity=0).run(unittest.defaultTestLoader.loadTestsFromTestCase(TestAdd))
assert result.wasSuccessful()
`,
    expect: "passed",
  },
];

const javascriptControls: Case[] = [
  {
    name: "js control: assert.strictEqual add",
    language: "javascript",
    code: "function add(a, b) { return a + b; }\n",
    tests: JS_ADD_TESTS,
    expect: "passed",
  },
  {
    name: "js control: HumanEval-style check(candidate)",
    language: "javascript",
    code: "const belowZero = (operations) => {\n  let balance = 0;\n  for (const op of operations) {\n    balance += op;\n    if (balance < 0) return true;\n  }\n  return false;\n};\n",
    tests: src`
const assert = require('node:assert');
const check = (candidate) => {
  assert.deepEqual(candidate([]), false);
  assert.deepEqual(candidate([1, 2, -3, 1, 2, -3]), false);
  assert.deepEqual(candidate([1, 2, -4, 5, 6]), true);
};
`,
    entryPoint: "belowZero",
    expect: "passed",
  },
  {
    name: "js control: async function",
    language: "javascript",
    code: "async function add(a, b) {\n  await new Promise((resolve) => setTimeout(resolve, 10));\n  return a + b;\n}\n",
    tests: "const assert = require('node:assert');\n(async () => {\n  assert.strictEqual(await add(2, 3), 5);\n  assert.strictEqual(await add(-1, 1), 0);\n})();\nadd(1, 1).then((sum) => assert.strictEqual(sum, 2));\n",
    expect: "passed",
  },
  {
    name: "js control: console.assert and Map, Set, Date, BigInt, undefined, -0",
    language: "javascript",
    code: src`
function shapes() {
  return { m: new Map([['a', 1]]), s: new Set([1, 2]), d: new Date(0), n: 10n ** 20n, u: undefined, z: -0, list: [1, 'two', null] };
}
function pigLatin(word) { return word.slice(1) + word[0] + 'ay'; }
`,
    tests: src`
const assert = require('node:assert');
assert.deepStrictEqual(shapes(), { m: new Map([['a', 1]]), s: new Set([1, 2]), d: new Date(0), n: 10n ** 20n, u: undefined, z: -0, list: [1, 'two', null] });
console.assert(pigLatin('hello') === 'ellohay', 'pigLatin');
assert.strictEqual(pigLatin('world'), 'orldway');
`,
    expect: "passed",
  },
  {
    name: "js control: sortedCopy that leaves its argument alone",
    language: "javascript",
    code: "function sortedCopy(xs) { return [...xs].sort((a, b) => a - b); }\n",
    tests: "const assert = require('node:assert');\nconst xs = [3, 1, 2];\nassert.deepStrictEqual(sortedCopy(xs), [1, 2, 3]);\nassert.deepStrictEqual(xs, [3, 1, 2]);\n",
    expect: "passed",
  },
];

// ---------------------------------------------------------------- the pool

/** Two sandboxes at a time, first come first served; a heavy case takes both slots. */
function pool(slots: number) {
  let free = slots;
  const waiting: Array<{ need: number; go: () => void }> = [];
  const next = () => {
    while (waiting.length > 0 && waiting[0]!.need <= free) {
      const head = waiting.shift()!;
      free -= head.need;
      head.go();
    }
  };
  return async <T>(need: number, work: () => Promise<T>): Promise<T> => {
    await new Promise<void>((go) => {
      waiting.push({ need: Math.min(need, slots), go });
      next();
    });
    try {
      return await work();
    } finally {
      free += Math.min(need, slots);
      next();
    }
  };
}

const inPool = pool(2);

function run(c: Case): Promise<SandboxResult> {
  return inPool(c.heavy ? 2 : 1, () =>
    runSandboxed({
      language: c.language,
      code: c.code,
      tests: c.tests,
      ...(c.entryPoint ? { entryPoint: c.entryPoint } : {}),
      timeoutMs: 5000,
      ...c.options,
    }),
  );
}

/** What a failing assertion prints: enough to reproduce and to see why. */
function shown(c: Case, result: SandboxResult): string {
  const { status, message, exitCode, signal, durationMs } = result;
  return JSON.stringify({ status, message, exitCode, signal, durationMs, stdout: result.stdout.slice(0, 300), stderr: result.stderr.slice(-600) }, null, 1);
}

const attacks = [...pythonAttacks, ...javascriptAttacks];
const controls = [...pythonControls, ...javascriptControls];

describeWithSandbox("sandbox red team", () => {
  it("has enough attacks and controls in each language, every name distinct", () => {
    const count = (cases: Case[], language: Language) => cases.filter((c) => c.language === language).length;
    expect(count(attacks, "python")).toBeGreaterThanOrEqual(12);
    expect(count(attacks, "javascript")).toBeGreaterThanOrEqual(12);
    expect(attacks.length).toBeGreaterThanOrEqual(34);
    expect(count(controls, "python")).toBeGreaterThanOrEqual(4);
    expect(count(controls, "javascript")).toBeGreaterThanOrEqual(4);
    const names = [...attacks, ...controls].map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of attacks) expect([c.expect].flat(), c.name).not.toContain("passed");
    for (const c of controls) expect(c.expect, c.name).toBe("passed");
  });

  it.concurrent.each(controls.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const result = await run(c);
    expect(result.status, shown(c, result)).toBe("passed");
  }, 120_000);

  it.concurrent.each(attacks.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const result = await run(c);
    const details = shown(c, result);
    expect(result.status, details).not.toBe("passed");
    expect([c.expect].flat(), details).toContain(result.status);
    c.also?.(result);
  }, 120_000);
});
