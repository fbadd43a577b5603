"""Command-line tools installed with the package: ``pconv-opt`` (:mod:`.pconv_opt`)."""
