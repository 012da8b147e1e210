"""Run the kratomlit CLI from a checkout without installing it: ``python cli.py --help``."""

from kratomlit.__main__ import main

if __name__ == "__main__":
    main()
