"""The Python packaging domain: which wheels fit an image's Python (tags, markers), package
indexes (PEP 691 JSON, PEP 503 HTML, local directories), resolution (`resolvelib` over
`packaging`'s versions, specifiers and markers), and installing wheels as layer entries the way
pip does, streamed from the cached wheel files, with bytecode compiled for the image's Python.

It reads nothing of the image itself: the source (`ocibuild.sources.wheels`) tells it the
target (`TargetPython`) and what lower layers own.
"""
