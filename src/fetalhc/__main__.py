"""``python -m fetalhc``: the same command line as ``fetalhc``."""

from fetalhc.cli import main

if __name__ == "__main__":
    main()
