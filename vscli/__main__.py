"""`python -m vscli` runs the same entry point as the `vscli` console script."""

from vscli.cli import main

if __name__ == "__main__":
    main()
