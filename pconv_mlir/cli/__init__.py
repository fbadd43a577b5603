"""The ``pconv`` command line: :mod:`.main` is the entry point, one module per subcommand
(``prune``, ``compile``, ``run``/``bench``, ``android``). Building the parser imports no
torch, numpy or IREE: ``pconv --help`` and ``--version`` are fast; each command imports what
it needs when it runs."""
