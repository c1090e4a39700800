"""Plain helpers the tests share: the small correct pipeline, its model and data.

`tests/broken_pipelines` holds the detection matrix's rows (broken pipelines and their
correct twins); what is no row lives here. pyproject's `pythonpath = ["tests"]` makes
`import helpers` work under any --import-mode.
"""
