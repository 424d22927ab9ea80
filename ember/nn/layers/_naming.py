"""Give a layer that inherits its methods from a private base class its own copies, so
that Python's argument errors name the layer (`Conv2d.__init__() got an unexpected
keyword argument ...`) as upstream's do, not the base (`_Conv.__init__() ...`)."""

import types


def own_methods(*names):
    """Class decorator: copy the inherited methods `names` onto the class under its own
    qualified name. The copies share the code (and the `super()` cell) of the originals,
    so calls cost the same."""

    def decorate(cls):
        for name in names:
            f = getattr(cls, name)
            g = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__,
                                   f.__closure__)
            g.__kwdefaults__ = f.__kwdefaults__
            g.__annotations__ = f.__annotations__
            g.__doc__ = f.__doc__
            g.__module__ = f.__module__
            g.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, g)
        return cls

    return decorate
