"""``python -m skinml.predict`` is ``skinml-predict``."""

from skinml.predict.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
