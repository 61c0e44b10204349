# The program's process: loads the generated code and answers the checker's calls with plain data.
# Nothing here decides a verdict. The checker's tests, their expected values and the channel to the
# runner never enter this process: whatever the program patches, walks or forges, it can only answer
# calls (or fail to).
import builtins
import sys

import errors
from protocol import NotPlain, decode, encode


def serve(channel):
    load = channel.receive()
    if not load or load.get("op") != "load":
        return
    visible, private = tuple(load["visible"]), tuple(load["private"])
    disk_mb = load["diskMb"]
    code = load["code"]
    errors.remember_source("solution.py", code)
    sys.stdout.reconfigure(line_buffering=True)
    sys.argv = ["solution.py"]
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        compiled = compile(code, "solution.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        channel.send({"op": "load_failed", "status": "syntax_error", "message": "solution: " + errors.exception_only(error),
                      "trace": errors.format_trace(error, with_frames=False)})
        return
    try:
        exec(compiled, namespace)
    except BaseException as error:
        # Raising while the program itself loads is a crash (SystemExit included: it never got to the tests).
        report = describe(error, visible, private, disk_mb)
        if isinstance(error, SystemExit):
            report["status"], report["message"] = "test_failed", "exited with code %r before the tests finished" % (error.code,)
        report["status"] = report["status"] or "crashed"
        channel.send(dict(report, op="load_failed"))
        return
    # Every name the solution defined; the checker binds those its tests use. Nothing of the tests comes here.
    functions, values, docs = [], [], {}
    for name, value in list(namespace.items()):
        if name.startswith("__") or type(value).__name__ == "module":
            continue
        (functions if callable(value) else values).append(name)
        # Docstrings travel with the proxies, so the tests' doctest runs the solution's examples.
        doc = getattr(value, "__doc__", None) if callable(value) else None
        if isinstance(doc, str) and type(value).__name__ in ("function", "builtin_function_or_method"):
            docs[name] = doc[:20000]
    channel.send({"op": "loaded", "functions": functions, "values": values, "docs": docs})
    while True:
        call = channel.receive()
        if call is None:
            return
        answer(channel, namespace, call, visible, private, disk_mb)


def answer(channel, namespace, call, visible, private, disk_mb):
    number = call["id"]
    if call.get("op") == "value":
        return reply(channel, number, lambda: namespace[call["name"]], "is")
    try:
        args = decode(call["args"])
        kwargs = {key: decode(value) for key, value in call["kwargs"]}
        result = namespace[call["name"]](*args, **kwargs)
    except BaseException as error:
        channel.send({"op": "raise", "id": number, "error": describe(error, visible, private, disk_mb)})
        return
    # Arguments the call changed go back too, so the tests see in-place changes as they would in one process.
    changed = None
    try:
        after = [encode(list(args)), [[key, encode(value)] for key, value in kwargs.items()]]
        if after != [call["args"], call["kwargs"]]:
            changed = after
    except Exception:
        pass
    reply(channel, number, lambda: result, "returned", changed)


def reply(channel, number, value, verb, changed=None):
    try:
        message = {"op": "return", "id": number, "value": encode(value())}
        if changed is not None:
            message["args"], message["kwargs"] = changed
        channel.send(message)
    except NotPlain as error:
        channel.send({"op": "not_plain", "id": number, "message": "%s %s, which is not plain data" % (verb, error)})
    except RecursionError:
        channel.send({"op": "not_plain", "id": number, "message": "%s a value nested too deep to send" % verb})
    except Exception as error:  # a value whose __class__ or methods lie raises from inside the encoder
        channel.send({"op": "not_plain", "id": number, "message": "%s a value that cannot be read as plain data (%s)" % (verb, type(error).__name__)})


def describe(error, visible, private, disk_mb):
    """What the checker needs to rebuild the exception and to say why it stopped the program."""
    kind = type(error)
    args = []
    for arg in error.args:
        try:
            args.append(encode(arg))
        except NotPlain:
            args.append(str(arg))
    message = errors.describe(error)
    if errors.disk_full(error):
        message += " (the sandbox's writable space of %d MB is full)" % disk_mb
    trace = errors.format_trace(error)
    sys.stderr.write(trace)
    return {
        "type": kind.__name__,
        "builtin": getattr(builtins, kind.__name__, None) is kind,
        # The builtin classes it derives from, so `except ValueError` still catches the solution's own error.
        "bases": [base.__name__ for base in kind.__mro__ if getattr(builtins, base.__name__, None) is base][:8],
        "args": args,
        "errno": getattr(error, "errno", None) if isinstance(error, OSError) else None,
        "exit": isinstance(error, (SystemExit, KeyboardInterrupt, GeneratorExit)),
        "status": errors.limit_status(error, visible),
        "message": message[:4000],
        "trace": trace[-8000:],
        "missing": errors.missing_under(error, private)[:16],
    }
