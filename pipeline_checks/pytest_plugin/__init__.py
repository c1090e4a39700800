"""The pytest face: the plugin that wires options, fixtures and the built-in suite.

Importing this package imports no Keras: pytest loads the plugin in every run of a
repository that installs it."""
