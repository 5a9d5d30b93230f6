"""A faster ``__init__`` for the frozen dataclasses made on every call.

A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__(self, name,
value)``: a lookup of the name through the class for every field of every object. A call
makes a dozen such objects (its tickets have 24 fields each), and that lookup was most of
their cost. :func:`fast_init` gives a frozen, slotted dataclass an ``__init__`` with the same
parameters, defaults and default factories that sets each slot through its own descriptor,
as a slotted class's plain ``self.name = value`` would. The class stays frozen: setting or
deleting a field afterwards still raises ``FrozenInstanceError``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["fast_init"]

_T = TypeVar("_T")
_NO_VALUE = object()  # the default of a parameter whose field has a default factory


def fast_init(cls: type[_T]) -> type[_T]:
    """Replace the ``__init__`` of ``cls``, a ``@dataclass(frozen=True, slots=True)``
    without ``__post_init__``, init-only or keyword-only fields (refused with TypeError)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    every = cls.__dict__["__dataclass_fields__"].values()
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if len(fields) != len(every) or any(not f.init or f.kw_only for f in fields):
        raise TypeError(f"{cls.__name__} has fields this __init__ does not handle")
    namespace: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    signature: list[str] = []
    body: list[str] = []
    for field in fields:
        name = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = field.default
            signature.append(f"{name}=_default_{name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            signature.append(f"{name}=_NO_VALUE")
            body.append(f"    if {name} is _NO_VALUE:\n        {name} = _factory_{name}()")
        else:
            signature.append(name)
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        body.append(f"    _set_{name}(self, {name})")
    source = f"def __init__(self, {', '.join(signature)}):\n" + "\n".join(body or ["    pass"])
    exec(source, namespace)  # made of the field names only, as dataclasses does itself
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
