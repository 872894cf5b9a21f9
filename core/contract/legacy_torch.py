"""The structure of a file in `torch.save`'s legacy format (before PyTorch 1.6), checked without
unpickling anything: its pickles are walked opcode by opcode (`pickletools.genops`, which parses and
runs nothing) on a stack that only keeps numbers, strings, tuples and lists.

The format is five pickles (torch's magic number, the protocol version, system facts, the object,
the list of storage keys) and then each listed storage's bytes: an 8-byte element count and the
elements. `torch.load` allocates every storage the object names at the size it declares, but fills
only those the key list names, so a file that declares a storage and leaves it out of the list
hands back uninitialised memory (and one that declares 10⁹ elements allocates them). This check
requires every declared storage to be listed once, its count to match, and its bytes to be in the
file, which then ends exactly where the last storage does.
"""

from __future__ import annotations

import io
import pickletools

# bytes per element of torch's typed storages, by the name torch.save gives their class
ELEMENT_BYTES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "UntypedStorage": 1,
}
_MARK = object()  # the stack's mark
_OPAQUE = object()  # anything built by a call, a dict or a set: its contents do not matter here
_SCALARS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}
_VALUES = {  # opcodes whose argument is the value pushed
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
}  # fmt: skip
_IGNORED = {"PROTO", "FRAME"}
# opcodes walked at most, all pickles together: a state dict takes about 40 a tensor (ResNet-50's
# 320 tensors: 13,000); the bound keeps a 64 MiB file of one-byte opcodes from holding the API
MAX_OPCODES = 1_000_000


class _Global(str):
    """A global the pickle names ("module name"), kept to learn a storage's element type."""


def _until_mark(stack: list) -> list:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise ValueError("a pickle pops to a mark it never set")


def _step(op: str, arg, stack: list, memo: dict, declared: dict) -> None:  # noqa: C901 (one opcode table)
    if op in _IGNORED:
        return
    if op in _VALUES:
        stack.append(arg.decode("latin-1") if op.endswith("BINSTRING") and isinstance(arg, bytes) else arg)
    elif op in _SCALARS:
        stack.append(_SCALARS[op])
    elif op == "MARK":
        stack.append(_MARK)
    elif op in ("TUPLE", "LIST"):
        items = _until_mark(stack)
        stack.append(tuple(items) if op == "TUPLE" else items)
    elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
        n = int(op[-1])
        items = tuple(stack[-n:])
        del stack[-n:]
        stack.append(items)
    elif op == "EMPTY_LIST":
        stack.append([])
    elif op in ("EMPTY_DICT", "EMPTY_SET"):
        stack.append(_OPAQUE)
    elif op in ("DICT", "FROZENSET"):
        _until_mark(stack)
        stack.append(_OPAQUE)
    elif op == "APPEND":
        item = stack.pop()
        if isinstance(stack[-1], list):
            stack[-1].append(item)
    elif op == "APPENDS":
        items = _until_mark(stack)
        if isinstance(stack[-1], list):
            stack[-1].extend(items)
    elif op in ("SETITEMS", "ADDITEMS", "POP_MARK"):
        _until_mark(stack)
    elif op == "SETITEM":
        del stack[-2:]
    elif op == "POP":
        stack.pop()
    elif op == "DUP":
        stack.append(stack[-1])
    elif op == "GLOBAL":
        stack.append(_Global(arg))
    elif op == "STACK_GLOBAL":
        module, name = stack.pop(-2), stack.pop()
        stack.append(_Global(f"{module} {name}"))
    elif op in ("REDUCE", "NEWOBJ"):
        del stack[-2:]
        stack.append(_OPAQUE)
    elif op == "NEWOBJ_EX":
        del stack[-3:]
        stack.append(_OPAQUE)
    elif op == "BUILD":
        stack.pop()
    elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[arg] = stack[-1]
    elif op == "MEMOIZE":
        memo[len(memo)] = stack[-1]
    elif op in ("GET", "BINGET", "LONG_BINGET"):
        stack.append(memo[arg])
    elif op == "BINPERSID":
        _declare(stack.pop(), declared)
        stack.append(_OPAQUE)
    else:
        raise ValueError(f"it holds the pickle opcode {op}, which torch.save does not write")


def _declare(pid, declared: dict) -> None:
    """Note the storage a persistent id names: ('storage', type, key, location, count, view)."""
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
        raise ValueError("it names a persistent object that is not a storage")
    _, kind, key, _location, count, _view = pid
    elem = ELEMENT_BYTES.get(kind.removeprefix("torch ")) if isinstance(kind, _Global) else None
    if elem is None:
        raise ValueError(f"it names a storage of type {str(kind)[:80]!r}")
    if not isinstance(key, str) or not isinstance(count, int) or count < 0:
        raise ValueError("it names a storage without a key and an element count")
    if declared.setdefault(key, (elem, count)) != (elem, count):
        raise ValueError(f"it declares storage {key[:40]!r} twice, with different types or sizes")


def _pickle(f: io.BytesIO, declared: dict, budget: list[int]):
    """The value one pickle leaves (numbers, strings, tuples, lists; anything else opaque);
    `budget[0]` counts down the opcodes left to walk."""
    stack: list = []
    memo: dict = {}
    for opcode, arg, _pos in pickletools.genops(f):
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError(f"more than {MAX_OPCODES:,} pickle opcodes")
        if opcode.name == "STOP":
            return stack[-1] if stack else None
        _step(opcode.name, arg, stack, memo, declared)
    raise ValueError("a pickle ends before its STOP")


def check_legacy_file(data: bytes) -> None:
    """Every storage the file's object declares is in its key list once, with its bytes.

    Raises:
        ValueError: naming what is wrong.
    """
    f = io.BytesIO(data)
    declared: dict[str, tuple[int, int]] = {}
    budget = [MAX_OPCODES]
    try:
        for _ in range(3):  # the magic number, the protocol version, the system facts
            _pickle(f, {}, budget)
        _pickle(f, declared, budget)
        keys = _pickle(f, {}, budget)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"weights: not a file torch.save wrote in its legacy format ({e})") from e
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise ValueError("weights: the legacy file's list of storages is not a list of distinct keys")
    if set(keys) != set(declared):
        raise ValueError(
            f"weights: the legacy file declares {len(declared)} storages but holds the bytes of {len(keys)} "
            "(torch.load would hand back memory it never read)"
        )
    pos = f.tell()
    for key in keys:
        elem, count = declared[key]
        header = data[pos : pos + 8]
        if len(header) < 8 or int.from_bytes(header, "little", signed=True) != count:
            raise ValueError(
                f"weights: storage {key[:40]!r} of the legacy file does not hold the {count} elements it declares"
            )
        pos += 8 + count * elem
    if pos != len(data):
        raise ValueError(
            f"weights: the legacy file's storages {'end past' if pos > len(data) else 'end before'} the end of the file"
        )
