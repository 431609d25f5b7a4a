"""The ``ucodec`` program: the command line on top of every package (:mod:`ucodec.cli`).

It is the only package that knows them all; the packages below never import it (docs/design.md).
"""
