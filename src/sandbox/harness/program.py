# The program's process: loads the generated code and answers the checker's calls with plain data.
# Nothing here decides a verdict. The checker's tests, their expected values and the channel to the
# runner never enter this process: whatever the program patches, walks or forges, it can only answer
# calls (or fail to).
import builtins
import json
import sys

import errors
from protocol import MAX_MESSAGE, NotPlain, decode, encode


def serve(channel):
    load = channel.receive()
    if not load or load.get("op") != "load":
        return
    visible, private = tuple(load["visible"]), tuple(load["private"])
    disk_mb = load["diskMb"]
    code = load["code"]
    errors.remember_source("solution.py", code)
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
    functions, values = [], {}
    for name in load["names"]:
        if name.startswith("__") or name not in namespace:
            continue
        value = namespace[name]
        if type(value).__name__ == "module":
            continue
        if callable(value):
            functions.append(name)
        else:
            try:
                encoded = encode(value)
                # One value too large to send leaves it out, not the whole answer.
                if len(json.dumps(encoded)) < MAX_MESSAGE // 2:
                    values[name] = encoded
            except (NotPlain, ValueError, RecursionError):
                pass
    channel.send({"op": "loaded", "functions": functions, "values": values})
    while True:
        call = channel.receive()
        if call is None:
            return
        answer(channel, namespace, call, visible, private, disk_mb)


def answer(channel, namespace, call, visible, private, disk_mb):
    number = call["id"]
    try:
        args = decode(call["args"])
        kwargs = {key: decode(value) for key, value in call["kwargs"]}
        result = namespace[call["name"]](*args, **kwargs)
    except BaseException as error:
        channel.send({"op": "raise", "id": number, "error": describe(error, visible, private, disk_mb)})
        return
    try:
        channel.send({"op": "return", "id": number, "value": encode(result)})
    except NotPlain as error:
        channel.send({"op": "not_plain", "id": number, "message": "returned %s, which is not plain data" % error})
    except RecursionError:
        channel.send({"op": "not_plain", "id": number, "message": "returned a value nested too deep to send"})


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
        "args": args,
        "errno": getattr(error, "errno", None) if isinstance(error, OSError) else None,
        "exit": isinstance(error, (SystemExit, KeyboardInterrupt, GeneratorExit)),
        "status": errors.limit_status(error, visible),
        "message": message[:4000],
        "trace": trace[-8000:],
        "missing": errors.missing_under(error, private)[:16],
    }
