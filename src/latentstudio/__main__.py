"""`python -m latentstudio` (used by torchrun) runs the command line."""

from latentstudio.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
