"""Authoring: what turns a chapter's hand-written sources into the files the course ships.

- :mod:`.notebooks`  the nbgrader source notebook ``solutions/chNN/chNN.ipynb``, built from its
                     MyST text ``solutions/chNN/chNN.md`` and the chapter's task specs
"""
