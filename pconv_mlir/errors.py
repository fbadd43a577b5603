"""Exception hierarchy shared by all pconv_mlir modules.

Every error that the CLI should report as a one-line message (exit code 1, no
traceback) derives from :class:`PconvError`.  CLI entry points catch
``PconvError`` and print ``str(err)`` to stderr.

- :class:`PconvCompileError`  -- iree-compile (or another compiler stage) failed;
  ``.diagnostics`` carries the tool's diagnostic text.
- :class:`PconvRuntimeError`  -- loading or running a module failed (corrupt
  .vmfb, no Vulkan driver, missing function, runtime failure, missing tool).
- :class:`PconvInputError`    -- user-supplied inputs are wrong (shape, dtype,
  count, unreadable file).
"""

from __future__ import annotations

__all__ = [
    "PconvError",
    "PconvCompileError",
    "PconvRuntimeError",
    "PconvInputError",
    "first_line",
]


class PconvError(Exception):
    """Base class of all errors raised deliberately by pconv_mlir."""


class PconvCompileError(PconvError):
    """A compilation step failed.

    Attributes:
        diagnostics: the compiler's diagnostic output (may be empty).
        target: name of the compile target, if known.
    """

    def __init__(self, message: str, diagnostics: str = "", target: str | None = None):
        self.diagnostics = diagnostics or ""
        self.target = target
        full = message
        if self.diagnostics.strip():
            full = f"{message}\n{self.diagnostics.strip()}"
        super().__init__(full)
        self.message = message


class PconvRuntimeError(PconvError):
    """Loading or running a compiled module failed."""


class PconvInputError(PconvError, ValueError):
    """Inputs given to a module (or CLI) do not match what it expects."""


def first_line(err: BaseException) -> str:
    """The first line of ``err``'s message (its type name when the message is empty): tools
    such as IREE put a whole report in one exception, and pconv reports errors in one line."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
