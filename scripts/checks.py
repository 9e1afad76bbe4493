"""What the check scripts share (smoke_test.py, connection_drills.py): a counted check that prints
one line, and a free local port."""
import socket


class Checks:
    def __init__(self, indent=""):
        self.indent = indent
        self.passed = 0
        self.failed = 0

    def __call__(self, name, condition, detail=""):
        if condition:
            self.passed += 1
            print(f"{self.indent}ok   {name}")
        else:
            self.failed += 1
            print(f"{self.indent}FAIL {name}: {detail}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
