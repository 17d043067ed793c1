"""A `devservices run`-like parent for tests/its_camera/test_devservices.py: the same launcher code (services()
with its state file, supervise() with its signal handling) with sleepers standing in for web (with a server
process of its own), worker and beat, and no migrations, so a test starts it in a second. Give it ITS_LOCAL_DIR
(a temporary directory)."""

import sys

from its_camera import devservices

# Like uvicorn's reloader, web runs its server in a process of its own and stops it on SIGTERM (in its main flow:
# a signal handler that waits on the server could deadlock), and says "serving" once that is in place.
WEB = [
    sys.executable,
    "-c",
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "server = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "try:\n"
    "    print('serving', flush=True)\n"
    "    time.sleep(600)\n"
    "finally:\n"
    "    server.terminate()\n"
    "    server.wait()\n",
]


def main() -> int:
    devservices.interrupt_on_stop_signals()
    try:
        with devservices.services() as environment:
            sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
            group = devservices.ProcessGroup()
            processes = [("web", WEB), ("worker", sleeper), ("beat", sleeper)]
            return devservices.supervise(group, processes, environment, on_started=lambda: devservices.log("ready"))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
