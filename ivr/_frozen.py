"""A faster ``__init__`` for the frozen dataclasses made on every call.

A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__(self, name,
value)``: a lookup of the name through the class for every field of every object. A call
makes a dozen such objects (its tickets have 24 fields each), and that lookup was most of
their cost. :func:`fast_init` gives a frozen, slotted dataclass an ``__init__`` with the same
parameters, defaults and default factories that gives the object, for as long as it takes to
set its fields, the class of a plain twin with the same slots: there ``self.name = value`` is
the interpreter's own store into a slot, with no call. The object then takes its class back,
and stays frozen: setting or deleting a field afterwards still raises ``FrozenInstanceError``.
An object of a subclass (whose layout the twin may not share) has its fields set through the
slots' descriptors instead.
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
    if cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__} has base classes: its twin would not share its layout")
    # The twin: the same slots in the same order on the same base, so an object can change
    # between the two classes (checked here once, on an object made without __init__).
    twin = type(f"_{cls.__name__}Draft", (), {"__slots__": cls.__dict__["__slots__"]})
    set_class = object.__dict__["__class__"].__set__
    probe = object.__new__(cls)
    set_class(probe, twin)
    probe.__class__ = cls
    namespace: dict[str, Any] = {
        "_NO_VALUE": _NO_VALUE, "_cls": cls, "_twin": twin, "_set_class": set_class,
    }  # fmt: skip
    signature: list[str] = []
    defaults: list[str] = []  # the factories' values
    stores: list[str] = []  # as the twin
    setters: list[str] = []  # through the descriptors, for a subclass's object
    for field in fields:
        name = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = field.default
            signature.append(f"{name}=_default_{name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            signature.append(f"{name}=_NO_VALUE")
            defaults.append(f"    if {name} is _NO_VALUE:\n        {name} = _factory_{name}()")
        else:
            signature.append(name)
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        stores.append(f"        self.{name} = {name}")
        setters.append(f"        _set_{name}(self, {name})")
    source = "\n".join([
        f"def __init__(self, {', '.join(signature)}):",
        *defaults,
        "    if type(self) is _cls:",
        "        _set_class(self, _twin)",
        *stores,
        "        self.__class__ = _cls",
        "    else:",
        *(setters or ["        pass"]),
    ])  # fmt: skip
    exec(source, namespace)  # made of the field names only, as dataclasses does itself
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
