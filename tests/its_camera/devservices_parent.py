"""A `devservices run`-like parent for tests/its_camera/test_devservices.py: the same launcher code (services()
with its state file, supervise() with its signal handling) with sleepers standing in for web, worker and beat,
and no migrations, so a test starts it in a second. Give it ITS_LOCAL_DIR (a temporary directory)."""

import sys

from its_camera import devservices


def main() -> int:
    devservices.interrupt_on_stop_signals()
    try:
        with devservices.services() as environment:
            sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
            group = devservices.ProcessGroup()
            processes = [("web", sleeper), ("worker", sleeper), ("beat", sleeper)]
            return devservices.supervise(group, processes, environment, on_started=lambda: devservices.log("ready"))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
