"""The offline synthetic multi-speaker English corpus (docs/design.md): ``ucodec prepare synthetic OUT_DIR``.

Install the engines with ``bash recipes/synthetic/install.sh``, list what is installed with
``python -m recipes.synthetic.engines``; :func:`recipes.synthetic.build.build_synthetic` does the rest.
"""
