"""The kit fixture, shared by the kit tests and the distro tests."""

from tests.guest.test_distros import faked  # noqa: F401  (a fixture)
from tests.guest.test_kit import kit  # noqa: F401  (a fixture)
