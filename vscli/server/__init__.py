"""`vscli serve`: OpenAI's Files and Vector Stores HTTP API over a local workspace.

`app.py` maps the endpoints onto the library (`Store`, `FileRegistry`, `search`), `processing.py` embeds
attached files on a background thread of the server (the model is loaded once), and `listing.py` pages
lists the way OpenAI does. The server shares the workspace with CLI processes through the same locks.
"""
