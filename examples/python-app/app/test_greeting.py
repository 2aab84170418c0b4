import unittest

from greeting import greeting


class GreetingTest(unittest.TestCase):
    def test_names_the_machine(self) -> None:
        self.assertEqual(greeting("aarch64"), "python-app running on aarch64")


if __name__ == "__main__":
    unittest.main()
