"""vscli: a local, offline vector store with OpenAI-shaped objects and a command-line interface."""

__version__ = "0.1.0"
