"""Fixtures shared by the unit tests."""

from tests.unit.test_kit_place import sshd  # noqa: F401 - a real loopback sshd, also for the doctor's host checks
